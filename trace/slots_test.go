package trace

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/capshim/capshim/trace/internal/cgtest"
	"github.com/capshim/capshim/trace/pinned"
)

// slotOf reads the slot of cgroup id: its holder and, when that is id, the
// record counted there so far.
func slotOf(t *testing.T, tr *Tracer, id uint64) (holder uint64, rec Record) {
	t.Helper()
	v := make([]byte, pinned.SlotSize)
	if err := tr.objs.slots.Lookup(pinned.SlotIndex(id), &v); err != nil {
		t.Fatalf("reading the slot of cgroup %d: %v", id, err)
	}
	return binary.NativeEndian.Uint64(v), decodeRecord(id, v[8:], 0)
}

// collider makes a cgroup whose slot is that of cgroup id. Cgroup ids are
// handed out in order (each directory takes a run of them for its files),
// so creating and removing directories reaches every residue after a few
// hundred tries.
func collider(t testing.TB, id uint64) (string, Cgroup) {
	t.Helper()
	mp, _, err := V2Root()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 16*pinned.Slots; i++ {
		dir := filepath.Join(mp, "capshim-test-slot-"+strconv.Itoa(os.Getpid())+"-"+strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cg, err := CgroupByPath(dir)
		if err == nil && cg.ID != id && pinned.SlotIndex(cg.ID) == pinned.SlotIndex(id) {
			t.Cleanup(func() { cgtest.Remove(t, dir) })
			return dir, cg
		}
		cgtest.Remove(t, dir)
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("no cgroup with the slot of cgroup %d after %d tries", id, 16*pinned.Slots)
	return "", Cgroup{}
}

// TestSlots checks both places a watched cgroup's checks are counted in:
// its slot, and its cgroups entry when another watched cgroup holds the
// slot; that a harvest frees the slot; and that a slot left by a harvest
// that died half-way neither blocks nor leaks into a later watch.
func TestSlots(t *testing.T) {
	requireTracing(t)
	tr, _ := newTracer(t)
	f := newFiles(t)

	aDir, a := newCgroup(t, "")
	if err := tr.Watch(a); err != nil {
		t.Fatal(err)
	}
	if holder, _ := slotOf(t, tr, a.ID); holder != a.ID {
		t.Fatalf("the slot of the first watched cgroup %d is held by %d", a.ID, holder)
	}
	bDir, b := collider(t, a.ID)
	if err := tr.Watch(b); err != nil {
		t.Fatal(err)
	}
	if holder, _ := slotOf(t, tr, b.ID); holder != a.ID {
		t.Fatalf("cgroup %d took the slot of cgroup %d, which still holds it (holder %d)", b.ID, a.ID, holder)
	}

	// A task below a watched cgroup is found by walking up, which tries
	// the cgroups map alone: its checks meet the slot's at the harvest.
	below, _ := newCgroup(t, aDir)
	wantSteps(t, runHelper(t, aDir, "chown "+f.own+" 1000"))
	wantSteps(t, runHelper(t, below, "mknod "+f.node+"-below"))
	wantSteps(t, runHelper(t, bDir, "chown "+f.own+" 1001", "mknod "+f.node))
	if _, rec := slotOf(t, tr, a.ID); rec.UsedCount[capChown] != 1 || rec.UsedCount[capMknod] != 0 {
		t.Errorf("the slot of cgroup %d counts %d chown and %d mknod checks, want its own task's one chown", a.ID, rec.UsedCount[capChown], rec.UsedCount[capMknod])
	}

	for _, tt := range []struct {
		name string
		id   uint64
		want Record
	}{
		{name: "in its slot, and below it in its cgroups entry", id: a.ID, want: Record{Used: caps(capChown, capMknod)}},
		{name: "in its cgroups entry", id: b.ID, want: Record{Used: caps(capChown, capMknod)}},
	} {
		rec, err := tr.Harvest(tt.id)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if rec.Used != tt.want.Used || rec.Refused != 0 {
			t.Errorf("%s: used %v refused %v, want used %v", tt.name, rec.Used, rec.Refused, tt.want.Used)
		}
		for _, c := range tt.want.Used.Caps() {
			if rec.UsedCount[c] != 1 {
				t.Errorf("%s: %d checks of %v, want 1", tt.name, rec.UsedCount[c], c)
			}
		}
	}
	if holder, _ := slotOf(t, tr, a.ID); holder != 0 {
		t.Errorf("after both harvests the slot is held by %d", holder)
	}

	// A harvest that died after it took the cgroups entry leaves the slot
	// held: the same cgroup watched again starts from nothing, and another
	// cgroup of that slot takes it.
	stale := func(dir string, cg Cgroup) {
		t.Helper()
		if err := tr.Watch(cg); err != nil {
			t.Fatal(err)
		}
		wantSteps(t, runHelper(t, dir, "chown "+f.own+" 1002", "chown "+f.own+" 1003"))
		if err := tr.objs.cgroups.Delete(cg.ID); err != nil {
			t.Fatal(err)
		}
	}
	stale(aDir, a)
	if err := tr.Watch(a); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, runHelper(t, aDir, "chown "+f.own+" 1004"))
	rec, err := tr.Harvest(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.UsedCount[capChown] != 1 {
		t.Errorf("watched again after a lost harvest: %d chown checks, want the new run's one", rec.UsedCount[capChown])
	}
	stale(aDir, a)
	if err := tr.Watch(b); err != nil {
		t.Fatal(err)
	}
	if holder, _ := slotOf(t, tr, b.ID); holder != b.ID {
		t.Errorf("the slot left by cgroup %d was not taken by cgroup %d (holder %d)", a.ID, b.ID, holder)
	}
	wantSteps(t, runHelper(t, bDir, "chown "+f.own+" 1005"))
	if rec, err = tr.Harvest(b.ID); err != nil {
		t.Fatal(err)
	}
	if rec.UsedCount[capChown] != 1 {
		t.Errorf("cgroup %d in a slot taken over: %d chown checks, want its one", b.ID, rec.UsedCount[capChown])
	}
}
