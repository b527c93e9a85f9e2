//go:build integration

package integration

// Podman 4.3 tests: podman with private storage (--root/--runroot/--tmpdir
// under a temp dir, its own containers.conf through CONTAINERS_CONF) runs
// containers through capshim given as --runtime PATH.
//
// How the policy reaches capshim under podman (verified with a spy runtime):
//   - podman and conmon do NOT pass podman's environment to the runtime, so
//     CAPSHIM_CONFIG in podman's env is lost;
//   - `--runtime-flag capshim-config=PATH` makes podman put
//     `--capshim-config=PATH` before the command on the runtime calls of
//     that podman invocation (create, start, exec, kill, delete);
//   - containers.conf `[engine] conmon_env_vars = [..., "CAPSHIM_CONFIG=PATH"]`
//     reaches the calls made through conmon (create, exec) only;
//   - podman runs start/kill/delete itself with a scrubbed environment, and
//     the `delete --force` after a container exits comes from `podman
//     container cleanup` (conmon's exit command) with NO runtime flags and
//     an environment holding only PWD, SHLVL and XDG_RUNTIME_DIR (no PATH,
//     no CAPSHIM_CONFIG). There capshim must find the real runtime from
//     /etc/capshim/shim.toml or its built-in default without PATH.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	podmanTimeout = 2 * time.Minute
	// maskPodman is Podman's 11 default capabilities (containers.conf
	// default_capabilities): CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL,
	// NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT.
	maskPodman = 0x800405fb
	// maskPodmanMinimal is what capshim's default (maskMinimal) leaves of
	// Podman's set: KILL and NET_BIND_SERVICE. Podman does not grant
	// AUDIT_WRITE and capshim never adds a capability.
	maskPodmanMinimal = maskMinimal & maskPodman
	// maskSysAdmin is CAP_SYS_ADMIN (21).
	maskSysAdmin = 1 << 21
)

// podmanConfBase is the containers.conf every test podman uses. With
// CONTAINERS_CONF set podman reads only this file, so Podman's default
// capabilities are pinned here (Debian's podman 4.3.1 compiles in 14, its
// /usr/share/containers/containers.conf narrows them to 11). The VM's
// NOFILE hard limit is 20000 and root lacks CAP_SYS_RESOURCE, so podman's
// default ulimits (1048576) cannot be set: default_ulimits = [].
const podmanConfBase = `[containers]
default_ulimits = []
default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]
`

// podmanEngine is a podman with private storage.
type podmanEngine struct {
	dir    string
	global []string // podman's global flags (storage, cgroups, events)
}

// podmanSetup prepares private storage under a temp dir, loads the test
// images and registers a cleanup that removes all containers, resets the
// storage and checks no conmon or mount is left.
func podmanSetup(t *testing.T) *podmanEngine {
	t.Helper()
	requireRoot(t)
	requireBinary(t, "podman")
	requireBinary(t, "conmon")
	dir := shortTempDir(t, "capshim-pm-")
	t.Cleanup(func() { killLeftovers(t, dir) })
	for _, d := range []string{"storage", "run", "tmp", "net"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "storage.conf"), fmt.Sprintf(
		"[storage]\ndriver = \"overlay\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(dir, "storage"), filepath.Join(dir, "run")), 0o644)
	p := &podmanEngine{dir: dir, global: []string{
		"--root", filepath.Join(dir, "storage"),
		"--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"),
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
	}}
	p.writeConf(t, "containers.conf", "")
	t.Cleanup(func() {
		if r := p.podman("containers.conf", "rm", "--all", "--force", "--time", "0"); r.err != nil {
			t.Logf("podman rm: %v", r)
		}
		if r := p.podman("containers.conf", "system", "reset", "--force"); r.err != nil {
			t.Logf("podman system reset: %v", r)
		}
		podmanCheckRuntimeState(t, dir)
	})
	archive := filepath.Join(t.TempDir(), "images.tar")
	buildDockerArchive(t, archive)
	if r := p.podman("containers.conf", "load", "-i", archive); r.err != nil {
		t.Fatalf("podman load: %v", r)
	}
	return p
}

// podmanRuncRoot is where runc keeps container state when podman calls it:
// podman passes no --root, so runc uses its default.
const podmanRuncRoot = "/run/runc"

