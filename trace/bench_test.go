package trace

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/capshim/capshim/trace/pinned"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// ownCgroup returns the v2 cgroup directory this process is in.
func ownCgroup(b *testing.B) string {
	b.Helper()
	mp, _, err := V2Root()
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Join(mp, p)
		}
	}
	b.Fatal("no cgroup v2 line in /proc/self/cgroup")
	return ""
}

// moveTo moves this whole process into the cgroup dir.
func moveTo(b *testing.B, dir string) {
	b.Helper()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		b.Fatalf("moving into %s: %v", dir, err)
	}
}

// benchVariants runs op under the recorder's states, from nothing attached
// to this process's own cgroup watched; check is the capability op asks
// for. Besides the time per op it reports, untimed, what the program
// itself costs per run (from the kernel's BPF run-time statistics, which
// are on only for that pass since they add clock reads to every run) and,
// when watched, the checks recorded per op.
func benchVariants(b *testing.B, check int, op func(n int) error) {
	requireTracing(b)
	if others := loadedByName(b, progName); len(others) > 0 {
		b.Logf("other recorders are attached (%v): \"detached\" is not", others)
	}
	home := ownCgroup(b)
	watch := func(b *testing.B, tr *Tracer) (string, Cgroup) {
		dir, cg := newCgroup(b, "")
		if err := tr.Watch(cg); err != nil {
			b.Fatal(err)
		}
		return dir, cg
	}
	variants := []struct {
		name   string
		attach bool
		empty  bool // a program that does nothing is attached instead
		other  bool // another cgroup is watched
		self   bool // this process's cgroup is watched
		// depth moves this process into a cgroup of its own at that level
		// (1: beside the watched one; 2: below an unwatched sibling of
		// it), else it stays in its own cgroup, the root here.
		depth int
	}{
		{name: "detached"},
		// A program that does nothing, attached to the same tracepoint:
		// what any program there costs on this machine (the tracepoint's
		// dispatch), the floor under the recorder's own figures.
		{name: "an empty program attached", empty: true},
		{name: "attached, nothing watched", attach: true},
		{name: "attached, another cgroup watched", attach: true, other: true},
		{name: "another cgroup watched, caller at its level", attach: true, other: true, depth: 1},
		{name: "another cgroup watched, caller below its level", attach: true, other: true, depth: 2},
		{name: "watched", attach: true, self: true},
		// The detached time again, after the others: what the others add
		// is measured against both, so that a drift during the pass does
		// not count as their cost.
		{name: "detached again"},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			var tr *Tracer
			var prog *ebpf.Program
			if v.attach {
				tr, _ = newTracer(b)
				prog = tr.objs.prog
			}
			if v.empty {
				prog = attachEmpty(b)
			}
			if v.other {
				watch(b, tr)
			}
			if v.depth > 0 {
				dir, _ := newCgroup(b, "")
				if v.depth > 1 {
					dir, _ = newCgroup(b, dir)
				}
				moveTo(b, dir)
				defer moveTo(b, home)
			}
			var own Cgroup
			if v.self {
				var dir string
				dir, own = watch(b, tr)
				moveTo(b, dir)
				defer moveTo(b, home)
			}
			b.ResetTimer()
			if err := op(b.N); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if prog == nil {
				return
			}
			if v.self {
				rec, err := tr.Harvest(own.ID)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(rec.UsedCount[check])/float64(b.N), "checks/op")
				b.ReportMetric(float64(rec.Overcommit)/float64(b.N), "overcommit/op")
				if err := tr.Watch(own); err != nil {
					b.Fatal(err)
				}
			}
			if ns, err := progCost(prog, op, min(b.N, 200000)); err != nil {
				b.Logf("program cost: %v", err)
			} else {
				b.ReportMetric(ns, "prog-ns/run")
			}
		})
	}
}

// attachEmpty loads a program that does nothing and attaches it to the
// capability tracepoint until the benchmark ends.
func attachEmpty(b *testing.B) *ebpf.Program {
	b.Helper()
	prog, err := loadNop("capshim_empty")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { prog.Close() })
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "cap_capable", Program: prog})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return prog
}

// progCost runs op n times with BPF statistics on and returns the average
// run time of the program over the runs it made meanwhile.
func progCost(prog *ebpf.Program, op func(n int) error, n int) (float64, error) {
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return 0, err
	}
	defer stats.Close()
	before, err := prog.Stats()
	if err != nil {
		return 0, err
	}
	if err := op(n); err != nil {
		return 0, err
	}
	after, err := prog.Stats()
	if err != nil {
		return 0, err
	}
	runs := after.RunCount - before.RunCount
	if runs == 0 {
		return 0, errors.New("the program did not run")
	}
	return float64(after.Runtime-before.Runtime) / float64(runs), nil
}

