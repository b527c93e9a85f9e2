package trace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/capshim/capshim/trace/pinned"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Where the pins and the lock live unless Options say otherwise.
const (
	DefaultDir  = pinned.DefaultDir
	DefaultLock = pinned.DefaultLock
)

// bpffsMount is where bpffs is mounted when the pin directory is below it
// and nothing is mounted there yet.
const bpffsMount = "/sys/fs/bpf"

const (
	maxWatched  = pinned.MaxWatched
	pinLink     = pinned.PinLink
	pinProg     = pinned.PinProg
	pinCgroups  = pinned.PinCgroups
	pinConfig   = pinned.PinConfig
	progName    = pinned.ProgName
	cgroupsName = pinned.CgroupsName
	configName  = pinned.ConfigName
	pendingName = pinned.PendingName
)

// Options place the tracer's files; the zero value means the defaults.
type Options = pinned.Options

var (
	// ErrNotAttached says no recorder is pinned (Open).
	ErrNotAttached = errors.New("no capability recorder is attached")
	// ErrNotWatched says the cgroup has no entry (Harvest).
	ErrNotWatched = pinned.ErrNotWatched
)

// Tracer is one process's handle on the pinned recorder. Its methods take
// the lock file, so capshim processes may use the recorder concurrently;
// a Tracer itself is not for concurrent use. The map work is package
// pinned's, which the runtime binary uses without this package.
type Tracer struct {
	opts Options
	rec  *pinned.Recorder
	objs *objects
}

// objects are the kernel objects behind the pins, as the BPF library
// holds them.
type objects struct {
	link     link.Link
	prog     *ebpf.Program
	cgroups  *ebpf.Map
	config   *ebpf.Map
	execs    *ebpf.Map
	slots    *ebpf.Map
	execLink link.Link     // nil without the exec program
	execProg *ebpf.Program // nil without the exec program
	mapID    ebpf.MapID    // of cgroups
	// taskBTF says the loaded program reads the task through its BTF type
	// (progParams.taskBTF); false also for pins opened, not loaded.
	taskBTF bool
}

// tryTaskBTF lets tests load the program that copies the task's fields
// with helpers, as kernels without typed task pointers get it.
var tryTaskBTF = true

func (o *objects) close() {
	if o == nil {
		return
	}
	for _, c := range []interface{ Close() error }{o.link, o.execLink, o.prog, o.execProg, o.cgroups, o.config, o.execs, o.slots} {
		if c != nil { // the library's Close methods take nil pointers
			c.Close()
		}
	}
}

// Attach returns the recorder pinned in DefaultDir, loading and attaching
// it first when it is not there. It is Attach(Options{}).
func Attach() (*Tracer, error) { return AttachWith(Options{}) }

// AttachWith is Attach with other places for the pins and the lock.
func AttachWith(opts Options) (*Tracer, error) {
	t := &Tracer{opts: opts.WithDefaults()}
	unlock, err := t.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := t.sync(true); err != nil {
		return nil, err
	}
	return t, nil
}

// Open returns the pinned recorder without loading one: ErrNotAttached
// when there is none. It is for the end of a container's life, which must
// not attach a recorder only to find nothing to harvest.
func Open() (*Tracer, error) { return OpenWith(Options{}) }

// OpenWith is Open with other places for the pins and the lock.
func OpenWith(opts Options) (*Tracer, error) {
	t := &Tracer{opts: opts.WithDefaults()}
	unlock, err := t.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := t.sync(false); err != nil {
		return nil, err
	}
	return t, nil
}

// Close drops this process's handles; the pins stay.
func (t *Tracer) Close() error {
	t.drop()
	return nil
}

func (t *Tracer) drop() {
	t.rec.Close()
	t.objs.close()
	t.rec, t.objs = nil, nil
}

// lock takes the lock file, creating it and its root-only directory.
func (t *Tracer) lock() (func(), error) { return pinned.Lock(t.opts.Lock) }

