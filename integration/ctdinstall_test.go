//go:build integration

package integration

// capshim install containerd, checked the way containerd reads the result:
// for real configs (Debian's stock file, containerd config default, a GPU
// node's, files capshim refuses or repairs) a private containerd is
// started on the file before and after `capshim install containerd`, and
// `ctr plugins ls` and the CRI status (what crictl info prints) must show
// the CRI plugin ok with every runtime handler the node had plus capshim.
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
// Helpers start with "cin".

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cinInput reads a config from install/testdata/in.
func cinInput(t *testing.T, name string) string {
	t.Helper()
	return string(readFile(t, filepath.Join("..", "install", "testdata", "in", name)))
}

// cinHostPaths are the host paths the test configs name that containerd
// would create or write, other than root, state and the sockets (given
// as flags); each is replaced by a path under the daemon's directory.
var cinHostPaths = []struct{ host, private string }{
	{"/var/lib/containerd/opt", "opt"}, // Debian's opt plugin
	{"/opt/containerd", "opt"},         // containerd config default's
	{"/usr/lib/cni", "cni/bin"},
	{"/opt/cni/bin", "cni/bin"},
	{"/etc/cni/net.d", "cni/net.d"},
	{"/var/run/nri/nri.sock", "nri.sock"}, // containerd 2.x config default
	{"/etc/containerd/conf.d/*.toml", "conf.d/*.toml"},
}

// cinLocalize replaces the host paths of config by paths under dir. The
// daemon's flags give root, state and the socket.
func cinLocalize(config, dir string) string {
	for _, p := range cinHostPaths {
		config = strings.ReplaceAll(config, p.host, filepath.Join(dir, p.private))
	}
	return config
}

// cinDaemon makes a private containerd (not started, no config yet)
// whose root, state and socket are under its directory; bin "" is
// containerd 1.6 on PATH.
func cinDaemon(t *testing.T, bin string) *containerdDaemon {
	t.Helper()
	d := newContainerd(t)
	d.bin = bin
	d.args = []string{"--root", filepath.Join(d.dir, "root"), "--state", filepath.Join(d.dir, "state"), "--address", d.sock}
	return d
}

// cinPrivate returns config as the daemon d reads it: the host paths
// replaced, and a section naming a private path appended for each plugin
// that would otherwise use a host path by default (two: containerd 2.x,
// which also has NRI).
func cinPrivate(t *testing.T, d *containerdDaemon, config string, two bool) string {
	t.Helper()
	config = cinLocalize(config, d.dir)
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

// cinView is what a running containerd makes of its config.
type cinView struct {
	plugins map[string]string // "TYPE ID" -> STATUS, from ctr plugins ls
	// CRI status, when the CRI plugin is ok.
	defaultName string
	runtimes    map[string]cinRuntime
}

type cinRuntime struct {
	Type    string         `json:"runtimeType"`
	Options map[string]any `json:"options"`
}

// names is "default: runtime runtime ..." (sorted), or "" without CRI.
func (v cinView) names() string {
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

// cinRead starts containerd and reads its plugins and CRI status. The CRI
// plugin of containerd 1.6 is "io.containerd.grpc.v1 cri"; containerd 2.x
// has it too, on top of "io.containerd.cri.v1 runtime", which holds the
// runtimes.
func cinRead(t *testing.T, d *containerdDaemon) cinView {
	t.Helper()
	d.launch(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := d.ctr(ctx, "default", "plugins", "ls")
	if err != nil {
		t.Fatal(err)
	}
	v := cinView{plugins: map[string]string{}}
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
			DefaultRuntimeName string                `json:"defaultRuntimeName"`
			Runtimes           map[string]cinRuntime `json:"runtimes"`
		} `json:"containerd"`
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["config"]), &info); err != nil {
		t.Fatalf("CRI status config: %v\n%s", err, st.GetInfo()["config"])
	}
	v.defaultName, v.runtimes = info.Containerd.DefaultRuntimeName, info.Containerd.Runtimes
	if v.runtimes == nil {
		v.runtimes = map[string]cinRuntime{}
	}
	return v
}

// cinCRIFailure returns containerd's log lines about a plugin that failed
// to load, for messages.
func cinCRIFailure(d *containerdDaemon) string {
	data, _ := os.ReadFile(d.logPath)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "failed to load plugin") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// cinCase is one config installed on.