// podmanCheckRuntimeState reports (as a test error) and then removes runc
// state of containers whose bundle lies under dir: every container must
// have been deleted from the runtime. Podman runs `runtime delete --force`
// (from `podman container cleanup`, conmon's exit command) with an EMPTY
// environment and without --runtime-flag values, so capshim has neither
// PATH nor CAPSHIM_CONFIG there and must still find the real runtime.
func podmanCheckRuntimeState(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(podmanRuncRoot)
	if err != nil {
		return
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(podmanRuncRoot, e.Name(), "state.json"))
		if err != nil || !strings.Contains(string(b), dir+"/") {
			continue
		}
		t.Errorf("runc state of container %s left in %s after podman removed it: the runtime delete failed (podman calls `delete --force` with an empty environment; try `env -i %s delete --force ID`)",
			e.Name(), podmanRuncRoot, capshimBin)
		if r := runCmd(cmdOpts{timeout: 30 * time.Second}, "/usr/bin/runc", "--root", podmanRuncRoot, "delete", "--force", e.Name()); r.err != nil {
			t.Logf("cleanup: %v", r)
		}
	}
}

// writeConf writes a containers.conf named name (podmanConfBase plus extra)
// into the engine's dir.
func (p *podmanEngine) writeConf(t *testing.T, name, extra string) {
	t.Helper()
	body := podmanConfBase + fmt.Sprintf("[network]\nnetwork_config_dir = %q\n", filepath.Join(p.dir, "net")) + extra
	writeFile(t, filepath.Join(p.dir, name), body, 0o644)
}

// podman runs podman with the engine's global flags and CONTAINERS_CONF
// pointing at the named containers.conf.
func (p *podmanEngine) podman(conf string, args ...string) cmdResult {
	env := envWithout([]string{"CONTAINERS_", "CAPSHIM_", "REGISTRIES_CONFIG_PATH="},
		"CONTAINERS_CONF="+filepath.Join(p.dir, conf),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(p.dir, "storage.conf"),
	)
	return runCmd(cmdOpts{timeout: podmanTimeout, env: env}, "podman", slices.Concat(p.global, args)...)
}