// sync makes t's handles the objects now pinned, under the lock: another
// process may have released and re-attached the recorder since t last
// looked. With create, missing (or partial, or stale) pins are replaced by
// a new recorder; without, t ends with no handles and sync returns
// ErrNotAttached.
func (t *Tracer) sync(create bool) error {
	if t.rec != nil {
		if id, err := pinned.PinnedMapID(t.opts.Dir); err == nil && id == t.rec.MapID() {
			return nil
		}
		t.drop()
	}
	rec, err := pinned.Open(t.opts.Dir)
	if err == nil {
		objs, err := openPins(t.opts.Dir)
		if err != nil {
			rec.Close()
			return fmt.Errorf("pins in %s: %w", t.opts.Dir, err)
		}
		t.rec, t.objs = rec, objs
		return nil
	}
	var stale *pinned.StaleError
	switch {
	case errors.As(err, &stale):
		if stale.Watched > 0 {
			return fmt.Errorf("pins in %s: %w", t.opts.Dir, err)
		}
	case !errors.Is(err, pinned.ErrNoPins):
		return fmt.Errorf("pins in %s: %w", t.opts.Dir, err)
	}
	if !create {
		return ErrNotAttached
	}
	// Missing, partial (a loader that died half-way) or stale without
	// entries: none of it records anything anybody will harvest.
	if err := removePins(t.opts.Dir); err != nil {
		return err
	}
	objs, err := load(t.opts.Dir, filepath.Join(filepath.Dir(t.opts.Lock), "kernel-symbols.json"))
	if err != nil {
		return err
	}
	if rec, err = pinned.Open(t.opts.Dir); err != nil {
		objs.close()
		removePins(t.opts.Dir)
		return fmt.Errorf("opening the recorder just pinned: %w", err)
	}
	t.rec, t.objs = rec, objs
	return nil
}

func mapID(m *ebpf.Map) (ebpf.MapID, error) {
	info, err := m.Info()
	if err != nil {
		return 0, fmt.Errorf("map info: %w", err)
	}
	id, ok := info.ID()
	if !ok {
		return 0, errors.New("map info has no id")
	}
	return id, nil
}

// openPins opens the four pins with the BPF library, after pinned.Open
// checked them.
func openPins(dir string) (_ *objects, err error) {
	o := &objects{}
	defer func() {
		if err != nil {
			o.close()
		}
	}()
	path := func(n string) string { return filepath.Join(dir, n) }
	if o.cgroups, err = ebpf.LoadPinnedMap(path(pinCgroups), nil); err != nil {
		return nil, err
	}
	if o.config, err = ebpf.LoadPinnedMap(path(pinConfig), nil); err != nil {
		return nil, err
	}
	if o.slots, err = ebpf.LoadPinnedMap(path(pinned.PinSlots), nil); err != nil {
		return nil, err
	}
	if o.prog, err = ebpf.LoadPinnedProgram(path(pinProg), nil); err != nil {
		return nil, err
	}
	if o.link, err = link.LoadPinnedLink(path(pinLink), nil); err != nil {
		return nil, err
	}
	if o.mapID, err = mapID(o.cgroups); err != nil {
		return nil, err
	}
	return o, nil
}

// removePins unpins whatever is in dir and removes dir.
func removePins(dir string) error { return pinned.RemovePins(dir) }