type cinCase struct {
	name string
	in   string   // install/testdata/in file
	args []string // install flags after "containerd"
	// What containerd reads before and after install: the CRI plugin's
	// status in ctr plugins ls ("" not listed) and its default and
	// runtime handlers as cinView.names writes them ("" without CRI).
	criBefore, before string
	criAfter, after   string
	note              string // part of install's output; "" none expected
	// enable: with the CRI plugin disabled, also start containerd on the
	// edited file with disabled_plugins emptied, and expect after then.
	enable string
}

// TestInstallContainerdKeepsCRI runs `capshim install containerd` on real
// configs and starts containerd 1.6 on the file before and after: the CRI
// plugin must be ok afterwards (or as it was, when disabled), with every
// handler it had plus capshim, and the same default (or capshim with
// --set-default). A second install changes nothing; the backup is the
// original file.
func TestInstallContainerdKeepsCRI(t *testing.T) {
	requireContainerd(t)
	t.Run("testdata holds Debian's conffile", func(t *testing.T) { cinCheckDebianStock(t) })
	cases := []cinCase{
		{name: "Debian stock config", in: "config-debian-1.6.toml",
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "runc: capshim runc"},
		{name: "Debian stock config, --set-default", in: "config-debian-1.6.toml", args: []string{"--set-default"},
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "capshim: capshim runc"},
		{name: "containerd config default", in: "config-default-1.6.toml",
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "runc: capshim runc"},
		{name: "another default runtime, no runc", in: "config-v2-nvidia.toml",
			criBefore: "ok", before: "nvidia: nvidia", criAfter: "ok", after: "nvidia: capshim nvidia",
			note: "the runtime nvidia sets SystemdCgroup = true"},
		{name: "deprecated default_runtime", in: "config-v2-legacy-default.toml",
			criBefore: "ok", before: "default: default runc", criAfter: "ok", after: "default: capshim default runc"},
		{name: "runc hidden by an older capshim", in: "config-capshim-old.toml",
			criBefore: "error", criAfter: "ok", after: "runc: capshim runc",
			note: "capshim's change repairs that"},
		{name: "no version, CRI disabled", in: "config-dockerio.toml",
			note:   "WARNING: the CRI plugin is disabled",
			enable: "runc: capshim runc"},
		{name: "runc on the runtime v1 shim, systemd_cgroup", in: "config-v2-runtime-v1.toml",
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "runc: capshim runc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { cinRun(t, "", tc) })
	}
	t.Run("--set-default over default_runtime is refused", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "config.toml")
		writeFile(t, file, cinInput(t, "config-v2-legacy-default.toml"), 0o644)
		cinRefused(t, file, `containerd 1.6/1.7 would keep the runtime "default" as its default`, "--set-default")
	})
	t.Run("--set-default over systemd_cgroup is refused", func(t *testing.T) {
		config := cinInput(t, "config-v2-runtime-v1.toml")
		file := filepath.Join(t.TempDir(), "config.toml")
		writeFile(t, file, config, 0o644)
		cinRefused(t, file, `would not load the CRI plugin: systemd_cgroup = true works only when the default runtime has runtime_type io.containerd.runtime.v1.linux`, "--set-default")
		// What the change would have done, by hand: containerd refuses
		// the CRI plugin.
		byHand := strings.Replace(config, `default_runtime_name = "runc"`, `default_runtime_name = "capshim"`, 1) +
			"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.capshim]\n  runtime_type = \"io.containerd.runc.v2\"\n"
		d := cinDaemon(t, "")
		writeFile(t, d.cfgPath, cinPrivate(t, d, byHand, false), 0o644)
		v := cinRead(t, d)
		if got := v.plugins["io.containerd.grpc.v1 cri"]; got != "error" || !strings.Contains(cinCRIFailure(d), "`systemd_cgroup` only works for runtime io.containerd.runtime.v1.linux") {
			t.Errorf("with capshim as the default by hand, the CRI plugin is %q:\n%s", got, cinCRIFailure(d))
		}
	})
}

