//go:build integration

package integration

// A private Podman 4.3: private storage (--root, --runroot, --tmpdir under
// a temp dir) and its own containers.conf through CONTAINERS_CONF.
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
	removeNewCgroupParent(t, "libpod_parent")
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
