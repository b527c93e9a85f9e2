//go:build integration

package integration

// What the engine launchers share: a daemon started in its own process
// group with its output in a log and stopped by its PID, and the check
// that no helper process of an engine (its containerd, shims, conmon)
// outlives it.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemonProc is a long-running engine process (dockerd) started by a test.
type daemonProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startDaemon starts argv[0] in its own process group with stdout and
// stderr going to logPath, and registers a cleanup that stops it.
func startDaemon(t *testing.T, logPath string, env []string, argv ...string) *daemonProc {
	t.Helper()
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = lf, lf
	// Own process group (a ^C to `go test` does not hit it mid-shutdown);
	// SIGTERM when the test binary dies without running its cleanups (a
	// `go test -timeout` panic), so no daemon outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", argv[0], err)
	}
	d := &daemonProc{name: filepath.Base(argv[0]), cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	t.Logf("started %s pid %d", d.name, cmd.Process.Pid)
	t.Cleanup(func() { d.stop(t) })
	return d
}

// exited reports whether the daemon process has ended.
func (d *daemonProc) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the daemon's PID, waits up to 30s, then SIGKILLs
// it. Safe to call more than once.
func (d *daemonProc) stop(t *testing.T) {
	t.Helper()
	if d.exited() {
		return
	}
	start := time.Now()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		t.Logf("%s (pid %d) stopped after SIGTERM in %v", d.name, d.cmd.Process.Pid, time.Since(start).Round(time.Millisecond))
		return
	case <-time.After(30 * time.Second):
	}
	t.Errorf("%s (pid %d) ignored SIGTERM for 30s, sending SIGKILL", d.name, d.cmd.Process.Pid)
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s (pid %d) survived SIGKILL", d.name, d.cmd.Process.Pid)
	}
}

// tail returns the last n lines of the daemon's log.
func (d *daemonProc) tail(n int) string {
	return tailFile(d.log, n)
}

// procsMentioning returns the PIDs (other than this process) whose
// command line contains marker. The engines' helper processes (dockerd's
// containerd, containerd-shim-runc-v2, conmon) all name their private
// state directory on their command line, and the test's temp dirs are
// unique, so this finds exactly the processes this test caused.
func procsMentioning(marker string) map[int]string {
	out := map[int]string{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if strings.Contains(cmd, marker) {
			out[pid] = cmd
		}
	}
	return out
}

// killLeftovers reports and then kills (by PID) every process whose
// command line still mentions dir: after an engine was stopped cleanly
// there must be none.
func killLeftovers(t *testing.T, dir string) {
	t.Helper()
	// With the slash, /tmp/x-12 does not match /tmp/x-123.
	marker := strings.TrimSuffix(dir, "/") + "/"
	left := procsMentioning(marker)
	if len(left) == 0 {
		return
	}
	// Their descendants (container processes under a shim or conmon) do
	// not name dir; kill them first, then the helpers themselves.
	kids := descendants(left)
	for pid, cmd := range kids {
		t.Errorf("container process left running (killing pid %d): %s", pid, cmd)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for pid, cmd := range left {
		t.Errorf("process left running after the engine was stopped (killing pid %d): %s", pid, cmd)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(procsMentioning(marker)) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
}

// descendants returns the descendants of the given processes that are
// not among them, with their command lines.
func descendants(roots map[int]string) map[int]string {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	out := map[int]string{}
	var walk func(int)
	walk = func(pid int) {
		for _, c := range children[pid] {
			if _, isRoot := roots[c]; isRoot {
				continue
			}
			if _, seen := out[c]; seen {
				continue
			}
			b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(c), "cmdline"))
			out[c] = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
			walk(c)
		}
	}
	for pid := range roots {
		walk(pid)
	}
	return out
}