// chownOp returns an op of n CAP_CHOWN checks: fchown of a file of the
// test to the owner it already has, which is not the caller.
func chownOp(b *testing.B) func(n int) error {
	f, err := os.Create(filepath.Join(b.TempDir(), "f"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	fd := int(f.Fd())
	if err := unix.Fchown(fd, 1000, -1); err != nil {
		b.Fatal(err)
	}
	return func(n int) error {
		for i := 0; i < n; i++ {
			if err := unix.Fchown(fd, 1000, -1); err != nil {
				return err
			}
		}
		return nil
	}
}

// BenchmarkChown costs one CAP_CHOWN check per op.
func BenchmarkChown(b *testing.B) {
	benchVariants(b, int(capChown), chownOp(b))
}

// BenchmarkOvercommit costs one SYS_ADMIN check of the overcommit
// accounting per op (a private writable mapping), which the program sorts
// out by the kernel stack when the cgroup is watched.
func BenchmarkOvercommit(b *testing.B) {
	benchVariants(b, int(capSysAdm), func(n int) error {
		for i := 0; i < n; i++ {
			m, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err != nil {
				return err
			}
			if err := unix.Munmap(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// BenchmarkAttach is what a container start pays: the first one on a
// host loads the program (kallsyms, verifier, attach), later ones open
// the pins.
func BenchmarkAttach(b *testing.B) {
	requireTracing(b)
	b.Run("load", func(b *testing.B) {
		opts := testOptions(b)
		for i := 0; i < b.N; i++ {
			tr, err := AttachWith(opts)
			if err != nil {
				b.Fatal(err)
			}
			if released, err := tr.Release(); !released || err != nil {
				b.Fatalf("release: %v, %v", released, err)
			}
			tr.Close()
		}
	})
	b.Run("reuse", func(b *testing.B) {
		_, opts := newTracer(b) // holds the pins while the loop reuses them
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			tr, err := AttachWith(opts)
			if err != nil {
				b.Fatal(err)
			}
			tr.Close()
		}
	})
	b.Run("kallsyms", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := kernelRanges(overcommitFuncs, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRuntimePath is what the runtime binary itself does for a
// recorded container once the recorder is pinned: at start, find the
// cgroup of the container's first process and watch it; at delete,
// harvest it (with the reclaim of vanished cgroups and the check whether
// the recorder may be unpinned). Other cgroups stay watched, one or a
// hundred, so the recorder stays pinned, as on a node that runs
// containers.
func BenchmarkRuntimePath(b *testing.B) {
	requireTracing(b)
	// A node watches as many cgroups as it runs containers: the cost of
	// one start and one delete must not grow with them.
	for _, others := range []int{1, 100} {
		b.Run("others="+strconv.Itoa(others), func(b *testing.B) { benchRuntimePath(b, others) })
	}
}

func benchRuntimePath(b *testing.B, others int) {
	tr, opts := newTracer(b)
	for i := 0; i < others; i++ {
		_, keeper := newCgroup(b, "")
		if err := tr.Watch(keeper); err != nil {
			b.Fatal(err)
		}
	}
	dir, cg := newCgroup(b, "")
	cmd := exec.Command("/bin/sleep", "60")
	cgfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cgfd}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	unix.Close(cgfd)
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	b.Run("start", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			got, err := pinned.ProcessCgroup(cmd.Process.Pid)
			if err != nil || got != cg {
				b.Fatalf("cgroup %v, %v; want %v", got, err, cg)
			}
			if err := pinned.WatchPinned(opts, got); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if _, err := pinned.HarvestPinned(opts, cg.ID); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("delete", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if err := pinned.WatchPinned(opts, cg); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := pinned.HarvestPinned(opts, cg.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// pairedBlock is how many checks one state runs in a round of
// BenchmarkChownPaired: long enough that attaching and detaching between
// blocks does not count (a block takes 3–5 ms on the VM of BENCHMARKS.md),
// short enough that a round sees every state under the same load.
const pairedBlock = 5000

// pairedStates are the recorder's states BenchmarkChownPaired compares,
// in the order of its first round. The caller sits in a cgroup of its own
// one level below the root, beside the other watched cgroup, as a
// service's task does on a node.
var pairedStates = []struct {
	name          string // the metric's unit: added-ns/<name>
	empty, attach bool   // a program that does nothing; the recorder
	other, self   bool   // a sibling cgroup watched; the caller's own
	// held: another watched cgroup holds the slot of the caller's, which
	// is counted in its hash entry (see package pinned's slots).
	held bool
}{
	{name: "detached"},
	{name: "empty", empty: true},
	{name: "nothing-watched", attach: true},
	{name: "other-watched", attach: true, other: true},
	{name: "watched", attach: true, self: true},
	{name: "watched-hash", attach: true, self: true, held: true},
}

// BenchmarkChownPaired measures what a capability check gains in each
// state of the recorder against no program at all, by differences within
// one round: each op is a round that runs a block of fchown calls in every
// state, in an order that rotates from round to round, and the result per
// state is the median over the rounds of its time per check minus the
// detached time of the same round, so that a machine whose speed drifts
// between seconds (a busy VM) compares the states at the speed of each
// round rather than of each state's own seconds, as BenchmarkChown's
// state-by-state passes do. Drift within a round still shows in the
// figures.
// Every watched block is harvested and must have counted each check once.
func BenchmarkChownPaired(b *testing.B) {
	requireTracing(b)
	if others := loadedByName(b, progName); len(others) > 0 {
		b.Logf("other recorders are attached (%v): \"detached\" is not", others)
	}
	op := chownOp(b)
	block := func() (time.Duration, error) {
		t0 := time.Now()
		err := op(pairedBlock)
		return time.Since(t0), err
	}

	tr, _ := newTracer(b)
	// The recorder is attached per block below, so its pinned link goes:
	// the maps and the program stay pinned and Watch and Harvest work on
	// them as ever.
	if err := tr.objs.link.Unpin(); err != nil {
		b.Fatal(err)
	}
	if err := tr.objs.link.Close(); err != nil {
		b.Fatal(err)
	}
	tr.objs.link = nil
	empty, err := loadNop("capshim_empty")
	if err != nil {
		b.Fatal(err)
	}
	defer empty.Close()
	home := ownCgroup(b)
	ownDir, own := newCgroup(b, "")
	_, other := newCgroup(b, "")
	_, holder := collider(b, own.ID)
	moveTo(b, ownDir)
	defer moveTo(b, home)

	perCheck := make([][]float64, len(pairedStates)) // ns, by round
	b.ResetTimer()
	for round := 0; round < b.N; round++ {
		for k := range pairedStates {
			i := (round + k) % len(pairedStates)
			s := pairedStates[i]
			b.StopTimer()
			var l link.Link
			if s.empty || s.attach {
				prog := tr.objs.prog
				if s.empty {
					prog = empty
				}
				if l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "cap_capable", Program: prog}); err != nil {
					b.Fatal(err)
				}
			}
			if s.other {
				if err := tr.Watch(other); err != nil {
					b.Fatal(err)
				}
			}
			if s.held {
				if err := tr.Watch(holder); err != nil {
					b.Fatal(err)
				}
			}
			if s.self {
				if err := tr.Watch(own); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			d, err := block()
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if l != nil {
				l.Close()
			}
			if s.other {
				if _, err := tr.Harvest(other.ID); err != nil {
					b.Fatal(err)
				}
			}
			if s.held {
				if _, err := tr.Harvest(holder.ID); err != nil {
					b.Fatal(err)
				}
			}
			if s.self {
				rec, err := tr.Harvest(own.ID)
				if err != nil {
					b.Fatal(err)
				}
				if got := rec.UsedCount[capChown]; got != pairedBlock {
					b.Fatalf("round %d: the watched block made %d CAP_CHOWN checks, the record counts %d", round, pairedBlock, got)
				}
			}
			perCheck[i] = append(perCheck[i], float64(d.Nanoseconds())/pairedBlock)
			b.StartTimer()
		}
	}
	b.StopTimer()
	b.ReportMetric(medianOf(perCheck[0]), "detached-ns/check")
	for i, s := range pairedStates[1:] {
		diffs := make([]float64, len(perCheck[0]))
		for r := range diffs {
			diffs[r] = perCheck[i+1][r] - perCheck[0][r]
		}
		b.ReportMetric(medianOf(diffs), "added-ns/"+s.name)
	}
	// The time per op is a round's, which says nothing; the metrics above
	// are the result.
	b.ReportMetric(0, "ns/op")
}

// medianOf is the middle value of v, which it sorts.
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}
