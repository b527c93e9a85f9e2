//go:build integration

package integration

// README "containerd and Kubernetes" followed as written, with `capshim
// install containerd` doing the registration. There is no systemd here
// and /etc is never touched, so install edits a config.toml under the
// test's temp dir (--file), writes the policy there (--policy), and
// containerd is started on that very file (--config). The runtime finds
// the policy through CAPSHIM_CONFIG in containerd's environment where a
// real host has /etc/capshim/shim.toml.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	gotoml "github.com/pelletier/go-toml/v2"
)

// containerdRuncDirs watches runc's default state root of the runc v2 shim,
// /run/containerd/runc/NAMESPACE: the handler install writes sets no Root,
// so CRI containers keep their runc state there. At cleanup (after the
// daemon's teardown, when registered before it) it reports state the test
// left and removes the directories it created, if empty.
func containerdRuncDirs(t *testing.T, ns string) {
	t.Helper()
	dirs := []string{"/run/containerd", "/run/containerd/runc", "/run/containerd/runc/" + ns}
	existed := map[string]bool{}
	for _, d := range dirs {
		if _, err := os.Lstat(d); err == nil {
			existed[d] = true
		}
	}
	before := map[string]bool{}
	if ents, err := os.ReadDir(dirs[2]); err == nil {
		for _, e := range ents {
			before[e.Name()] = true
		}
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(dirs[2])
		for _, e := range ents {
			if !before[e.Name()] {
				t.Errorf("runc state %s/%s left after the pods were removed", dirs[2], e.Name())
			}
		}
		for i := len(dirs) - 1; i >= 0; i-- {
			if !existed[dirs[i]] {
				_ = syscall.Rmdir(dirs[i]) // only when empty
			}
		}
	})
}