// ensureBPFFS mounts bpffs at /sys/fs/bpf when dir is below it and it is
// not mounted yet (some hosts do not mount it at boot).
func ensureBPFFS(dir string) error {
	parent := filepath.Dir(filepath.Clean(dir))
	var st unix.Statfs_t
	if err := unix.Statfs(parent, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if parent != bpffsMount && !strings.HasPrefix(parent, bpffsMount+"/") {
		return fmt.Errorf("%s is not on bpffs", parent)
	}
	if err := unix.Statfs(bpffsMount, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := unix.Mount("bpf", bpffsMount, "bpf", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700"); err != nil {
		return fmt.Errorf("mounting bpffs at %s: %w", bpffsMount, err)
	}
	return nil
}

// load creates the maps, loads and attaches the program and pins all of
// it, the link last: openPins finds either everything or no link. symCache
// keeps the kernel addresses the program needs (see kernelRanges).
func load(dir, symCache string) (_ *objects, err error) {
	if err := ensureBPFFS(dir); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	o := &objects{}
	var pending *ebpf.Map
	defer func() {
		if pending != nil {
			pending.Close()
		}
		if err != nil {
			o.close()
			removePins(dir)
		}
	}()
	if o.cgroups, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       cgroupsName,
		Type:       ebpf.Hash,
		KeySize:    8,
		ValueSize:  valueSize,
		MaxEntries: maxWatched,
		Flags:      unix.BPF_F_NO_PREALLOC,
	}); err != nil {
		return nil, fmt.Errorf("creating the cgroups map: %w", err)
	}
	if o.slots, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       pinned.SlotsName,
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  pinned.SlotSize,
		MaxEntries: pinned.Slots,
	}); err != nil {
		return nil, fmt.Errorf("creating the slots map: %w", err)
	}
	if o.config, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       configName,
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  cfgWords * 8,
		MaxEntries: 1,
	}); err != nil {
		return nil, fmt.Errorf("creating the config map: %w", err)
	}
	if o.execs, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       pinned.ExecsName,
		Type:       ebpf.Hash,
		KeySize:    pinned.ExecKeySize,
		ValueSize:  8,
		MaxEntries: pinned.MaxExecEntries,
		Flags:      unix.BPF_F_NO_PREALLOC,
	}); err != nil {
		return nil, fmt.Errorf("creating the execs map: %w", err)
	}
	// Without the kernel's BTF to find the executed path, executables are
	// not recorded, and every record says so.
	interp, ierr := interpOffset()
	var cfg [cfgWords]uint64
	cfg[cfgABI] = abiVersion
	if ierr != nil {
		cfg[pinned.CfgNoExec] = 1
	}
	if err = o.config.Update(uint32(0), cfg, ebpf.UpdateAny); err != nil {
		return nil, fmt.Errorf("writing the config map: %w", err)
	}
	if pending, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       pendingName,
		Type:       ebpf.PerCPUArray,
		KeySize:    4,
		ValueSize:  8,
		MaxEntries: 1,
	}); err != nil {
		return nil, fmt.Errorf("creating the pending map: %w", err)
	}
	// Without the overcommit functions' addresses the program still runs,
	// and says in every record that SYS_ADMIN was not sorted.
	ranges, _ := kernelRanges(overcommitFuncs, symCache)
	// Without the kernel's BTF, checks under other credentials are
	// counted, and every record says it may hold some.
	realCred, cerr := realCredOffset()
	if cerr != nil {
		realCred = -1
	}
	params := progParams{
		cgroups:    o.cgroups.FD(),
		slots:      o.slots.FD(),
		config:     o.config.FD(),
		pending:    pending.FD(),
		overcommit: ranges,
		comms:      runtimeComms,
		realCred:   realCred,
	}
	// The faster way to read the task first, the other where the kernel
	// refuses it (older kernels lack bpf_get_current_task_btf).
	comm, merr := commOffset()
	pid, perr := pidOffset()
	tc, terr := taskCgroupOffsets()
	if merr == nil && perr == nil && terr == nil && realCred >= 0 && tryTaskBTF {
		params.taskBTF, params.comm, params.pid, params.cgroup = true, comm, pid, tc
		if o.prog, err = loadRecorder(params); err == nil {
			o.taskBTF = true
		}
	}
	if o.prog == nil {
		if o.prog, err = loadRecorder(params); err != nil {
			return nil, err
		}
	}
	if ierr == nil {
		xinsns, err := execProgram(execParams{cgroups: o.cgroups.FD(), config: o.config.FD(), execs: o.execs.FD(), interp: interp})
		if err != nil {
			return nil, fmt.Errorf("generating the exec program: %w", err)
		}
		if o.execProg, err = ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:         pinned.ExecProgName,
			Type:         ebpf.RawTracepoint,
			Instructions: xinsns,
			License:      "GPL",
		}); err != nil {
			return nil, fmt.Errorf("loading the exec program: %w", err)
		}
		if o.execLink, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sched_process_exec", Program: o.execProg}); err != nil {
			return nil, fmt.Errorf("attaching to the sched_process_exec tracepoint: %w", err)
		}
	}
	if o.link, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "cap_capable", Program: o.prog}); err != nil {
		return nil, fmt.Errorf("attaching to the cap_capable tracepoint: %w", err)
	}
	path := func(n string) string { return filepath.Join(dir, n) }
	if err = o.execs.Pin(path(pinned.PinExecs)); err != nil {
		return nil, fmt.Errorf("pinning: %w", err)
	}
	if o.execProg != nil {
		if err = o.execProg.Pin(path(pinned.PinExecProg)); err != nil {
			return nil, fmt.Errorf("pinning: %w", err)
		}
		if err = o.execLink.Pin(path(pinned.PinExecLink)); err != nil {
			return nil, fmt.Errorf("pinning: %w", err)
		}
	}
	if err = o.cgroups.Pin(path(pinCgroups)); err != nil {
		return nil, fmt.Errorf("pinning: %w", err)
	}
	if err = o.config.Pin(path(pinConfig)); err != nil {
		return nil, fmt.Errorf("pinning: %w", err)
	}
	if err = o.slots.Pin(path(pinned.PinSlots)); err != nil {
		return nil, fmt.Errorf("pinning: %w", err)
	}
	if err = o.prog.Pin(path(pinProg)); err != nil {
		return nil, fmt.Errorf("pinning: %w", err)
	}
	if err = o.link.Pin(path(pinLink)); err != nil {
		return nil, fmt.Errorf("pinning: %w", err)
	}
	if o.mapID, err = mapID(o.cgroups); err != nil {
		return nil, err
	}
	return o, nil
}