// cinRun checks one case with the containerd binary bin ("" = 1.6 on
// PATH).
func cinRun(t *testing.T, bin string, tc cinCase) {
	t.Helper()
	two := bin != ""
	config := cinInput(t, tc.in)
	before := cinDaemon(t, bin)
	writeFile(t, before.cfgPath, cinPrivate(t, before, config, two), 0o644)
	vb := cinRead(t, before)
	before.stop(t)
	if got := vb.plugins["io.containerd.grpc.v1 cri"]; got != tc.criBefore || vb.names() != tc.before {
		t.Fatalf("before install: CRI plugin %q with %q, want %q with %q (the input is not what the case says)\n%s", got, vb.names(), tc.criBefore, tc.before, cinCRIFailure(before))
	}

	d := cinDaemon(t, bin)
	file := filepath.Join(d.dir, "installed.toml")
	orig := cinLocalize(config, d.dir)
	writeFile(t, file, orig, 0o644)
	policy := filepath.Join(d.dir, "shim.toml")
	args := append([]string{"containerd", "--file", file, "--policy", policy}, tc.args...)
	out := installFresh(t, file, policy, args...)
	if tc.note != "" && !strings.Contains(out, tc.note) {
		t.Errorf("install does not say %q:\n%s", tc.note, out)
	}
	if tc.note == "" && strings.Contains("\n"+out, "\nWARNING") {
		t.Errorf("install warns:\n%s", out)
	}
	installAgain(t, file, args...)
	if b := readFile(t, file+".capshim-backup"); string(b) != orig {
		t.Errorf("the backup is not the original file:\n%s", b)
	}
	edited := string(readFile(t, file))
	writeFile(t, d.cfgPath, cinPrivate(t, d, edited, two), 0o644)
	va := cinRead(t, d)
	if got := va.plugins["io.containerd.grpc.v1 cri"]; got != tc.criAfter || va.names() != tc.after {
		t.Errorf("after install: CRI plugin %q with %q, want %q with %q\n%s\nconfig:\n%s", got, va.names(), tc.criAfter, tc.after, cinCRIFailure(d), edited)
	}
	if two {
		if got := va.plugins["io.containerd.cri.v1 runtime"]; got != tc.criAfter {
			t.Errorf("after install: CRI runtime plugin %q, want %q", got, tc.criAfter)
		}
	}
	// Nothing else changed its state in ctr plugins ls.
	for id, st := range vb.plugins {
		if id != "io.containerd.grpc.v1 cri" && id != "io.containerd.cri.v1 runtime" && va.plugins[id] != st {
			t.Errorf("plugin %s: %s before install, %q after", id, st, va.plugins[id])
		}
	}
	cinCheckRuntimes(t, vb, va)

	if tc.enable != "" {
		// The CRI plugin turned on by hand later: the edited file's
		// runtimes are what containerd then uses.
		on := strings.Replace(edited, `disabled_plugins = ["io.containerd.grpc.v1.cri"]`, "disabled_plugins = []", 1)
		if on == edited {
			t.Fatalf("the edited file does not disable the CRI plugin by its full name:\n%s", edited)
		}
		e := cinDaemon(t, bin)
		writeFile(t, e.cfgPath, cinPrivate(t, e, strings.ReplaceAll(on, d.dir, e.dir), two), 0o644)
		ve := cinRead(t, e)
		if got := ve.plugins["io.containerd.grpc.v1 cri"]; got != "ok" || ve.names() != tc.enable {
			t.Errorf("edited file with the CRI plugin on: %q with %q, want ok with %q\n%s", got, ve.names(), tc.enable, cinCRIFailure(e))
		}
		cinCheckRuntimes(t, vb, ve)
	}
}

// cinCheckRuntimes checks the handlers after install: each one of before
// still there with its runtime_type, capshim the runc shim with capshim as
// its binary.
func cinCheckRuntimes(t *testing.T, before, after cinView) {
	t.Helper()
	if after.runtimes == nil {
		return
	}
	for name, r := range before.runtimes {
		a, ok := after.runtimes[name]
		if !ok {
			t.Errorf("install hid the runtime handler %q", name)
			continue
		}
		if a.Type != r.Type {
			t.Errorf("runtime %q: runtime_type %q became %q", name, r.Type, a.Type)
		}
	}
	if _, had := before.runtimes["runc"]; !had {
		if r, ok := after.runtimes["runc"]; ok && r.Type != "io.containerd.runc.v2" {
			t.Errorf("runtime runc, written by install, has runtime_type %q", r.Type)
		}
	}
	c := after.runtimes["capshim"]
	if c.Type != "io.containerd.runc.v2" || c.Options["BinaryName"] != capshimBin {
		t.Errorf("runtime capshim = %+v, want the runc v2 shim with BinaryName %s", c, capshimBin)
	}
}

