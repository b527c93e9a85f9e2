//go:build integration

package integration

// runc and crun driven directly, the way an engine's shim drives them:
// capshim is called with the runtime's command line, reduces the
// capabilities of the bundle's config.json (or of an exec process.json)
// and execs the runtime; the container prints the Cap* lines of its
// /proc/self/status.
//
// Every test uses its own bundle, its own state directory (--root) and its
// own container ids, and removes its containers with `delete --force` in
// t.Cleanup even when it fails. The containers keep their own network
// namespace and get no network setup.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runcPath is the runc the runtime tests run, directly or behind capshim.
const runcPath = "/usr/bin/runc"

// requireRunc checks the environment every runc test needs.
func requireRunc(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if _, err := os.Stat(runcPath); err != nil {
		t.Fatalf("runc missing at %s (apt-get install runc): %v", runcPath, err)
	}
}

// containerID returns a container id unique to this test run.
func containerID(t *testing.T) string {
	t.Helper()
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	if len(name) > 60 {
		name = name[:60]
	}
	return strings.ToLower("csit-" + name + "-" + hex.EncodeToString(r[:]))
}

// runcRoot returns a fresh runc state directory.
func runcRoot(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "runc-root")
}

// runcCleanup removes container id from runc state root when the test
// ends, whatever happened.
func runcCleanup(t *testing.T, root, id string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = exec.CommandContext(ctx, runcPath, "--root", root, "delete", "--force", id).Run()
		if runcExists(root, id) {
			t.Errorf("cleanup: container %s still exists in %s", id, root)
		}
	})
}

// runcExists reports whether runc knows container id in state root.
func runcExists(root, id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, runcPath, "--root", root, "state", id).Run() == nil
}

// runcStatus returns runc's status of id ("created", "running",
// "stopped") or "" when it does not exist.
func runcStatus(t *testing.T, root, id string) string {
	t.Helper()
	out, err := exec.Command(runcPath, "--root", root, "state", id).Output()
	if err != nil {
		return ""
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("runc state %s: %v: %s", id, err, out)
	}
	return st.Status
}

// runcWaitStatus waits up to 20s for container id to reach status want.
func runcWaitStatus(t *testing.T, root, id, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		if got = runcStatus(t, root, id); got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("container %s: status %q, want %q", id, got, want)
}

// shimEnv is the environment capshim runs with: PATH and, when policy is
// not empty, CAPSHIM_CONFIG.
func shimEnv(policy string) []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	if policy != "" {
		env = append(env, "CAPSHIM_CONFIG="+policy)
	}
	return env
}

// globalArgs is the global part of the runtime command line engines use.
func globalArgs(root, log string) []string {
	return []string{"--root", root, "--log", log, "--log-format", "json"}
}

// runBundle runs bundle b in the foreground through capshim with
// policy (env CAPSHIM_CONFIG) in a fresh runc root, with a JSON --log in the
// bundle, and removes the container at cleanup. It returns the result, the
// log path and the container id.
func runBundle(t *testing.T, b, policy string) (res cmdResult, log, id string) {
	t.Helper()
	root := runcRoot(t)
	id = containerID(t)
	runcCleanup(t, root, id)
	log = filepath.Join(b, "log.json")
	res = requireExited(t, runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(globalArgs(root, log), "run", "--bundle", b, id)...))
	return res, log, id
}

// rewriteSpec returns what `capshim rewrite` (with extra flags, e.g.
// --builtin) makes of the spec at path.
func rewriteSpec(t *testing.T, path string, flags ...string) []byte {
	t.Helper()
	args := append(append([]string{"rewrite"}, flags...), path)
	res := runCmd(cmdOpts{env: shimEnv("")}, capshimBin, args...)
	if res.code != 0 {
		t.Fatalf("capshim rewrite failed:\n%s", res)
	}
	return []byte(res.stdout)
}

// crunNeedsPrivateCgroupNS reports whether crun would refuse this host's
// cgroup layout (hybrid with controllers on the cgroup2 hierarchy).
func crunNeedsPrivateCgroupNS() bool {
	b, err := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	return err == nil && strings.TrimSpace(string(b)) != ""
}

// crunWrap returns argv, run in a private mount namespace without the
// cgroup2 hierarchy when crun needs that here.
func crunWrap(t *testing.T, argv []string) []string {
	t.Helper()
	if !crunNeedsPrivateCgroupNS() {
		return argv
	}
	return inPrivateMounts(t, `umount /sys/fs/cgroup/unified`, argv)
}

// inPrivateMounts returns argv run in a private mount namespace after the
// shell commands setup.
func inPrivateMounts(t *testing.T, setup string, argv []string) []string {
	t.Helper()
	unshare := requireBinary(t, "unshare")
	return append([]string{unshare, "--mount", "--propagation", "private", "sh", "-c",
		setup + ` && exec "$@"`, "sh"}, argv...)
}

// crunWrapV2 returns argv run as on a cgroup v2 host, which is where crun
// puts each container in a cgroup v2 of its own (what capshim's recording
// tells containers apart by): in a private mount namespace whose
// /sys/fs/cgroup is the v2 hierarchy alone, the v1 hierarchies hidden.
// crun then enables the v2 controllers it finds at the root (hugetlb
// here), which testMain gives back (hostCgroupState). bpffs is mounted in
// the host's namespace first: a bpffs that capshim-trace mounted inside
// the private namespace would take the recorder's pins with it.
func crunWrapV2(t *testing.T, argv []string) []string {
	t.Helper()
	if !crunNeedsPrivateCgroupNS() {
		return argv
	}
	if err := hostState.ensureBPFFS(); err != nil {
		t.Fatal(err)
	}
	return inPrivateMounts(t, `umount /sys/fs/cgroup/unified && mount -t cgroup2 cgroup2 /sys/fs/cgroup`, argv)
}

