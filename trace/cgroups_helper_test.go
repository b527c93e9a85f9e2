package trace

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// newCgroup creates a cgroup below parent (a directory of the v2
// hierarchy; "" is its root), removed at the end of the test.
func newCgroup(t testing.TB, parent string) (string, Cgroup) {
	t.Helper()
	if parent == "" {
		mp, _, err := V2Root()
		if err != nil {
			t.Fatal(err)
		}
		parent = mp
	}
	dir, err := os.MkdirTemp(parent, "capshim-test-")
	if err != nil {
		t.Fatalf("creating a cgroup: %v", err)
	}
	t.Cleanup(func() { removeCgroup(t, dir) })
	cg, err := CgroupByPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, cg
}

// removeCgroup removes dir once its last task is gone (a reaped child can
// linger in it for a moment).
func removeCgroup(t testing.TB, dir string) {
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
