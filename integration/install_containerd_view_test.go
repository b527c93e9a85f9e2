//go:build integration

package integration

// What a private containerd makes of a config, for the install tests.
//
// The configs name the host's paths. Root, state and the socket are given
// on containerd's command line; the other host paths a config names (opt
// plugin, CNI directories, NRI socket, imports) are replaced by paths
// under the daemon's directory before install runs, so install edits the
// file as it is apart from those paths. Where a file has no section for
// such a plugin, containerd would use its default host path: the copy
// containerd reads gets a section naming a private path appended (the
// file install wrote is kept as it is, for the backup and second-run
// checks). None of these sections is about the CRI plugin's runtimes.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// readInstallInput reads a config from install/testdata/in.
func readInstallInput(t *testing.T, name string) string {
	t.Helper()
	return string(readFile(t, filepath.Join("..", "install", "testdata", "in", name)))
}

// containerdHostPaths are the host paths the test configs name that containerd
// would create or write, other than root, state and the sockets (given
// as flags); each is replaced by a path under the daemon's directory.
var containerdHostPaths = []struct{ host, private string }{
	{"/var/lib/containerd/opt", "opt"}, // Debian's opt plugin
	{"/opt/containerd", "opt"},         // containerd config default's
	{"/usr/lib/cni", "cni/bin"},
	{"/opt/cni/bin", "cni/bin"},
	{"/etc/cni/net.d", "cni/net.d"},
	{"/var/run/nri/nri.sock", "nri.sock"}, // containerd 2.x config default
	{"/etc/containerd/conf.d/*.toml", "conf.d/*.toml"},
}

// localizeConfig replaces the host paths of config by paths under dir. The
// daemon's flags give root, state and the socket.
func localizeConfig(config, dir string) string {
	for _, p := range containerdHostPaths {
		config = strings.ReplaceAll(config, p.host, filepath.Join(dir, p.private))
	}
	return config
}

// newConfigDaemon makes a private containerd (not started, no config yet)
// whose root, state and socket are under its directory; bin "" is
// containerd 1.6 on PATH.
func newConfigDaemon(t *testing.T, bin string) *containerdDaemon {
	t.Helper()
	d := newContainerd(t)
	d.bin = bin
	d.args = []string{"--root", filepath.Join(d.dir, "root"), "--state", filepath.Join(d.dir, "state"), "--address", d.sock}
	return d
}

// privateConfig returns config as the daemon d reads it: the host paths
// replaced, and a section naming a private path appended for each plugin
// that would otherwise use a host path by default (two: containerd 2.x,
// which also has NRI).
func privateConfig(t *testing.T, d *containerdDaemon, config string, two bool) string {
	t.Helper()
	config = localizeConfig(config, d.dir)
	var m map[string]any
	if err := toml.Unmarshal([]byte(config), &m); err != nil {
		t.Fatalf("config does not decode: %v", err)
	}
	has := func(path ...string) bool {
		var v any = m
		for _, p := range path {
			mm, ok := v.(map[string]any)
			if !ok {
				return false
			}
			if v, ok = mm[p]; !ok {
				return false
			}
		}
		return true
	}
	opt, cri, nri := "io.containerd.internal.v1.opt", "io.containerd.grpc.v1.cri", "io.containerd.nri.v1.nri"
	cniBin := fmt.Sprintf("bin_dir = %q", filepath.Join(d.dir, "cni/bin"))
	switch m["version"] {
	case nil: // version 1: plugins by id
		opt, cri = "opt", "cri"
	case int64(3):
		cri = "io.containerd.cri.v1.runtime"
		cniBin = fmt.Sprintf("bin_dirs = [%q]", filepath.Join(d.dir, "cni/bin"))
	}
	var b strings.Builder
	if !has("plugins", opt) {
		fmt.Fprintf(&b, "\n[plugins.%q]\n  path = %q\n", opt, filepath.Join(d.dir, "opt"))
	}
	if !has("plugins", cri, "cni") {
		fmt.Fprintf(&b, "\n[plugins.%q.cni]\n  %s\n  conf_dir = %q\n", cri, cniBin, filepath.Join(d.dir, "cni/net.d"))
	}
	if two && !has("plugins", nri) {
		fmt.Fprintf(&b, "\n[plugins.%q]\n  socket_path = %q\n", nri, filepath.Join(d.dir, "nri.sock"))
	}
	return config + b.String()
}

// containerdView is what a running containerd makes of its config.
type containerdView struct {
	plugins map[string]string // "TYPE ID" -> STATUS, from ctr plugins ls
	// CRI status, when the CRI plugin is ok.
	defaultName string
	runtimes    map[string]containerdViewRuntime
}

type containerdViewRuntime struct {
	Type    string         `json:"runtimeType"`
	Options map[string]any `json:"options"`
}

// names is "default: runtime runtime ..." (sorted), or "" without CRI.
func (v containerdView) names() string {
	if v.runtimes == nil {
		return ""
	}
	var n []string
	for k := range v.runtimes {
		n = append(n, k)
	}
	slices.Sort(n)
	return v.defaultName + ": " + strings.Join(n, " ")
}

// readContainerdView starts containerd and reads its plugins and CRI status. The CRI
// plugin of containerd 1.6 is "io.containerd.grpc.v1 cri"; containerd 2.x
// has it too, on top of "io.containerd.cri.v1 runtime", which holds the
// runtimes.
func readContainerdView(t *testing.T, d *containerdDaemon) containerdView {
	t.Helper()
	d.launch(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := d.ctr(ctx, "default", "plugins", "ls")
	if err != nil {
		t.Fatal(err)
	}
	v := containerdView{plugins: map[string]string{}}
	for _, l := range strings.Split(out, "\n")[1:] {
		if f := strings.Fields(l); len(f) >= 4 {
			v.plugins[f[0]+" "+f[1]] = f[len(f)-1]
		}
	}
	if v.plugins["io.containerd.grpc.v1 cri"] != "ok" {
		return v
	}
	conn, err := grpc.NewClient("unix://"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt := cri.NewRuntimeServiceClient(conn)
	var st *cri.StatusResponse
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err = rt.Status(c, &cri.StatusRequest{Verbose: true})
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("CRI status: %v\n%s", err, d.logTail(20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	var info struct {
		Containerd struct {
			DefaultRuntimeName string                           `json:"defaultRuntimeName"`
			Runtimes           map[string]containerdViewRuntime `json:"runtimes"`
		} `json:"containerd"`
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["config"]), &info); err != nil {
		t.Fatalf("CRI status config: %v\n%s", err, st.GetInfo()["config"])
	}
	v.defaultName, v.runtimes = info.Containerd.DefaultRuntimeName, info.Containerd.Runtimes
	if v.runtimes == nil {
		v.runtimes = map[string]containerdViewRuntime{}
	}
	return v
}

// criPluginFailure returns containerd's log lines about a plugin that failed
// to load, for messages.
func criPluginFailure(d *containerdDaemon) string {
	data, _ := os.ReadFile(d.logPath)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "failed to load plugin") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