// loadRecorder generates and loads the capability-check program.
func loadRecorder(p progParams) (*ebpf.Program, error) {
	insns, err := program(p)
	if err != nil {
		return nil, fmt.Errorf("generating the program: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         progName,
		Type:         ebpf.RawTracepoint,
		Instructions: insns,
		// The kernel lends bpf_get_stack and typed task pointers only to
		// programs that declare a GPL-compatible licence.
		License: "GPL",
	})
	if err != nil {
		return nil, fmt.Errorf("loading the program: %w", err)
	}
	return prog, nil
}

// Watch starts recording the checks of the tasks in cg and in the cgroups
// below it, but for those below another watched cgroup inside cg, which
// records them itself. Watching a cgroup again keeps what it has recorded.
func (t *Tracer) Watch(cg Cgroup) error {
	if cg.Level < 1 || cg.Level > maxLevel {
		return fmt.Errorf("watching cgroup %d: level %d is not in 1..%d", cg.ID, cg.Level, maxLevel)
	}
	unlock, err := t.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := t.sync(true); err != nil {
		return err
	}
	return t.rec.Watch(cg)
}

// Harvest returns what was recorded for the cgroup id and stops watching
// it; ErrNotWatched when it has no entry. The recorder stays attached:
// call Release next.
func (t *Tracer) Harvest(id uint64) (Record, error) {
	unlock, err := t.lock()
	if err != nil {
		return Record{}, err
	}
	defer unlock()
	if err := t.sync(false); err != nil {
		if errors.Is(err, ErrNotAttached) {
			return Record{}, fmt.Errorf("harvesting cgroup %d: %w", id, ErrNotWatched)
		}
		return Record{}, err
	}
	return t.rec.Harvest(id)
}

// Watched lists the ids of the watched cgroups.
func (t *Tracer) Watched() ([]uint64, error) {
	unlock, err := t.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := t.sync(false); err != nil {
		if errors.Is(err, ErrNotAttached) {
			return nil, nil
		}
		return nil, err
	}
	return t.rec.Keys()
}

// Release detaches and unpins the recorder when no cgroup is watched any
// more, and reports whether it did; while another container is watched it
// does nothing. A process still holding a Tracer keeps the program loaded
// until it closes it or exits.
func (t *Tracer) Release() (bool, error) {
	unlock, err := t.lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	return t.release()
}

func (t *Tracer) release() (bool, error) {
	err := t.sync(false)
	if errors.Is(err, ErrNotAttached) {
		// Perhaps a partial set of pins: nothing in it is of use.
		return true, removePins(t.opts.Dir)
	}
	if err != nil {
		return false, err
	}
	idle, err := t.rec.Idle()
	if err != nil || !idle {
		return false, err
	}
	t.drop()
	if err := removePins(t.opts.Dir); err != nil {
		return false, err
	}
	return true, nil
}

// Reclaim drops the entries of cgroups that alive says are gone (nil: a
// cgroup with that id no longer exists, see CgroupAlive; cgroup ids are
// not reused), so that a container deleted without capshim seeing it does
// not keep the recorder attached forever. It releases the recorder when
// nothing is left, and returns the ids it dropped.
func (t *Tracer) Reclaim(alive func(cgroupID uint64) bool) ([]uint64, error) {
	unlock, err := t.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := t.sync(false); err != nil {
		if errors.Is(err, ErrNotAttached) {
			return nil, nil
		}
		return nil, err
	}
	dropped, err := t.rec.Reclaim(alive)
	if err != nil {
		return dropped, err
	}
	// Also when nothing was dropped: a process that harvested the last
	// entry may have died before its Release.
	if _, err := t.release(); err != nil {
		return dropped, err
	}
	return dropped, nil
}

// loadNop loads a raw tracepoint program named name that does nothing.
func loadNop(name string) (*ebpf.Program, error) {
	return ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         name,
		Type:         ebpf.RawTracepoint,
		Instructions: nopProgram(),
		License:      "GPL",
	})
}

// Supported says why the recorder cannot work here, or nil: no cgroup v2
// hierarchy, no right to load BPF programs, no cap_capable tracepoint. It
// loads and attaches a program that does nothing, and removes it again.
func Supported() error {
	if _, _, err := V2Root(); err != nil {
		return fmt.Errorf("capability tracing: %w", err)
	}
	prog, err := loadNop("capshim_probe")
	if err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("capability tracing: no right to load BPF programs: %w", err)
		}
		return fmt.Errorf("capability tracing: loading a raw tracepoint program: %w", err)
	}
	defer prog.Close()
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "cap_capable", Program: prog})
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("capability tracing: this kernel has no cap_capable tracepoint: %w", err)
		}
		return fmt.Errorf("capability tracing: attaching to cap_capable: %w", err)
	}
	l.Close()
	return nil
}
