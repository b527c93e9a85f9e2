package trace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/trace/internal/cgtest"
)

// Capability numbers used below.
const (
	capChown      = capability.Cap(0)
	capDACOver    = capability.Cap(capDACOverride)
	capDACRead    = capability.Cap(capDACReadSearch)
	capSetPCap    = capability.Cap(8)
	capSysAdm     = capability.Cap(capSysAdmin)
	capMknod      = capability.Cap(27)
	capSetUID     = capability.Cap(7)
	capSetPCapNum = "8"
)

func caps(cs ...capability.Cap) capability.Set {
	var s capability.Set
	for _, c := range cs {
		s = s.Add(c)
	}
	return s
}

func itoa(c capability.Cap) string { return strconv.Itoa(int(c)) }

// files are the test's files: root's own file, a file of uid 1000 that
// only its owner may read, and a path for a device node.
type files struct{ own, foreign, node string }

func newFiles(t *testing.T) files {
	t.Helper()
	dir := t.TempDir()
	f := files{
		own:     filepath.Join(dir, "own"),
		foreign: filepath.Join(dir, "foreign"),
		node:    filepath.Join(dir, "node"),
	}
	if err := os.WriteFile(f.own, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.foreign, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(f.foreign, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	return f
}

// wantSteps checks the helper's report: every step ok except those listed
// as failing (by their line).
func wantSteps(t *testing.T, report []string, failing ...string) {
	t.Helper()
	fail := map[string]bool{}
	for _, f := range failing {
		fail[f] = true
	}
	for _, line := range report {
		step, res, _ := strings.Cut(line, ": ")
		if fail[step] == (res == "ok") {
			t.Errorf("step %q: %s", step, res)
		}
	}
}

// newOverlay mounts an overlay file system whose lower layer holds the
// directory d, as an engine mounts a container's root file system, and
// returns where it is mounted.
func newOverlay(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{filepath.Join(lower, "d"), upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("no overlay file system here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", merged, err)
		}
	})
	return merged
}

// TestRecord runs each case under both ways the program may read the
// task: through its BTF type, and with helpers that copy its fields.
func TestRecord(t *testing.T) {
	requireTracing(t)
	for _, viaBTF := range []bool{true, false} {
		name := "task read by BTF"
		if !viaBTF {
			name = "task read by helpers"
		}
		t.Run(name, func(t *testing.T) {
			tryTaskBTF = viaBTF
			defer func() { tryTaskBTF = true }()
			tr, _ := newTracer(t)
			if tr.objs.taskBTF != viaBTF {
				t.Fatalf("loaded with taskBTF %v, want %v", tr.objs.taskBTF, viaBTF)
			}
			testRecord(t, tr)
		})
	}
}

