package trace

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestManyWatched watches more cgroups, and records more executables, than
// one batched look-up of the maps returns, as a busy node does: every
// watched cgroup is listed and in the config's levels, and each harvest
// gets exactly its own cgroup's executables out of all of them.
func TestManyWatched(t *testing.T) {
	requireTracing(t)
	tr, _ := newTracer(t)
	const watched, links = 150, 70
	dirs := make([]string, watched)
	cgs := make([]Cgroup, watched)
	want := map[uint64]bool{}
	for i := range cgs {
		dirs[i], cgs[i] = newCgroup(t, "")
		if err := tr.Watch(cgs[i]); err != nil {
			t.Fatal(err)
		}
		want[cgs[i].ID] = true
	}
	ids, err := tr.Watched()
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]bool{}
	for _, id := range ids {
		got[id] = true
	}
	if len(ids) != watched || len(got) != watched {
		t.Fatalf("%d watched cgroups listed (%d distinct), want %d", len(ids), len(got), watched)
	}
	for id := range want {
		if !got[id] {
			t.Errorf("watched cgroup %d is not listed", id)
		}
	}
	if l := levels(t, tr); l != 1<<cgs[0].Level {
		t.Errorf("levels %#x, want %#x", l, uint64(1)<<cgs[0].Level)
	}

	// Each link is a path of its own to the kernel.
	linkDir := t.TempDir()
	var steps, wantExecs []string
	for i := 0; i < links; i++ {
		p := filepath.Join(linkDir, fmt.Sprintf("true-%d", i))
		if err := os.Symlink("/bin/true", p); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, "exec "+p)
		wantExecs = append(wantExecs, p)
	}
	wantSteps(t, runHelper(t, dirs[0], steps...))
	wantSteps(t, runHelper(t, dirs[1], "exec /bin/true"))
	for _, tt := range []struct {
		name string
		cg   Cgroup
		want []string
	}{
		{name: "the cgroup of one executable", cg: cgs[1], want: []string{"/bin/true", os.Args[0]}},
		{name: "the cgroup of many", cg: cgs[0], want: append(wantExecs, os.Args[0])},
	} {
		rec, err := tr.Harvest(tt.cg.ID)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		slices.Sort(tt.want)
		if !slices.Equal(rec.Execs, tt.want) || !rec.Complete {
			t.Errorf("%s: %d executables (complete %v), want %d: %q", tt.name, len(rec.Execs), rec.Complete, len(tt.want), rec.Execs)
		}
	}
	for _, cg := range cgs[2:] {
		if _, err := tr.Harvest(cg.ID); err != nil {
			t.Fatal(err)
		}
	}
	if ids, err := tr.Watched(); err != nil || len(ids) != 0 {
		t.Errorf("after every harvest: %d watched, %v", len(ids), err)
	}
}