// cinRefused runs an install that must be refused: exit 2 with want in
// its error, the file and its directory as they were.
func cinRefused(t *testing.T, file, want string, flags ...string) {
	t.Helper()
	old := readFile(t, file)
	entries, _ := os.ReadDir(filepath.Dir(file))
	args := append([]string{"install", "containerd", "--file", file, "--policy", filepath.Join(filepath.Dir(file), "shim.toml")}, flags...)
	r := runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"})}, capshimBin, args...)
	if r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Errorf("want exit 2 saying %q:\n%v", want, r)
	}
	if got := readFile(t, file); string(got) != string(old) {
		t.Errorf("refused install changed %s", file)
	}
	// The policy is written before the engine's file is edited; nothing
	// else may appear.
	after, _ := os.ReadDir(filepath.Dir(file))
	for _, e := range after {
		if e.Name() != "shim.toml" && !containsEntry(entries, e.Name()) {
			t.Errorf("refused install left %s", e.Name())
		}
	}
}

func containsEntry(entries []os.DirEntry, name string) bool {
	for _, e := range entries {
		if e.Name() == name {
			return true
		}
	}
	return false
}

// cinCheckDebianStock checks that install/testdata/in/config-debian-1.6.toml
// is the file Debian's containerd package installs: when this host's
// /etc/containerd/config.toml is unmodified (its MD5 is the one dpkg
// recorded for the conffile), both must be equal.
func cinCheckDebianStock(t *testing.T) {
	const conffile = "/etc/containerd/config.toml"
	out, err := exec.Command("dpkg-query", "-W", "-f=${Conffiles}", "containerd").Output()
	if err != nil {
		t.Skipf("dpkg-query: %v", err)
	}
	var sum string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == conffile {
			sum = f[1]
		}
	}
	host, err := os.ReadFile(conffile)
	if err != nil || sum == "" {
		t.Skipf("no %s of the containerd package here (%v)", conffile, err)
	}
	if h := md5.Sum(host); hex.EncodeToString(h[:]) != sum {
		t.Skipf("%s was modified on this host; cannot compare", conffile)
	}
	if got := cinInput(t, "config-debian-1.6.toml"); got != string(host) {
		t.Errorf("config-debian-1.6.toml differs from the package's %s:\n%s", conffile, host)
	}
}

// TestInstallContainerd2KeepsCRI does the same with containerd 2.x, whose
// CRI plugin keeps its runc whatever the file lists, on version 3 configs
// and on Debian's version 2 one. No Debian release ships containerd 2.x:
// CAPSHIM_CONTAINERD2 names its binary (built, for example, with
// CGO_ENABLED=0 GOBIN=DIR go install -tags "no_btrfs no_devmapper no_zfs"
// github.com/containerd/containerd/v2/cmd/containerd@v2.2.7); without it
// the test is skipped. containerd 2.x creates /run/containerd whatever its
// state directory is; the test removes it again when it was not there and
// is empty.
func TestInstallContainerd2KeepsCRI(t *testing.T) {
	bin := os.Getenv("CAPSHIM_CONTAINERD2")
	if bin == "" {
		t.Skip("CAPSHIM_CONTAINERD2 does not name a containerd 2.x binary")
	}
	requireContainerd(t)
	if out, err := exec.Command(bin, "--version").Output(); err != nil || !strings.Contains(string(out), " 2.") {
		t.Fatalf("%s --version: %q %v, want containerd 2.x", bin, out, err)
	}
	if _, err := os.Lstat("/run/containerd"); err != nil {
		t.Cleanup(func() { _ = syscall.Rmdir("/run/containerd") }) // only when empty
	}
	cases := []cinCase{
		{name: "version 3 without runtimes", in: "config-v3-minimal.toml",
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "runc: capshim runc"},
		{name: "version 3, another default", in: "config-v3-nvidia.toml",
			criBefore: "ok", before: "nvidia: nvidia runc", criAfter: "ok", after: "nvidia: capshim nvidia runc",
			note: "the runtime nvidia sets SystemdCgroup = true"},
		{name: "containerd config default 2.2", in: "config-default-2.2.toml",
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "runc: capshim runc", note: "the file imports"},
		{name: "Debian stock config (version 2)", in: "config-debian-1.6.toml",
			criBefore: "ok", before: "runc: runc", criAfter: "ok", after: "runc: capshim runc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { cinRun(t, bin, tc) })
	}
}
