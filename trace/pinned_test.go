package trace

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"testing"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/trace/pinned"
	"github.com/cilium/ebpf"
)

// TestRuntimePath is a container's life as the runtime binary lives it:
// the recorder is loaded and pinned by another process (here a Tracer that
// is closed at once), then watched and harvested with package pinned's
// plain bpf(2) calls, which unpin it when nothing is left to watch.
func TestRuntimePath(t *testing.T) {
	requireTracing(t)
	opts := testOptions(t)
	f := newFiles(t)
	loader, err := AttachWith(opts)
	if err != nil {
		t.Fatal(err)
	}
	loader.Close()

	dir, cg := newCgroup(t, "")
	if err := pinned.WatchPinned(opts, cg); err != nil {
		t.Fatalf("watch on the pins: %v", err)
	}
	wantSteps(t, runHelper(t, dir, "chown "+f.own+" 1000", "mknod "+f.node))
	rec, err := pinned.HarvestPinned(opts, cg.ID)
	if err != nil {
		t.Fatalf("harvest: %v", err)
	}
	t.Logf("%v", rec)
	if want := capability.Set(0).Add(capability.Cap(0)).Add(capability.Cap(27)); rec.Used != want || !rec.Complete {
		t.Errorf("used %v (complete %v), want %v", rec.Used, rec.Complete, want)
	}
	obs := pinned.Observation(rec)
	if obs.Used["CAP_CHOWN"] == 0 || obs.Used["CAP_MKNOD"] == 0 || len(obs.Used) != 2 {
		t.Errorf("observation %v", obs.Used)
	}
	if _, err := os.Stat(opts.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pins left after the last harvest: %v", err)
	}
	if _, err := pinned.HarvestPinned(opts, cg.ID); !errors.Is(err, pinned.ErrNoPins) {
		t.Errorf("harvest without pins: %v, want ErrNoPins", err)
	}
	if err := pinned.WatchPinned(opts, cg); !errors.Is(err, pinned.ErrNoPins) {
		t.Errorf("watch without pins: %v, want ErrNoPins", err)
	}
}

// TestPinnedAgrees checks package pinned's reading of the kernel's
// structures against the BPF library's: the map id and the program's
// recursion misses.
func TestPinnedAgrees(t *testing.T) {
	requireTracing(t)
	tr, _ := newTracer(t)
	if uint32(tr.objs.mapID) != tr.rec.MapID() {
		t.Errorf("map id %d, library says %d", tr.rec.MapID(), tr.objs.mapID)
	}
	st, err := tr.objs.prog.Stats()
	if err != nil {
		t.Fatal(err)
	}
	misses, err := tr.rec.Misses()
	if err != nil {
		t.Fatal(err)
	}
	if misses != st.RecursionMisses {
		t.Errorf("misses %d, library says %d", misses, st.RecursionMisses)
	}
}

// TestPinnedRefusesOthers: pins that are not capshim's recorder's are not
// used.
func TestPinnedRefusesOthers(t *testing.T) {
	requireTracing(t)
	opts := testOptions(t)
	if err := os.Mkdir(opts.Dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(opts.Dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := pinned.Open(opts.Dir); err == nil || errors.Is(err, pinned.ErrNoPins) {
		t.Errorf("a directory anybody may write: %v", err)
	}
	if err := os.Chmod(opts.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := pinned.Open(opts.Dir); !errors.Is(err, pinned.ErrNoPins) {
		t.Errorf("empty directory: %v, want ErrNoPins", err)
	}
	// A recorder whose map is swapped for another map of the same name
	// but another size is another layout.
	tr, err := AttachWith(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	r, err := pinned.Open(opts.Dir)
	if err != nil {
		t.Fatalf("the real pins: %v", err)
	}
	r.Close()
	// The slots came with the layout: a slots pin that is another array is
	// refused, and one that is missing leaves the pins incomplete.
	slots := opts.Dir + "/" + pinned.PinSlots
	if err := os.Remove(slots); err != nil {
		t.Fatal(err)
	}
	// Maps the library pinned move when pinned again: the stand-ins are
	// objects of their own.
	small, err := ebpf.NewMap(&ebpf.MapSpec{Name: pinned.SlotsName, Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: pinned.Slots})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if err := small.Pin(slots); err != nil {
		t.Fatal(err)
	}
	if _, err := pinned.Open(opts.Dir); err == nil || errors.Is(err, pinned.ErrNoPins) {
		t.Errorf("a slots pin that is an array of other values: %v", err)
	}
	if err := os.Remove(slots); err != nil {
		t.Fatal(err)
	}
	if _, err := pinned.Open(opts.Dir); !errors.Is(err, pinned.ErrNoPins) {
		t.Errorf("no slots pin: %v, want ErrNoPins", err)
	}
	info, err := tr.objs.slots.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := info.ID()
	again, err := ebpf.NewMapFromID(id)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if err := again.Pin(slots); err != nil {
		t.Fatal(err)
	}
	if r, err = pinned.Open(opts.Dir); err != nil {
		t.Fatalf("the real pins again: %v", err)
	}
	r.Close()
	if err := os.Remove(opts.Dir + "/" + pinConfig); err != nil {
		t.Fatal(err)
	}
	if err := tr.objs.cgroups.Pin(opts.Dir + "/" + pinConfig); err != nil {
		t.Fatal(err)
	}
	if _, err := pinned.Open(opts.Dir); err == nil {
		t.Error("a config pin that is the cgroups map was accepted")
	}
}

// TestExecsRecorded: the executables a watched cgroup runs are handed
// over with its record, each once, and those of other cgroups are not.
func TestExecsRecorded(t *testing.T) {
	requireTracing(t)
	tr, _ := newTracer(t)
	dir, cg := newCgroup(t, "")
	other, ocg := newCgroup(t, "")
	for _, c := range []Cgroup{cg, ocg} {
		if err := tr.Watch(c); err != nil {
			t.Fatal(err)
		}
	}
	wantSteps(t, runHelper(t, dir, "exec /bin/true", "exec /bin/true", "exec /bin/false"), "exec /bin/false")
	wantSteps(t, runHelper(t, other, "exec /bin/echo"))
	rec, err := tr.Harvest(cg.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v; execs %q", rec, rec.Execs)
	want := []string{"/bin/false", "/bin/true", os.Args[0]}
	slices.Sort(want)
	if !slices.Equal(rec.Execs, want) || !rec.Complete {
		t.Errorf("execs %q (complete %v), want %q", rec.Execs, rec.Complete, want)
	}
	orec, err := tr.Harvest(ocg.ID)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"/bin/echo", os.Args[0]}
	slices.Sort(want)
	if !slices.Equal(orec.Execs, want) {
		t.Errorf("other cgroup's execs %q, want %q", orec.Execs, want)
	}
}
