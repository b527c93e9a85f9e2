//go:build integration

package integration

// Tearing a private containerd down so that nothing of it stays: the
// daemon is stopped by its pid; every shim it started is found by the
// "-address SOCK" of its command line and killed by pid; container
// processes are found in the daemon's own cgroup parent and killed by pid;
// every mount under its directory is unmounted and the cgroup parent is
// removed. Nothing is ever killed by name. Directories of earlier runs that
// died before their cleanup are released the same way.

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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
	return cgroupParentDirs(strings.TrimPrefix(d.cgParent, "/"))
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
		for _, dir := range dirsDeepestFirst(top) {
			var err error
			for try := 0; try < 20; try++ {
				if err = syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond) // processes may still be exiting
			}
			if err != nil {
				t.Errorf("removing cgroup %s: %v", dir, err)
			}
		}
	}
}
