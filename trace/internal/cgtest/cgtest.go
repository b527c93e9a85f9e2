// Package cgtest makes throw-away cgroup v2 directories for the recorder's
// tests (package trace and trace/pinned share it; it imports neither, so
// pinned's own tests can use it).
package cgtest

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// Dir creates a cgroup directory below parent (a directory of the v2
// hierarchy), removed at the end of the test.
func Dir(t testing.TB, parent string) string {
	t.Helper()
	dir, err := os.MkdirTemp(parent, "capshim-test-")
	if err != nil {
		t.Fatalf("creating a cgroup: %v", err)
	}
	t.Cleanup(func() { Remove(t, dir) })
	return dir
}

// Remove removes dir once its last task is gone (a reaped child can
// linger in it for a moment).
func Remove(t testing.TB, dir string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			t.Errorf("removing cgroup %s: %v", dir, err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