// criConfigView is the CRI part of containerd's config, for decoding.
type criConfigView struct {
	Version int `toml:"version"`
	Plugins struct {
		CRI struct {
			Containerd struct {
				DefaultRuntimeName string `toml:"default_runtime_name"`
				Runtimes           map[string]struct {
					RuntimeType          string         `toml:"runtime_type"`
					PodAnnotations       []string       `toml:"pod_annotations"`
					ContainerAnnotations []string       `toml:"container_annotations"`
					Options              map[string]any `toml:"options"`
				} `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"io.containerd.grpc.v1.cri"`
	} `toml:"plugins"`
}

// TestReadmeContainerd follows README "containerd and Kubernetes": capshim
// install containerd on a version 2 config that holds the private daemon's
// settings, (re)start containerd on it, run a CRI pod with the handler
// "capshim" and the README's pod annotation, and `ctr run --runc-binary`.
func TestReadmeContainerd(t *testing.T) {
	requireContainerd(t)
	began := time.Now()
	containerdRuncDirs(t, "k8s.io") // before the daemon: its cleanup runs last
	d := newContainerd(t)
	// The private daemon's settings (root, state, sockets, CRI with
	// restrict_oom_score_adj, disable_apparmor, sandbox_image, CNI dirs,
	// disabled plugins) and its runc handler: exactly what the other
	// containerd tests run on. capshim is not registered yet.
	writeFile(t, d.cfgPath, containerdConfig(d.dir, d.sock, []criHandler{{name: "runc"}}), 0o644)
	policy := filepath.Join(d.dir, "shim.toml")
	// containerd passes capshim neither arguments nor environment of its
	// own, so the capshim it runs reads /etc/capshim/shim.toml: install
	// would refuse a --policy elsewhere, and here writes none (the test
	// hands the policy over through containerd's environment below).
	args := []string{"containerd", "--file", d.cfgPath, "--no-policy"}

	t.Run("install", func(t *testing.T) {
		out := installFresh(t, d.cfgPath, "", args...)
		if strings.Contains(out, "CRI plugin is disabled") {
			t.Errorf("install says the CRI plugin is disabled; it is enabled in %s:\n%s", d.cfgPath, out)
		}
		// install states the CRI plugin's state only when it is disabled
		// (a WARNING, see the dry run below); for an enabled plugin it
		// names "the CRI runtime handler" in its verify hint.
		if !strings.Contains(out, "CRI") {
			t.Errorf("install's output does not mention the CRI plugin:\n%s", out)
		}
		installAgain(t, d.cfgPath, args...)
		var c criConfigView
		if err := gotoml.Unmarshal(readFile(t, d.cfgPath), &c); err != nil {
			t.Fatalf("%s does not decode after install: %v", d.cfgPath, err)
		}
		h, ok := c.Plugins.CRI.Containerd.Runtimes["capshim"]
		if c.Version != 2 || !ok {
			t.Fatalf("%s: version %d, handler capshim present %v", d.cfgPath, c.Version, ok)
		}
		if h.RuntimeType != "io.containerd.runc.v2" {
			t.Errorf("runtime_type = %q", h.RuntimeType)
		}
		if h.Options["BinaryName"] != capshimBin {
			t.Errorf("options.BinaryName = %v, want %s (the capshim next to capshim-tools)", h.Options["BinaryName"], capshimBin)
		}
		if want := []string{"capshim.io/*", "io.containers.capabilities"}; !reflect.DeepEqual(h.PodAnnotations, want) {
			t.Errorf("pod_annotations = %q, want %q (README)", h.PodAnnotations, want)
		}
		if want := []string{"capshim.io/*"}; !reflect.DeepEqual(h.ContainerAnnotations, want) {
			t.Errorf("container_annotations = %q, want %q (README)", h.ContainerAnnotations, want)
		}
		if _, ok := c.Plugins.CRI.Containerd.Runtimes["runc"]; !ok || c.Plugins.CRI.Containerd.DefaultRuntimeName != "runc" {
			t.Errorf("install changed the daemon's runc handler or default runtime: %+v", c.Plugins.CRI.Containerd)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("CRI dry run on a config with CRI disabled", func(t *testing.T) {
		// The other state of the CRI plugin: install warns. A version 2
		// file names the plugin in full; by its short id "cri" containerd
		// does not start at all, and install says that instead.
		for list, want := range map[string]string{
			`["io.containerd.grpc.v1.cri"]`: "WARNING: the CRI plugin is disabled",
			`["cri"]`:                       `would not start: disabled_plugins holds "cri"`,
		} {
			off := filepath.Join(t.TempDir(), "config.toml")
			writeFile(t, off, "version = 2\ndisabled_plugins = "+list+"\n", 0o644)
			r := capshimInstall(t, "containerd", "--dry-run", "--file", off, "--no-policy")
			if !strings.Contains(r.stdout, want) {
				t.Errorf("disabled_plugins = %s: install does not say %q:\n%s", list, want, r.stdout)
			}
		}
	})

	// The policy install wrote is capshim's default (no rule); the test
	// replaces it with one that lets any pod ask for CAP_CHOWN.
	pol := &livePolicy{path: policy, logPath: filepath.Join(d.dir, "decisions.log")}
	pol.set(t, policyTOML(ruleChown))
	d.launch(t, []string{"CAPSHIM_CONFIG=" + policy})
	d.importImages(t, "k8s.io")
	c := dialCRI(t, d)

	t.Run("CRI pod", func(t *testing.T) {
		req := map[string]string{"capshim.io/capabilities": "CAP_CHOWN"}
		cases := []struct {
			name                       string
			pod                        criPod
			wantSandbox, wantContainer uint64
		}{
			{name: "runtimeClassName capshim with the README annotation", pod: criPod{handler: "capshim", namespace: "default", podAnnotation: req}, wantSandbox: maskMinimal | maskChown, wantContainer: maskMinimal | maskChown},
			{name: "runtimeClassName capshim without a request", pod: criPod{handler: "capshim", namespace: "default"}, wantSandbox: maskMinimal, wantContainer: maskMinimal},
			{name: "runc control", pod: criPod{handler: "runc", namespace: "default", podAnnotation: req}, wantSandbox: maskDocker, wantContainer: maskDocker},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := c.run(t, tc.pod)
				if err != nil {
					t.Fatalf("%v\ncontainerd log:\n%s\ncapshim decisions:\n%s", err, d.logTail(20), pol.decisions(3))
				}
				t.Run("sandbox", func(t *testing.T) { assertCaps(t, got.sandboxStatus, tc.wantSandbox) })
				t.Run("container", func(t *testing.T) { assertCaps(t, got.containerStatus, tc.wantContainer) })
				t.Run("exec", func(t *testing.T) { assertCaps(t, got.execStatus, tc.wantContainer) })
				if t.Failed() {
					t.Logf("config.json annotations: %v\ncapshim decisions:\n%s", got.specAnnotations, pol.decisions(3))
				}
			})
		}
	})

	t.Run("ctr run --runc-binary", func(t *testing.T) {
		const ns = "capshim-it-rdm"
		d.importImages(t, ns)
		cases := []struct {
			name       string
			runcBinary string
			annotation bool
			want       uint64
		}{
			// README: ctr run --runtime io.containerd.runc.v2 --runc-binary /usr/local/bin/capshim --annotation capshim.io/capabilities=CAP_CHOWN ...
			{name: "README line", runcBinary: capshimBin, annotation: true, want: maskMinimal | maskChown},
			{name: "no request", runcBinary: capshimBin, want: maskMinimal},
			{name: "runc control", annotation: true, want: maskDocker},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				id := fmt.Sprintf("capshim-rdm-%d-%d", os.Getpid(), i)
				args := append([]string{"run", "--rm"}, d.ctrRunFlags(id)...) // --runtime io.containerd.runc.v2 and private dirs
				if tc.runcBinary != "" {
					args = append(args, "--runc-binary", tc.runcBinary)
				}
				if tc.annotation {
					args = append(args, "--annotation", "capshim.io/capabilities=CAP_CHOWN")
				}
				args = append(args, imageBusybox, id, "grep", "Cap", "/proc/self/status")
				t.Cleanup(func() { d.ctrRemove(ns, id) })
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				start := time.Now()
				out, err := d.ctr(ctx, ns, args...)
				if err != nil {
					t.Fatalf("%v\ncontainerd log:\n%s\ncapshim decisions:\n%s", err, d.logTail(15), pol.decisions(3))
				}
				t.Logf("ctr %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
				assertCaps(t, out, tc.want)
			})
		}
	})
	t.Logf("TestReadmeContainerd took %v (before teardown)", time.Since(began).Round(time.Second))
}
