package trace

import (
	"testing"

	"github.com/capshim/capshim/trace/internal/cgtest"
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
	dir := cgtest.Dir(t, parent)
	cg, err := CgroupByPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, cg
}
