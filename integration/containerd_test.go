//go:build integration

package integration

// containerd tests: a private containerd 1.6 (own root, state, sockets and
// config under a temporary directory) runs containers through capshim with
// `ctr run --runc-binary`. The daemon helpers (ctd...) are shared with the
// CRI tests in cri_test.go.
//
// Isolation and clean-up rules: the daemon is started and stopped by its
// pid; every shim it started is found by the "-address SOCK" of its command
// line and killed by pid; container processes are found in the test's own
// cgroup parent and killed by pid; every mount under the temporary directory
// is unmounted and the cgroup parent is removed. Nothing is ever killed by
// name and the host's /run/containerd/containerd.sock is never touched.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// criHandler is one CRI runtime handler of the private containerd.
type criHandler struct {
	name   string // CRI runtime handler name (RuntimeClass handler)
	binary string // BinaryName of the runc v2 shim; "" = runc from PATH
	// annotations lets the handler pass the capshim annotations from the
	// pod / container config into config.json.
	annotations bool
}

// containerdDaemon is a running private containerd.
type containerdDaemon struct {
	dir      string // everything of this daemon lives below dir
	sock     string // gRPC socket
	cfgPath  string
	logPath  string
	cgParent string // cgroupfs parent of all its containers, e.g. /capshim-it-ctd-123-1
	// bin is the containerd binary ("" = containerd on PATH) and args are
	// flags added after --config (e.g. --root, --state and --address for
	// a config that names the host's paths).
	bin    string
	args   []string
	cmd    *exec.Cmd
	exited chan struct{}
	// beforeStop runs (in order) before the daemon is stopped, e.g. to
	// remove CRI pods while the daemon still answers.
	beforeStop []func()
}

var containerdSeq atomic.Int32

const (
	containerdDirPrefix    = "capshim-ctd-"     // os.TempDir()/capshim-ctd-XXX: one daemon
	containerdCgroupPrefix = "/capshim-it-ctd-" // cgroup parent of one daemon's containers
)

// cleanStaleContainerd releases what earlier test runs that died without their
// clean-up left behind: directories of daemons that no longer run (older
// than two minutes, so a daemon that is just starting is never touched).
func cleanStaleContainerd(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), containerdDirPrefix+"*"))
	for _, dir := range dirs {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < 2*time.Minute || containerdRunning(dir) {
			continue
		}
		cg, _ := os.ReadFile(filepath.Join(dir, "cgroup-parent"))
		d := &containerdDaemon{dir: dir, sock: filepath.Join(dir, "containerd.sock"), cgParent: strings.TrimSpace(string(cg))}
		t.Logf("releasing stale containerd directory %s", dir)
		d.release(t)
	}
}

// containerdRunning reports whether a containerd runs with dir's config.
func containerdRunning(dir string) bool {
	cfg := filepath.Join(dir, "config.toml")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(raw), "\x00") {
			if a == cfg {
				return true
			}
		}
	}
	return false
}

const (
	imageBusybox = "docker.io/capshim-test/busybox:1"
	imagePause   = "docker.io/capshim-test/pause:1"
)

// requireContainerd skips or fails the test when the containerd tool set is not
// usable here.
func requireContainerd(t *testing.T) {
	t.Helper()
	requireRoot(t)
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc"} {
		requireBinary(t, b)
	}
}

// containerdConfig renders a containerd config (version 2) for a private daemon:
// everything below dir, the CRI plugin with one runtime handler per entry
// of handlers, no CNI (pods use the host network) and
// restrict_oom_score_adj, because root here may lack CAP_SYS_RESOURCE.
func containerdConfig(dir, sock string, handlers []criHandler) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# private containerd for capshim integration tests
version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %q
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = %q
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    disable_apparmor = true
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = %q
      conf_dir = %q
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc",
		filepath.Join(dir, "opt"), imagePause,
		filepath.Join(dir, "cni", "bin"), filepath.Join(dir, "cni", "net.d"))
	for _, h := range handlers {
		key := fmt.Sprintf(`[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%q]`, h.name)
		fmt.Fprintf(&b, "      %s\n        runtime_type = \"io.containerd.runc.v2\"\n", key)
		if h.annotations {
			b.WriteString("        pod_annotations = [\"capshim.io/*\", \"io.containers.capabilities\"]\n")
			b.WriteString("        container_annotations = [\"capshim.io/*\"]\n")
		}
		fmt.Fprintf(&b, "        %s\n", strings.TrimSuffix(key, "]")+".options]")
		if h.binary != "" {
			fmt.Fprintf(&b, "          BinaryName = %q\n", h.binary)
		}
		fmt.Fprintf(&b, "          Root = %q\n", filepath.Join(dir, "runc-root", h.name))
	}
	return b.String()
}