func testRecord(t *testing.T, tr *Tracer) {
	f := newFiles(t)
	overlay := newOverlay(t)
	tests := []struct {
		name     string
		nested   bool     // run the helper in a cgroup below the watched one
		steps    []string // for the helper
		failing  []string // steps that must fail
		used     capability.Set
		refused  capability.Set
		fallback capability.Set
		runtime  bool // checks by a runtime-named thread were seen
		foreign  bool // checks under other credentials were seen
	}{
		{
			name: "chown used then refused, mknod used",
			steps: []string{
				"chown " + f.own + " 1000",
				"mknod " + f.node,
				"drop " + itoa(capChown),
				"chown " + f.own + " 0",
			},
			failing: []string{"chown " + f.own + " 0"},
			// Dropping a capability asks for SETPCAP (capset's check of
			// the inheritable set).
			used:    caps(capChown, capMknod, capSetPCap),
			refused: caps(capChown),
		},
		{
			name:   "nested cgroup",
			nested: true,
			steps:  []string{"chown " + f.own + " 1000", "mknod " + f.node + "2"},
			used:   caps(capChown, capMknod),
		},
		{
			name:     "read-search refusal made up by dac_override",
			steps:    []string{"drop " + itoa(capDACRead), "read " + f.foreign},
			used:     caps(capSetPCap, capDACOver),
			fallback: caps(capDACRead),
		},
		{
			name: "read-search refusal of its own",
			steps: []string{
				"drop " + itoa(capDACRead),
				"read " + f.foreign,
				"handle " + f.own,
			},
			failing: []string{"handle " + f.own},
			used:    caps(capSetPCap, capDACOver),
			refused: caps(capDACRead),
		},
		{
			name:  "overcommit refused sys_admin is not a refusal",
			steps: []string{"drop " + itoa(capSysAdm), "mmap", "mmap"},
			used:  caps(capSetPCap),
		},
		{
			name:  "sys_admin used for real",
			steps: []string{"unshare-uts"},
			used:  caps(capSysAdm),
		},
		{
			name: "runtime init not counted",
			steps: []string{
				"comm runc:[2:INIT]",
				"chown " + f.own + " 1000",
				"comm crun",
				"drop " + itoa(capSetUID),
				"comm workload",
				"mknod " + f.node + "3",
			},
			used:    caps(capMknod),
			runtime: true,
		},
		{
			// Creating a file in a directory of the lower layer copies the
			// directory up, and overlayfs does that with the credentials
			// of its mounter (this test): checks the helper never made.
			name:    "overlayfs copy-up under the mounter's credentials not counted",
			steps:   []string{"create " + filepath.Join(overlay, "d", "f")},
			foreign: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, cg := newCgroup(t, "")
			if err := tr.Watch(cg); err != nil {
				t.Fatal(err)
			}
			run := dir
			if tt.nested {
				run, _ = newCgroup(t, dir)
			}
			report := runHelper(t, run, tt.steps...)
			wantSteps(t, report, tt.failing...)
			rec, err := tr.Harvest(cg.ID)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%v", rec)
			if rec.Used != tt.used || rec.Refused != tt.refused || rec.Fallback != tt.fallback {
				t.Errorf("used %v refused %v fallback %v, want %v, %v, %v",
					rec.Used, rec.Refused, rec.Fallback, tt.used, tt.refused, tt.fallback)
			}
			if !rec.Complete {
				t.Errorf("incomplete: %q", rec.Gaps)
			}
			// The helper is a Go program: its start alone forks threads
			// and maps memory, each a SYS_ADMIN check of the overcommit
			// accounting that must not show.
			if rec.Overcommit == 0 {
				t.Error("no overcommit checks seen: the noise filter was not exercised")
			}
			if (rec.Runtime > 0) != tt.runtime {
				t.Errorf("%d checks by the runtime", rec.Runtime)
			}
			if (rec.Foreign > 0) != tt.foreign {
				t.Errorf("%d checks under other credentials", rec.Foreign)
			}
			for c := capability.Cap(0); c <= MaxCap; c++ {
				if (rec.UsedCount[c] > 0) != rec.Used.Has(c) {
					t.Errorf("%v: %d successful checks, in used: %v", c, rec.UsedCount[c], rec.Used.Has(c))
				}
			}
			if _, err := tr.Harvest(cg.ID); !errors.Is(err, ErrNotWatched) {
				t.Errorf("second harvest: %v, want ErrNotWatched", err)
			}
		})
	}
}

// TestOtherCgroupsNotRecorded runs the same steps in a watched cgroup and
// in its unwatched sibling; the test process itself is in neither.
func TestOtherCgroupsNotRecorded(t *testing.T) {
	requireTracing(t)
	tr, _ := newTracer(t)
	f := newFiles(t)
	watched, cg := newCgroup(t, "")
	other, ocg := newCgroup(t, "")
	if err := tr.Watch(cg); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, runHelper(t, other, "mknod "+f.node, "chown "+f.own+" 1000"))
	wantSteps(t, runHelper(t, watched, "chown "+f.own+" 1001"))
	if err := os.Chown(f.own, 1002, -1); err != nil { // the test's own cgroup
		t.Fatal(err)
	}
	rec, err := tr.Harvest(cg.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v", rec)
	if rec.Used != caps(capChown) || rec.Refused != 0 {
		t.Errorf("used %v refused %v, want CAP_CHOWN only", rec.Used, rec.Refused)
	}
	if rec.UsedCount[capChown] != 1 {
		t.Errorf("%d chown checks, want the watched helper's one", rec.UsedCount[capChown])
	}
	if _, err := tr.Harvest(ocg.ID); !errors.Is(err, ErrNotWatched) {
		t.Errorf("harvest of the unwatched cgroup: %v", err)
	}
}