// crunSetup checks for crun, builds a busybox rootfs and a state root and
// writes the crun policy.
func crunSetup(t *testing.T) (rootfs, stateRoot, policy string) {
	t.Helper()
	requireRoot(t)
	if _, err := os.Stat("/usr/bin/crun"); err != nil {
		t.Fatalf("/usr/bin/crun missing (make test installs crun): %v", err)
	}
	rootfs = filepath.Join(t.TempDir(), "rootfs")
	buildRootfs(t, rootfs)
	stateRoot = shortTempDir(t, "capshim-crun-")
	policy = writePolicy(t, chownPolicy("/usr/bin/crun"))
	return rootfs, stateRoot, policy
}

// ociRuntime is a real runtime that tests run containers on directly, with
// the wrapper its command line needs on this host (crunWrap for crun).
type ociRuntime struct {
	name string
	path string
	wrap func(t *testing.T, argv []string) []string
	// noDeviceRules: bundles for it carry no device cgroup rules. crun
	// 1.8 on cgroup v2 loads its device filter only after raising
	// RLIMIT_MEMLOCK to unlimited, and fails the container when it cannot,
	// as this host's root cannot (it lacks CAP_SYS_RESOURCE).
	noDeviceRules bool
	// ownV2Cgroup: its containers get a cgroup v2 of their own,
	// /sys/fs/cgroup/unified/ID here, which a failed create may leave.
	ownV2Cgroup bool
}

// ociRuntimes are runc and crun: they read specs differently, so what
// capshim writes must hold on both.
func ociRuntimes(t *testing.T) []ociRuntime {
	return []ociRuntime{
		{name: "runc", path: requireBinary(t, "runc"), wrap: func(_ *testing.T, argv []string) []string { return argv }},
		{name: "crun", path: "/usr/bin/crun", wrap: crunWrap},
	}
}

// recordingRuntimes are runc and crun as they run where capshim can record
// their containers: crun as on a cgroup v2 host (crunWrapV2), where it gives
// each container a cgroup v2 of its own.
func recordingRuntimes(t *testing.T) []ociRuntime {
	rts := ociRuntimes(t)
	if crunNeedsPrivateCgroupNS() {
		rts[1].wrap, rts[1].noDeviceRules, rts[1].ownV2Cgroup = crunWrapV2, true, true
	}
	return rts
}

// deleteContainer force-deletes a container of either runtime (cleanup).
func deleteContainer(t *testing.T, rt ociRuntime, stateRoot, id string) {
	t.Helper()
	argv := rt.wrap(t, []string{rt.path, "--root", stateRoot, "delete", "--force", id})
	r := runCmd(cmdOpts{timeout: 30 * time.Second}, argv[0], argv[1:]...)
	if r.err != nil && !strings.Contains(r.stderr+r.stdout, "not exist") && !strings.Contains(r.stderr, "No such file") {
		t.Logf("cleanup: %v", r)
	}
	if rt.ownV2Cgroup && !strings.ContainsAny(id, "/.") {
		if err := syscall.Rmdir(filepath.Join("/sys/fs/cgroup/unified", id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Logf("cleanup: removing the cgroup of %s: %v", id, err)
		}
	}
}

// hostCgroups is what running crun as on a cgroup v2 host changes on this
// host, for testMain to give back: the controllers crun enables at the v2
// root, and a bpffs mounted for the recorder's pins.
type hostCgroups struct {
	subtree      []string // the v2 root's cgroup.subtree_control at the start
	saved        bool
	mountedBPFFS bool
}

// hostState is saved by testMain before the tests and restored after.
var hostState hostCgroups

const (
	v2RootSubtree = "/sys/fs/cgroup/unified/cgroup.subtree_control"
	bpffsDir      = "/sys/fs/bpf"
	bpffsMagic    = 0xcafe4a11
)

func (h *hostCgroups) save() {
	b, err := os.ReadFile(v2RootSubtree)
	if err == nil {
		h.subtree, h.saved = strings.Fields(string(b)), true
	}
}

// ensureBPFFS mounts bpffs at /sys/fs/bpf in the host's mount namespace
// when nothing is mounted there.
func (h *hostCgroups) ensureBPFFS() error {
	var st syscall.Statfs_t
	if syscall.Statfs(bpffsDir, &st) == nil && st.Type == bpffsMagic {
		return nil
	}
	if err := syscall.Mount("bpf", bpffsDir, "bpf", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, "mode=0700"); err != nil {
		return fmt.Errorf("mounting bpffs at %s for crun's recorded containers: %w", bpffsDir, err)
	}
	h.mountedBPFFS = true
	return nil
}

// restore disables at the v2 root what the tests enabled there and
// unmounts the bpffs they mounted.
func (h *hostCgroups) restore() {
	if h.saved {
		b, _ := os.ReadFile(v2RootSubtree)
		for _, c := range strings.Fields(string(b)) {
			if slices.Contains(h.subtree, c) {
				continue
			}
			if err := os.WriteFile(v2RootSubtree, []byte("-"+c), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "restoring %s: disabling %s: %v\n", v2RootSubtree, c, err)
			}
		}
	}
	if h.mountedBPFFS {
		if err := syscall.Unmount(bpffsDir, 0); err != nil {
			fmt.Fprintf(os.Stderr, "unmounting the bpffs the tests mounted at %s: %v\n", bpffsDir, err)
		}
	}
}
