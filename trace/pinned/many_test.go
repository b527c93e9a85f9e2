package pinned_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/capshim/capshim/trace"
	"github.com/capshim/capshim/trace/internal/cgtest"
	"github.com/capshim/capshim/trace/pinned"
	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// TestManyWithoutBatches lives a busy node's watches, harvests and
// reclaims through the runtime binary's calls, reading the maps in
// batches and, as on a kernel without batched look-ups, one element at a
// time: both ways list every watched cgroup, write the config from them
// and hand each harvest its own executables.
func TestManyWithoutBatches(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if err := trace.Supported(); err != nil {
		t.Skipf("tracing not supported here: %v", err)
	}
	mp, _, err := pinned.V2Root()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		batches bool
	}{
		{name: "batched", batches: true},
		{name: "one element at a time", batches: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.batches {
				pinned.NoBatches(t)
			}
			manyWatched(t, mp)
		})
	}
}

// manyWatched watches more cgroups than one batch holds, removes some,
// and harvests the rest, checking the maps at each step.
func manyWatched(t *testing.T, mountPoint string) {
	opts := pinned.Options{
		Dir:  fmt.Sprintf("/sys/fs/bpf/capshim-test-%d-%d", os.Getpid(), time.Now().UnixNano()),
		Lock: filepath.Join(t.TempDir(), "trace.lock"),
	}
	t.Cleanup(func() {
		if err := pinned.RemovePins(opts.Dir); err != nil {
			t.Errorf("cleaning up pins: %v", err)
		}
	})
	loader, err := trace.AttachWith(opts)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	loader.Close()

	// 100 entries: a first batch of 8, then 16, 32 and 64 (the most).
	const watched, removed = 100, 40
	dirs := make([]string, watched)
	cgs := make([]pinned.Cgroup, watched)
	for i := range cgs {
		dirs[i] = cgtest.Dir(t, mountPoint)
		if cgs[i], err = pinned.CgroupByPath(dirs[i]); err != nil {
			t.Fatal(err)
		}
		if err := pinned.WatchPinned(opts, cgs[i]); err != nil {
			t.Fatalf("watch: %v", err)
		}
	}
	wantWatched(t, opts.Dir, cgs)

	// The first two and the last run an executable; the last 40 go, one
	// with its executable, and the next harvest reclaims them.
	for _, i := range []int{0, 1, watched - 1} {
		runIn(t, dirs[i], "/bin/true")
	}
	for _, dir := range dirs[watched-removed:] {
		cgtest.Remove(t, dir)
	}
	for i, cg := range cgs[:watched-removed] {
		rec, err := pinned.HarvestPinned(opts, cg.ID)
		if err != nil {
			t.Fatalf("harvest %d: %v", i, err)
		}
		var want []string
		if i < 2 {
			want = []string{"/bin/true"}
		}
		if !slices.Equal(rec.Execs, want) || !rec.Complete {
			t.Errorf("harvest %d: executables %q (complete %v), want %q", i, rec.Execs, rec.Complete, want)
		}
		if i == 0 {
			wantWatched(t, opts.Dir, cgs[1:watched-removed])
			if got, want := execCgroups(t, opts.Dir), []uint64{cgs[1].ID}; !slices.Equal(got, want) {
				t.Errorf("executables left for cgroups %v, want %v", got, want)
			}
		}
	}
	if _, err := os.Stat(opts.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pins directory %s after the last harvest: stat says %v, want it gone", opts.Dir, err)
	}
}

// wantWatched checks that the cgroups map holds exactly cgs, and that the
// config names their levels and filter bits and nothing else.
func wantWatched(t *testing.T, dir string, cgs []pinned.Cgroup) {
	t.Helper()
	r, err := pinned.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ids, err := r.Keys()
	if err != nil {
		t.Fatal(err)
	}
	var levels, filter uint64
	want := make([]uint64, len(cgs))
	for i, cg := range cgs {
		want[i] = cg.ID
		levels |= 1 << cg.Level
		filter |= pinned.FilterBit(cg.ID)
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("%d cgroups listed, want %d", len(ids), len(want))
	}
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, pinned.PinConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var cfg [pinned.CfgWords]uint64
	if err := m.Lookup(uint32(0), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg[pinned.CfgLevels] != levels || cfg[pinned.CfgFilter] != filter {
		t.Errorf("config levels %#x filter %#x, want %#x and %#x", cfg[pinned.CfgLevels], cfg[pinned.CfgFilter], levels, filter)
	}
}

// execCgroups lists the cgroups the execs map holds executables of.
func execCgroups(t *testing.T, dir string) []uint64 {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, pinned.PinExecs), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ids := map[uint64]bool{}
	var key [pinned.ExecKeySize]byte
	var value uint64
	it := m.Iterate()
	for it.Next(&key, &value) {
		ids[binary.NativeEndian.Uint64(key[:8])] = true
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(ids))
}

// runIn runs path in a new process started inside the cgroup dir.
func runIn(t *testing.T, dir, path string) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	cmd := exec.Command(path)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, out)
	}
}