// TestDepths runs a helper at several depths below a watched cgroup and
// beside it, under both ways of reading the task: the program finds the
// watched ancestor by the task's own cgroup, by walking up from it, or,
// below the deepest level it can watch, by the ancestor look-up.
func TestDepths(t *testing.T) {
	requireTracing(t)
	f := newFiles(t)
	for _, viaBTF := range []bool{true, false} {
		tryTaskBTF = viaBTF
		tr, _ := newTracer(t)
		tryTaskBTF = true
		// Its own cgroup; the walk; the walk, then the look-up; the look-up.
		for _, depth := range []int{0, 3, walkSteps + 2, maxLevel + 2} {
			t.Run(fmt.Sprintf("btf %v, %d below", viaBTF, depth), func(t *testing.T) {
				watched, cg := newCgroup(t, "")
				sibling, _ := newCgroup(t, "")
				if err := tr.Watch(cg); err != nil {
					t.Fatal(err)
				}
				in, beside := watched, sibling
				for i := 0; i < depth; i++ {
					in, _ = newCgroup(t, in)
					beside, _ = newCgroup(t, beside)
				}
				wantSteps(t, runHelper(t, beside, "chown "+f.own+" 1000", "mknod "+filepath.Join(t.TempDir(), "node")))
				wantSteps(t, runHelper(t, in, "chown "+f.own+" 1001"))
				rec, err := tr.Harvest(cg.ID)
				if err != nil {
					t.Fatal(err)
				}
				if rec.Used != caps(capChown) || rec.UsedCount[capChown] != 1 {
					t.Errorf("used %v (%d chown checks), want the one chown of the helper below the watched cgroup", rec.Used, rec.UsedCount[capChown])
				}
			})
		}
	}
}

// TestNestedWatches: of two watched cgroups one inside the other, the
// inner one gets the checks of its tasks, the outer one those of its own.
func TestNestedWatches(t *testing.T) {
	requireTracing(t)
	tr, _ := newTracer(t)
	f := newFiles(t)
	outerDir, outer := newCgroup(t, "")
	innerDir, inner := newCgroup(t, outerDir)
	for _, cg := range []Cgroup{outer, inner} {
		if err := tr.Watch(cg); err != nil {
			t.Fatal(err)
		}
	}
	wantSteps(t, runHelper(t, innerDir, "mknod "+f.node))
	wantSteps(t, runHelper(t, outerDir, "chown "+f.own+" 1000"))
	for _, tt := range []struct {
		name string
		cg   Cgroup
		used capability.Set
	}{
		{"inner", inner, caps(capMknod)},
		{"outer", outer, caps(capChown)},
	} {
		rec, err := tr.Harvest(tt.cg.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Used != tt.used {
			t.Errorf("%s: used %v, want %v", tt.name, rec.Used, tt.used)
		}
	}
}

// progLoaded reports whether a program of that id is still in the kernel.
func progLoaded(t testing.TB, id ebpf.ProgramID) bool {
	t.Helper()
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return false
	}
	p.Close()
	return true
}

func progID(t *testing.T, tr *Tracer) ebpf.ProgramID {
	t.Helper()
	info, err := tr.objs.prog.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Fatal("no program id")
	}
	return id
}

