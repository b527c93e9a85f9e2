//go:build integration

package integration

// A private containerd (1.6 from PATH unless a test names another binary):
// its root, state, sockets and config under a temporary directory, the CRI
// plugin with the runtime handlers a test asks for, the test images
// imported, and ctr pointed at it.
//
// Isolation rules: the daemon is started and stopped by its pid, its
// containers run in a cgroup parent of their own, and the host's
// /run/containerd/containerd.sock is never touched. Teardown is in
// helpers_containerd_teardown_test.go.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