// startContainerd starts a private containerd with the given CRI handlers and
// extra environment (inherited by its shims and by the runtime binary).
// Everything is torn down by t.Cleanup, also when the test fails.
func startContainerd(t *testing.T, handlers []criHandler, env []string) *containerdDaemon {
	t.Helper()
	d := newContainerd(t)
	writeFile(t, d.cfgPath, containerdConfig(d.dir, d.sock, handlers), 0o644)
	d.launch(t, env)
	return d
}

// newContainerd makes the directories of a private containerd (no config yet)
// and registers its teardown, which also copes with a daemon never
// started.
func newContainerd(t *testing.T) *containerdDaemon {
	t.Helper()
	// Short base path: the unix socket path must stay below 108 bytes.
	cleanStaleContainerd(t)
	dir, err := os.MkdirTemp("", containerdDirPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &containerdDaemon{
		dir:      dir,
		sock:     filepath.Join(dir, "containerd.sock"),
		cfgPath:  filepath.Join(dir, "config.toml"),
		logPath:  filepath.Join(dir, "containerd.log"),
		cgParent: fmt.Sprintf("%s%d-%d", containerdCgroupPrefix, os.Getpid(), containerdSeq.Add(1)),
		exited:   make(chan struct{}),
	}
	t.Cleanup(func() { d.teardown(t) })
	for _, sub := range []string{"root", "state", "opt", "logs", "cni/bin", "cni/net.d", "runc-root", "fifo"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "cgroup-parent"), d.cgParent, 0o644)
	return d
}