// waitUnloaded waits for the kernel to free a program whose last
// reference is gone (it does so after an RCU grace period).
func waitUnloaded(t *testing.T, id ebpf.ProgramID) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for progLoaded(t, id) {
		if time.Now().After(deadline) {
			t.Fatalf("program %d is still loaded", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadedByName lists the ids of the loaded programs named name.
func loadedByName(t testing.TB, name string) []ebpf.ProgramID {
	t.Helper()
	var ids []ebpf.ProgramID
	id := ebpf.ProgramID(0)
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return ids
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := p.Info()
		p.Close()
		if err == nil && info.Name == name {
			ids = append(ids, id)
		}
	}
}

func levels(t *testing.T, tr *Tracer) uint64 {
	t.Helper()
	var cfg [cfgWords]uint64
	if err := tr.objs.config.Lookup(uint32(0), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg[cfgLevels]
}

func noPins(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		entries, _ := os.ReadDir(dir)
		t.Errorf("%s remains (%v): %d entries", dir, err, len(entries))
	}
}

// TestLifecycle goes through a container's life as two capshim processes
// see it: one attaches and watches, a later one opens, harvests and
// releases.
func TestLifecycle(t *testing.T) {
	requireTracing(t)
	opts := testOptions(t)
	if _, err := OpenWith(opts); !errors.Is(err, ErrNotAttached) {
		t.Fatalf("open before attach: %v, want ErrNotAttached", err)
	}
	first, err := AttachWith(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	id := progID(t, first)
	dir, cg := newCgroup(t, "")
	_, ncg := newCgroup(t, dir)
	if err := first.Watch(cg); err != nil {
		t.Fatal(err)
	}
	if err := first.Watch(ncg); err != nil {
		t.Fatal(err)
	}
	if err := first.Watch(cg); err != nil {
		t.Fatalf("watching again: %v", err)
	}
	if got := levels(t, first); got != 1<<1|1<<2 {
		t.Errorf("levels %#b after watching levels 1 and 2", got)
	}
	if err := first.Watch(Cgroup{ID: 1, Level: 0}); err == nil {
		t.Error("watching the root cgroup was accepted")
	}

	later, err := OpenWith(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer later.Close()
	if later.objs.mapID != first.objs.mapID || progID(t, later) != id {
		t.Fatal("open found other objects than attach left")
	}
	watched, err := later.Watched()
	if err != nil || len(watched) != 2 {
		t.Fatalf("watched %v, %v", watched, err)
	}
	if _, err := later.Harvest(ncg.ID); err != nil {
		t.Fatal(err)
	}
	if got := levels(t, later); got != 1<<1 {
		t.Errorf("levels %#b after the level-2 harvest", got)
	}
	if released, err := later.Release(); released || err != nil {
		t.Fatalf("release while a cgroup is watched: %v, %v", released, err)
	}
	if _, err := later.Harvest(cg.ID); err != nil {
		t.Fatal(err)
	}
	if released, err := later.Release(); !released || err != nil {
		t.Fatalf("release with nothing watched: %v, %v", released, err)
	}
	noPins(t, opts.Dir)
	if released, err := later.Release(); !released || err != nil {
		t.Errorf("second release: %v, %v", released, err)
	}

	// first still holds the program; a Watch through it now attaches a
	// new recorder rather than writing to a map nobody will read.
	if err := first.Watch(cg); err != nil {
		t.Fatal(err)
	}
	if progID(t, first) == id {
		t.Error("watch after a release kept the released program")
	}
	newID := progID(t, first)
	if _, err := first.Harvest(cg.ID); err != nil {
		t.Fatal(err)
	}
	if released, err := first.Release(); !released || err != nil {
		t.Fatalf("final release: %v, %v", released, err)
	}
	noPins(t, opts.Dir)
	first.Close()
	later.Close()
	waitUnloaded(t, id)
	waitUnloaded(t, newID)
	if others := loadedByName(t, progName); len(others) > 0 {
		t.Logf("programs named %s of other users: %v", progName, others)
	}
}

func TestReclaim(t *testing.T) {
	requireTracing(t)
	tr, opts := newTracer(t)
	goneDir, gone := newCgroup(t, "")
	keptDir, kept := newCgroup(t, "")
	for _, cg := range []Cgroup{gone, kept} {
		if err := tr.Watch(cg); err != nil {
			t.Fatal(err)
		}
	}
	if dropped, err := tr.Reclaim(func(uint64) bool { return true }); err != nil || len(dropped) != 0 {
		t.Fatalf("reclaim with everything alive: %v, %v", dropped, err)
	}
	cgtest.Remove(t, goneDir)
	dropped, err := tr.Reclaim(nil)
	if err != nil || len(dropped) != 1 || dropped[0] != gone.ID {
		t.Fatalf("reclaim: dropped %v, %v; want %d", dropped, err, gone.ID)
	}
	if w, _ := tr.Watched(); len(w) != 1 || w[0] != kept.ID {
		t.Fatalf("watched after reclaim: %v", w)
	}
	if _, err := os.Stat(opts.Dir); err != nil {
		t.Fatalf("pins gone while a cgroup is watched: %v", err)
	}
	cgtest.Remove(t, keptDir)
	if dropped, err := tr.Reclaim(nil); err != nil || len(dropped) != 1 {
		t.Fatalf("second reclaim: %v, %v", dropped, err)
	}
	noPins(t, opts.Dir)

	// A harvest whose process died before its Release.
	_, cg := newCgroup(t, "")
	if err := tr.Watch(cg); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Harvest(cg.ID); err != nil {
		t.Fatal(err)
	}
	if dropped, err := tr.Reclaim(nil); err != nil || len(dropped) != 0 {
		t.Fatalf("reclaim of an empty recorder: %v, %v", dropped, err)
	}
	noPins(t, opts.Dir)
}

// TestReplacedPins: pins of another layout, or a partial set, are
// replaced when nothing is watched in them, and refused otherwise.
func TestReplacedPins(t *testing.T) {
	requireTracing(t)
	setABI := func(t *testing.T, tr *Tracer, abi uint64) {
		t.Helper()
		var cfg [cfgWords]uint64
		if err := tr.objs.config.Lookup(uint32(0), &cfg); err != nil {
			t.Fatal(err)
		}
		cfg[cfgABI] = abi
		if err := tr.objs.config.Update(uint32(0), cfg, ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		watch   bool
		spoil   func(t *testing.T, tr *Tracer, opts Options)
		wantErr string
	}{
		{
			name:  "other layout, nothing watched",
			spoil: func(t *testing.T, tr *Tracer, _ Options) { setABI(t, tr, 99) },
		},
		{
			name:    "other layout, a cgroup watched",
			watch:   true,
			spoil:   func(t *testing.T, tr *Tracer, _ Options) { setABI(t, tr, 99) },
			wantErr: "layout 99",
		},
		{
			name: "link pin missing",
			spoil: func(t *testing.T, _ *Tracer, opts Options) {
				if err := os.Remove(filepath.Join(opts.Dir, pinLink)); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, opts := newTracer(t)
			if tt.watch {
				_, cg := newCgroup(t, "")
				if err := tr.Watch(cg); err != nil {
					t.Fatal(err)
				}
			}
			tt.spoil(t, tr, opts)
			old := tr.objs.mapID
			again, err := AttachWith(opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("attach: %v, want an error with %q", err, tt.wantErr)
				}
				if _, err := OpenWith(opts); err == nil {
					t.Error("open accepted pins of another layout")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if again.objs.mapID == old {
				t.Error("the spoilt pins were kept")
			}
		})
	}
}

// TestConcurrentAttach: capshim processes starting containers at the same
// time share one recorder.
func TestConcurrentAttach(t *testing.T) {
	requireTracing(t)
	opts := testOptions(t)
	const n = 6
	cgs := make([]Cgroup, n)
	for i := range cgs {
		_, cgs[i] = newCgroup(t, "")
	}
	var wg sync.WaitGroup
	ids := make([]ebpf.MapID, n)
	errs := make([]error, n)
	for i := range cgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := AttachWith(opts)
			if err != nil {
				errs[i] = err
				return
			}
			defer tr.Close()
			errs[i] = tr.Watch(cgs[i])
			ids[i] = tr.objs.mapID
		}()
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil {
			t.Fatalf("attach %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("attach %d got map %d, attach 0 map %d", i, ids[i], ids[0])
		}
	}
	tr, err := OpenWith(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if w, err := tr.Watched(); err != nil || len(w) != n {
		t.Fatalf("watched %v, %v", w, err)
	}
	for _, cg := range cgs {
		if _, err := tr.Harvest(cg.ID); err != nil {
			t.Error(err)
		}
	}
	if released, err := tr.Release(); !released || err != nil {
		t.Errorf("release: %v, %v", released, err)
	}
	noPins(t, opts.Dir)
}

// TestDefaultPaths uses the real pin directory and lock, unless another
// capshim is using them.
func TestDefaultPaths(t *testing.T) {
	requireTracing(t)
	if _, err := os.Stat(DefaultDir); err == nil {
		t.Skipf("%s exists: in use by another capshim", DefaultDir)
	}
	_, lockErr := os.Stat(DefaultLock)
	_, lockDirErr := os.Stat(filepath.Dir(DefaultLock))
	t.Cleanup(func() {
		removePins(DefaultDir)
		// What this test created; the directory only if it is empty (it
		// is the policy cache's too).
		if lockErr != nil {
			os.Remove(DefaultLock)
		}
		if lockDirErr != nil {
			os.Remove(filepath.Dir(DefaultLock))
		}
	})
	f := newFiles(t)
	dir, cg := newCgroup(t, "")
	start, err := Attach()
	if err != nil {
		t.Fatal(err)
	}
	id := progID(t, start)
	if err := start.Watch(cg); err != nil {
		t.Fatal(err)
	}
	start.Close()
	wantSteps(t, runHelper(t, dir, "chown "+f.own+" 1000"))
	del, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := del.Harvest(cg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Used != caps(capChown) {
		t.Errorf("used %v", rec.Used)
	}
	released, err := del.Release()
	if err != nil || !released {
		t.Skipf("release: %v, %v (another capshim started watching meanwhile?)", released, err)
	}
	del.Close()
	noPins(t, DefaultDir)
	waitUnloaded(t, id)
}

func TestSupported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if err := Supported(); err != nil {
		t.Errorf("Supported: %v", err)
	}
}