// TestPodman runs containers through capshim under podman: the container's
// capabilities, requests through annotations and env, `podman exec
// --privileged` and a broken policy.
func TestPodman(t *testing.T) {
	p := podmanSetup(t)
	policy := writePolicy(t, chownPolicy("/usr/bin/runc"))
	broken := writePolicy(t, brokenPolicy)
	// A second containers.conf makes capshim podman's default runtime and
	// hands it the policy through conmon's environment.
	p.writeConf(t, "engine.conf", fmt.Sprintf(`[engine]
runtime = "capshim"
conmon_env_vars = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "CAPSHIM_CONFIG=%s"]
[engine.runtimes]
capshim = [%q]
`, policy, capshimBin))

	viaFlag := []string{"--runtime", capshimBin, "--runtime-flag", "capshim-config=" + policy}
	t.Run("run", func(t *testing.T) {
		cases := []struct {
			name   string
			conf   string   // containers.conf to use
			global []string // extra global flags (runtime selection)
			args   []string // between "run --rm --network none" and the image
			want   uint64
		}{
			{name: "runtime path and runtime-flag", conf: "containers.conf", global: viaFlag, want: maskPodmanMinimal},
			// Control: plain runc keeps Podman's 11 default capabilities.
			{name: "runc control", conf: "containers.conf", global: []string{"--runtime", "/usr/bin/runc"}, want: maskPodman},
			// The CHOWN request is granted only by the test policy (the
			// built-in default has no rule): the policy did arrive.
			{name: "containers.conf runtime and conmon_env_vars", conf: "engine.conf", args: []string{"--annotation", "capshim.io/capabilities=CAP_CHOWN"}, want: maskPodmanMinimal | maskChown},
			{name: "request by annotation", conf: "containers.conf", global: viaFlag, args: []string{"--annotation", "capshim.io/capabilities=CAP_CHOWN"}, want: maskPodmanMinimal | maskChown},
			{name: "request by env", conf: "containers.conf", global: viaFlag, args: []string{"-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskPodmanMinimal | maskChown},
			{name: "request after --cap-drop", conf: "containers.conf", global: viaFlag, args: []string{"--cap-drop", "CHOWN", "--annotation", "capshim.io/capabilities=CAP_CHOWN"}, want: maskPodmanMinimal},
			// NET_RAW is added by podman (--cap-add) but allowed by no rule.
			{name: "request denied", conf: "containers.conf", global: viaFlag, args: []string{"--cap-add", "NET_RAW", "--annotation", "capshim.io/capabilities=CAP_NET_RAW"}, want: maskPodmanMinimal},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				args := append(append([]string{}, tc.global...), "run", "--rm", "--network", "none")
				args = append(args, tc.args...)
				args = append(args, imageBusybox, "grep", "Cap", "/proc/self/status")
				r := p.podman(tc.conf, args...)
				if r.err != nil {
					t.Fatalf("%v", r)
				}
				t.Logf("%s: %v", r.cmdline, r.took.Round(time.Millisecond))
				assertCaps(t, r.stdout, tc.want)
			})
		}
	})

	t.Run("exec", func(t *testing.T) {
		cases := []struct {
			name   string
			global []string
			flags  []string
			check  func(t *testing.T, status string)
		}{
			{name: "capshim exec", global: viaFlag, check: func(t *testing.T, s string) { assertCaps(t, s, maskPodmanMinimal) }},
			// A privileged exec asks for every capability, AUDIT_WRITE
			// included: capshim keeps at most its default set.
			{name: "capshim exec --privileged", global: viaFlag, flags: []string{"--privileged"}, check: func(t *testing.T, s string) { assertCapsAtMost(t, s, maskMinimal) }},
			// Control: under plain runc a privileged exec gets every
			// capability the host has, far beyond the container's own set.
			{name: "runc control exec --privileged", global: []string{"--runtime", "/usr/bin/runc"}, flags: []string{"--privileged"}, check: func(t *testing.T, s string) {
				if got := capLines(t, s)["CapBnd"]; got&maskSysAdmin == 0 {
					t.Errorf("control: privileged exec under runc has CapBnd %016x without CAP_SYS_ADMIN; the capshim case proves nothing\n%s", got, s)
				}
			}},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				name := fmt.Sprintf("capshim-exec-%d", i)
				run := append(append([]string{}, tc.global...), "run", "-d", "--name", name, "--network", "none", imageBusybox, "sleep", "300")
				if r := p.podman("containers.conf", run...); r.err != nil {
					t.Fatalf("%v", r)
				}
				defer func() {
					rm := append(append([]string{}, tc.global...), "rm", "--force", "--time", "0", name)
					if r := p.podman("containers.conf", rm...); r.err != nil {
						t.Errorf("%v", r)
					}
				}()
				ex := append(append([]string{}, tc.global...), "exec")
				ex = append(ex, tc.flags...)
				ex = append(ex, name, "grep", "Cap", "/proc/self/status")
				r := p.podman("containers.conf", ex...)
				if r.err != nil {
					t.Fatalf("%v", r)
				}
				t.Logf("%s: %v", r.cmdline, r.took.Round(time.Millisecond))
				tc.check(t, r.stdout)
			})
		}
	})

	// Every container above was removed by podman; the runtime must have
	// deleted its state too (see podmanCheckRuntimeState).
	defer t.Run("runtime state removed", func(t *testing.T) {
		podmanCheckRuntimeState(t, p.dir)
	})

	t.Run("broken policy", func(t *testing.T) {
		r := p.podman("containers.conf", "--runtime", capshimBin, "--runtime-flag", "capshim-config="+broken,
			"run", "--rm", "--network", "none", imageBusybox, "grep", "Cap", "/proc/self/status")
		if r.err == nil {
			t.Fatalf("podman run with a broken policy succeeded; capshim must fail closed\n%v", r)
		}
		t.Logf("%s failed as expected in %v:\n%s", r.cmdline, r.took.Round(time.Millisecond), r.stderr)
		if strings.Contains(r.stdout, "CapBnd") {
			t.Errorf("the container ran although the policy is broken:\n%s", r.stdout)
		}
		if !strings.Contains(r.stderr, "capshim:") {
			t.Errorf("podman's error does not carry capshim's message (want %q in it):\n%s", "capshim:", r.stderr)
		}
		if !containsAny(r.stderr, broken, "toml", "parse", "syntax") {
			t.Errorf("podman's error does not say why (want the policy path %s or the TOML error):\n%s", broken, r.stderr)
		}
	})
}