// launch starts containerd on d.cfgPath as it is, with env added to the
// environment, and waits until it answers.
func (d *containerdDaemon) launch(t *testing.T, env []string) {
	t.Helper()
	logf, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	bin := d.bin
	if bin == "" {
		bin = "containerd"
	}
	d.cmd = exec.Command(bin, append([]string{"--config", d.cfgPath}, d.args...)...)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Own session: a ^C on the test does not hit the daemon first, and the
	// daemon never holds the test's terminal. Pdeathsig: if the test binary
	// dies without its clean-up (timeout panic, SIGKILL), the daemon gets
	// SIGTERM; the thread that starts it is locked so that the signal is
	// tied to a thread that lives as long as the process.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
	runtime.LockOSThread()
	err = d.cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	t.Logf("containerd pid %d on %s, socket %s, cgroup parent %s", d.cmd.Process.Pid, d.cfgPath, d.sock, d.cgParent)

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-d.exited:
			t.Fatalf("containerd exited during start-up:\n%s", d.logTail(40))
		default:
		}
		if _, err := os.Stat(d.sock); err == nil {
			if _, err := d.ctr(context.Background(), "default", "version"); err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not come up within 30s:\n%s", d.logTail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ctr runs ctr against the private daemon in namespace ns.
func (d *containerdDaemon) ctr(ctx context.Context, ns string, args ...string) (string, error) {
	full := append([]string{"--address", d.sock, "--namespace", ns}, args...)
	cmd := exec.CommandContext(ctx, "ctr", full...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// importImages loads the test images (busybox, pause) into namespace ns.
func (d *containerdDaemon) importImages(t *testing.T, ns string) {
	t.Helper()
	archive := filepath.Join(d.dir, "images.tar")
	if _, err := os.Stat(archive); err != nil {
		buildImageArchive(t, archive)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := d.ctr(ctx, ns, "images", "import", archive); err != nil {
		t.Fatalf("%v\n%s", err, d.logTail(20))
	}
	out, err := d.ctr(ctx, ns, "images", "ls", "-q")
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{imageBusybox, imagePause} {
		if !strings.Contains(out, img) {
			t.Fatalf("image %s not in namespace %s after import:\n%s", img, ns, out)
		}
	}
}

// logTail returns the last n lines of the daemon's log.
func (d *containerdDaemon) logTail(n int) string {
	data, _ := os.ReadFile(d.logPath)
	return lastLines(string(data), n)
}

// teardown removes every trace of the daemon. Errors are reported but do
// not stop the remaining steps.
func (d *containerdDaemon) teardown(t *testing.T) {
	for _, f := range d.beforeStop {
		f()
	}
	if t.Failed() {
		t.Logf("containerd log (tail):\n%s", d.logTail(60))
	}
	d.stop(t)
	d.release(t)
}

// release removes what a stopped daemon may have left: its shims, container
// processes in its cgroup parent, mounts, cgroups and its directory.
func (d *containerdDaemon) release(t *testing.T) {
	for _, pid := range d.shimPids() {
		t.Logf("killing leftover shim pid %d", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	d.killCgroupProcs(t)
	d.unmountAll(t)
	d.removeCgroups(t)
	if left := mountsUnder(d.dir); len(left) > 0 {
		t.Errorf("mounts left under %s, not removing it: %v", d.dir, left)
		return
	}
	if err := os.RemoveAll(d.dir); err != nil {
		t.Errorf("removing %s: %v", d.dir, err)
	}
}

// stop ends the daemon by its pid: SIGTERM, then SIGKILL after 10s.
func (d *containerdDaemon) stop(t *testing.T) {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return
	case <-time.After(10 * time.Second):
	}
	t.Logf("containerd pid %d ignored SIGTERM, killing it", d.cmd.Process.Pid)
	_ = d.cmd.Process.Kill()
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		t.Errorf("containerd pid %d did not exit", d.cmd.Process.Pid)
	}
}

// shimPids lists the shims started by this daemon: their command line
// carries "-address <our socket>".
func (d *containerdDaemon) shimPids() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if !strings.Contains(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if (args[i] == "-address" || args[i] == "--address") && args[i+1] == d.sock {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// cgroupDirs lists the directories of our cgroup parent in every mounted
// hierarchy (cgroup v1 controllers and the v2 unified tree).
func (d *containerdDaemon) cgroupDirs() []string {
	// Never walk anything but a parent this file created.
	if !strings.HasPrefix(d.cgParent, containerdCgroupPrefix) || strings.Contains(d.cgParent[1:], "/") {
		return nil
	}
	var dirs []string
	base := strings.TrimPrefix(d.cgParent, "/")
	cands, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", base))
	cands = append(cands, filepath.Join("/sys/fs/cgroup", base))
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			dirs = append(dirs, c)
		}
	}
	return dirs
}

// killCgroupProcs kills, by pid, container processes left in our cgroup
// parent (possible only when a shim had to be killed).
func (d *containerdDaemon) killCgroupProcs(t *testing.T) {
	pids := map[int]bool{}
	for _, top := range d.cgroupDirs() {
		_ = filepath.WalkDir(top, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
					pids[pid] = true
				}
			}
			return nil
		})
	}
	for pid := range pids {
		t.Logf("killing leftover container process %d", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// unmountAll unmounts everything below d.dir (lazily if it is busy).
func (d *containerdDaemon) unmountAll(t *testing.T) {
	for i := 0; i < 3; i++ {
		ms := mountsUnder(d.dir)
		if len(ms) == 0 {
			return
		}
		for _, m := range ms {
			if err := syscall.Unmount(m, 0); err != nil && !errors.Is(err, syscall.EINVAL) {
				if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
					t.Logf("unmount %s: %v", m, err)
				}
			}
		}
	}
}

// removeCgroups removes our cgroup parent from every hierarchy.
func (d *containerdDaemon) removeCgroups(t *testing.T) {
	for _, top := range d.cgroupDirs() {
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		// Children first.
		for i := len(dirs) - 1; i >= 0; i-- {
			var err error
			for try := 0; try < 20; try++ {
				if err = syscall.Rmdir(dirs[i]); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond) // processes may still be exiting
			}
			if err != nil {
				t.Errorf("removing cgroup %s: %v", dirs[i], err)
			}
		}
	}
}

// livePolicy holds a policy file whose content a test can replace between
// cases: capshim reads it on every container start (env CAPSHIM_CONFIG).
// Its decisions go to a log next to it (log = "" is replaced).
type livePolicy struct {
	path    string
	logPath string
}

func newLivePolicy(t *testing.T, toml string) *livePolicy {
	t.Helper()
	p := &livePolicy{path: writePolicy(t, "")}
	p.logPath = filepath.Join(filepath.Dir(p.path), "decisions.log")
	p.set(t, toml)
	return p
}

// set replaces the policy atomically (write + rename in the same
// root-owned directory, mode 0644).
func (p *livePolicy) set(t *testing.T, toml string) {
	t.Helper()
	toml = strings.Replace(toml, "\nlog = \"\"\n", fmt.Sprintf("\nlog = %q\n", p.logPath), 1)
	tmp := p.path + ".new"
	writeFile(t, tmp, toml, 0o644)
	if err := os.Rename(tmp, p.path); err != nil {
		t.Fatal(err)
	}
}

// decisions returns the last n lines of capshim's decision log.
func (p *livePolicy) decisions(n int) string {
	data, _ := os.ReadFile(p.logPath)
	return lastLines(string(data), n)
}

// policyTOML renders a policy with capshim's default target and the
// given [[rule]] tables (already rendered).
func policyTOML(rules ...string) string {
	s := `runtime = "/usr/bin/runc"
mode = "enforce"
default = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
never = ["CAP_SYS_ADMIN", "CAP_SYS_MODULE"]
on_denied_request = "drop"
log = ""
`
	for _, r := range rules {
		s += "\n" + r
	}
	return s
}

const (
	ruleChown = `[[rule]]
name = "chown-anywhere"
capabilities = ["CAP_CHOWN"]
`
	ruleNetAdmin = `[[rule]]
name = "net-admin-anywhere"
capabilities = ["CAP_NET_ADMIN", "CAP_CHOWN"]
`
	ruleChownWeb = `[[rule]]
name = "chown-for-web"
capabilities = ["CAP_CHOWN"]
[rule.match.annotations]
"io.kubernetes.cri.sandbox-namespace" = "web-*"
`
)

// ctrRunFlags are the `ctr run` flags that keep a container's runtime
// state, fifos and cgroup inside the test's directory and cgroup parent.
// Without --with-ns/--net-host ctr gives the container a new, empty network
// namespace (no CNI is involved).
func (d *containerdDaemon) ctrRunFlags(id string) []string {
	return []string{
		"--runtime", "io.containerd.runc.v2",
		"--runc-root", filepath.Join(d.dir, "runc-root", "ctr"),
		"--fifo-dir", filepath.Join(d.dir, "fifo"),
		"--cgroup", d.cgParent + "/" + id,
	}
}

// ctrRemove kills and removes a ctr container, ignoring errors.
func (d *containerdDaemon) ctrRemove(ns, id string) {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _ = d.ctr(c, ns, "tasks", "kill", "--signal", "SIGKILL", id)
	_, _ = d.ctr(c, ns, "tasks", "delete", "--force", id)
	_, _ = d.ctr(c, ns, "containers", "delete", id)
}

// TestCtrRun runs `ctr run` through capshim (--runc-binary) and reads the
// capabilities the container process really has.
func TestCtrRun(t *testing.T) {
	requireContainerd(t)
	pol := newLivePolicy(t, policyTOML())
	d := startContainerd(t, nil, []string{"CAPSHIM_CONFIG=" + pol.path})
	const ns = "capshim-it-ctr"
	d.importImages(t, ns)

	tests := []struct {
		name       string
		policy     string
		runcBinary string // "" = plain runc (control)
		annotation string // capshim.io/capabilities value, "" = none
		want       uint64
		wantErr    []string // ctr run must fail with all of these in its output
	}{
		{
			name:       "control: plain runc keeps containerd defaults",
			policy:     policyTOML(ruleChown),
			annotation: "CAP_CHOWN",
			want:       maskDocker,
		},
		{
			name:       "no request: default target",
			policy:     policyTOML(ruleChown),
			runcBinary: capshimBin,
			want:       maskMinimal,
		},
		{
			name:       "request without rule is dropped",
			policy:     policyTOML(),
			runcBinary: capshimBin,
			annotation: "CAP_CHOWN",
			want:       maskMinimal,
		},
		{
			name:       "request allowed by rule is granted",
			policy:     policyTOML(ruleChown),
			runcBinary: capshimBin,
			annotation: "CAP_CHOWN",
			want:       maskMinimal | maskChown,
		},
		{
			name:       "request in lower case without prefix",
			policy:     policyTOML(ruleChown),
			runcBinary: capshimBin,
			annotation: "chown",
			want:       maskMinimal | maskChown,
		},
		{
			// NET_ADMIN is allowed but containerd did not grant it: never escalate.
			name:       "allowed capability outside the engine's set is not added",
			policy:     policyTOML(ruleNetAdmin),
			runcBinary: capshimBin,
			annotation: "CAP_NET_ADMIN,CAP_CHOWN",
			want:       maskMinimal | maskChown,
		},
		{
			name:       "audit mode changes nothing",
			policy:     strings.Replace(policyTOML(), `mode = "enforce"`, `mode = "audit"`, 1),
			runcBinary: capshimBin,
			annotation: "CAP_CHOWN",
			want:       maskDocker,
		},
		{
			name:       "denied request with on_denied_request=fail refuses the container",
			policy:     strings.Replace(policyTOML(), `on_denied_request = "drop"`, `on_denied_request = "fail"`, 1),
			runcBinary: capshimBin,
			annotation: "CAP_CHOWN",
			wantErr:    []string{"OCI runtime create failed", "capshim:", "CAP_CHOWN"},
		},
		{
			// Fail closed: the error reaches the user through containerd.
			name:       "unusable policy refuses the container",
			policy:     strings.Replace(policyTOML(), `mode = "enforce"`, `mode = "bogus"`, 1),
			runcBinary: capshimBin,
			wantErr:    []string{"OCI runtime create failed", "capshim:", "bogus"},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol.set(t, tc.policy)
			id := fmt.Sprintf("capshim-ctr-%d-%d", os.Getpid(), i)
			args := append([]string{"run", "--rm"}, d.ctrRunFlags(id)...)
			if tc.runcBinary != "" {
				args = append(args, "--runc-binary", tc.runcBinary)
			}
			if tc.annotation != "" {
				args = append(args, "--annotation", "capshim.io/capabilities="+tc.annotation)
			}
			args = append(args, imageBusybox, id, "grep", "Cap", "/proc/self/status")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			t.Cleanup(func() { d.ctrRemove(ns, id) }) // only matters when `run --rm` failed half-way
			start := time.Now()
			out, err := d.ctr(ctx, ns, args...)
			t.Logf("ctr run took %v", time.Since(start).Round(time.Millisecond))
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("ctr run succeeded, want failure; output:\n%s", out)
				}
				t.Logf("refused as expected: %s", strings.TrimSpace(out))
				for _, w := range tc.wantErr {
					if !strings.Contains(out, w) {
						t.Errorf("ctr run output lacks %q:\n%s", w, out)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\ncontainerd log:\n%s\ncapshim decisions:\n%s", err, d.logTail(15), pol.decisions(5))
			}
			assertCaps(t, out, tc.want)
			if t.Failed() {
				t.Logf("capshim decision: %s", pol.decisions(1))
			}
		})
	}

	// Fail closed applies to create/run/restore/exec only: with a broken
	// policy a running container must still be killed and deleted.
	t.Run("unusable policy does not block kill and delete", func(t *testing.T) {
		pol.set(t, policyTOML())
		id := fmt.Sprintf("capshim-ctr-%d-kill", os.Getpid())
		t.Cleanup(func() { d.ctrRemove(ns, id) })
		t.Cleanup(func() { pol.set(t, policyTOML()) }) // runs first
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		args := append([]string{"run", "--detach"}, d.ctrRunFlags(id)...)
		args = append(args, "--runc-binary", capshimBin, imageBusybox, id, "sleep", "300")
		if _, err := d.ctr(ctx, ns, args...); err != nil {
			t.Fatal(err)
		}
		pol.set(t, strings.Replace(policyTOML(), `mode = "enforce"`, `mode = "bogus"`, 1))
		if _, err := d.ctr(ctx, ns, "tasks", "kill", "--signal", "SIGKILL", id); err != nil {
			t.Fatalf("kill with a broken policy: %v", err)
		}
		var err error
		for i := 0; i < 50; i++ { // the task needs a moment to be reaped
			if _, err = d.ctr(ctx, ns, "tasks", "delete", id); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("delete with a broken policy: %v", err)
		}
	})
}
