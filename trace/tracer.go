package trace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Where the pins and the lock live unless Options say otherwise. The lock
// file shares capshim's root-only directory on tmpfs with the policy cache.
const (
	DefaultDir  = "/sys/fs/bpf/capshim"
	DefaultLock = "/run/capshim/trace.lock"
)

// bpffsMount is where bpffs is mounted when the pin directory is below it
// and nothing is mounted there yet.
const bpffsMount = "/sys/fs/bpf"

// maxWatched bounds the cgroups watched at once. Entries are allocated
// when inserted (the map is not preallocated), so the bound costs nothing.
const maxWatched = 4096

// Names of the pins in the pin directory and of the objects in the kernel
// (at most 15 characters).
const (
	pinLink    = "link"
	pinProg    = "prog"
	pinCgroups = "cgroups"
	pinConfig  = "config"

	progName    = "capshim_cap"
	cgroupsName = "capshim_cgroups"
	configName  = "capshim_config"
	pendingName = "capshim_pending"
)

var pinNames = []string{pinLink, pinProg, pinCgroups, pinConfig}

// Options place the tracer's files; the zero value means the defaults.
type Options struct {
	Dir  string // bpffs directory of the pins (DefaultDir)
	Lock string // lock file that orders capshim processes (DefaultLock)
}

func (o Options) withDefaults() Options {
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.Lock == "" {
		o.Lock = DefaultLock
	}
	return o
}

var (
	// ErrNotAttached says no recorder is pinned (Open).
	ErrNotAttached = errors.New("no capability recorder is attached")
	// ErrNotWatched says the cgroup has no entry (Harvest).
	ErrNotWatched = errors.New("cgroup is not watched")
	// errNoPins is an incomplete or missing set of pins.
	errNoPins = errors.New("pins missing")
)

// Tracer is one process's handle on the pinned recorder. Its methods take
// the lock file, so capshim processes may use the recorder concurrently;
// a Tracer itself is not for concurrent use.
type Tracer struct {
	opts Options
	objs *objects
}

// objects are the kernel objects behind the pins.
type objects struct {
	link    link.Link
	prog    *ebpf.Program
	cgroups *ebpf.Map
	config  *ebpf.Map
	mapID   ebpf.MapID // of cgroups: tells whether the pins are still these
}

func (o *objects) close() {
	if o == nil {
		return
	}
	for _, c := range []interface{ Close() error }{o.link, o.prog, o.cgroups, o.config} {
		if c != nil {
			c.Close()
		}
	}
}

// Attach returns the recorder pinned in DefaultDir, loading and attaching
// it first when it is not there. It is Attach(Options{}).
func Attach() (*Tracer, error) { return AttachWith(Options{}) }

// AttachWith is Attach with other places for the pins and the lock.
func AttachWith(opts Options) (*Tracer, error) {
	t := &Tracer{opts: opts.withDefaults()}
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
	t := &Tracer{opts: opts.withDefaults()}
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
	t.objs.close()
	t.objs = nil
	return nil
}

// lock takes the lock file, creating it and its root-only directory.
func (t *Tracer) lock() (func(), error) {
	if err := os.MkdirAll(filepath.Dir(t.opts.Lock), 0o700); err != nil {
		return nil, fmt.Errorf("creating the trace lock directory: %w", err)
	}
	fd, err := unix.Open(t.opts.Lock, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the trace lock: %w", err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("taking the trace lock: %w", err)
	}
	return func() { unix.Close(fd) }, nil
}

// sync makes t.objs the objects now pinned, under the lock: another
// process may have released and re-attached the recorder since t last
// looked. With create, missing (or partial, or stale) pins are replaced by
// a new recorder; without, t.objs ends nil and sync returns ErrNotAttached.
func (t *Tracer) sync(create bool) error {
	if t.objs != nil {
		if id, err := pinnedMapID(filepath.Join(t.opts.Dir, pinCgroups)); err == nil && id == t.objs.mapID {
			return nil
		}
		t.objs.close()
		t.objs = nil
	}
	objs, err := openPins(t.opts.Dir)
	if err == nil {
		t.objs = objs
		return nil
	}
	var stale *staleError
	switch {
	case errors.As(err, &stale):
		if stale.watched > 0 {
			return fmt.Errorf("pins in %s: %w", t.opts.Dir, err)
		}
	case !errors.Is(err, errNoPins):
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
	objs, err = load(t.opts.Dir, filepath.Join(filepath.Dir(t.opts.Lock), "kernel-symbols.json"))
	if err != nil {
		return err
	}
	t.objs = objs
	return nil
}

// staleError is a set of pins made by another layout of the recorder.
type staleError struct {
	abi     uint64
	watched int
}

func (e *staleError) Error() string {
	return fmt.Sprintf("a recorder of layout %d (this is %d) is pinned and watches %d cgroups", e.abi, abiVersion, e.watched)
}

func pinnedMapID(path string) (ebpf.MapID, error) {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	return mapID(m)
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

// openPins opens the four pins. errNoPins: some are missing;
// *staleError: they belong to another layout.
func openPins(dir string) (_ *objects, err error) {
	o := &objects{}
	defer func() {
		if err != nil {
			o.close()
		}
	}()
	path := func(n string) string { return filepath.Join(dir, n) }
	notExist := func(err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return errNoPins
		}
		return err
	}
	if o.cgroups, err = ebpf.LoadPinnedMap(path(pinCgroups), nil); err != nil {
		return nil, notExist(err)
	}
	if o.config, err = ebpf.LoadPinnedMap(path(pinConfig), nil); err != nil {
		return nil, notExist(err)
	}
	if o.prog, err = ebpf.LoadPinnedProgram(path(pinProg), nil); err != nil {
		return nil, notExist(err)
	}
	if o.link, err = link.LoadPinnedLink(path(pinLink), nil); err != nil {
		return nil, notExist(err)
	}
	// The config map's layout has not changed with the entries': its
	// version word names the other layout in the message.
	var cfg [cfgWords]uint64
	if o.config.ValueSize() == cfgWords*8 {
		if err := o.config.Lookup(uint32(0), &cfg); err != nil {
			return nil, fmt.Errorf("reading the recorder's config: %w", err)
		}
	}
	if o.cgroups.ValueSize() != valueSize || o.cgroups.KeySize() != 8 {
		if cfg[cfgABI] == abiVersion {
			cfg[cfgABI] = 0
		}
	}
	if cfg[cfgABI] != abiVersion {
		return nil, &staleError{abi: cfg[cfgABI], watched: countEntries(o.cgroups)}
	}
	if o.mapID, err = mapID(o.cgroups); err != nil {
		return nil, err
	}
	return o, nil
}

// countEntries counts the keys of m (an error counts as one, so that a map
// that cannot be read is not taken for an empty one).
func countEntries(m *ebpf.Map) int {
	n := 0
	var key any // nil asks for the first key
	for {
		k, err := m.NextKeyBytes(key)
		if err != nil {
			return n + 1
		}
		if k == nil {
			return n
		}
		n++
		key = k
	}
}

// removePins unpins whatever is in dir and removes dir. Unpinning the link
// detaches the program once no process holds it open.
func removePins(dir string) error {
	for _, n := range pinNames {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("unpinning %s: %w", n, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}

// ensureBPFFS mounts bpffs at /sys/fs/bpf when dir is below it and it is
// not mounted yet (some hosts do not mount it at boot).
func ensureBPFFS(dir string) error {
	parent := filepath.Dir(filepath.Clean(dir))
	var st unix.Statfs_t
	if err := unix.Statfs(parent, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if _, ok := within(bpffsMount, parent); !ok {
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
	if o.config, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       configName,
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  cfgWords * 8,
		MaxEntries: 1,
	}); err != nil {
		return nil, fmt.Errorf("creating the config map: %w", err)
	}
	var cfg [cfgWords]uint64
	cfg[cfgABI] = abiVersion
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
	insns, err := program(progParams{
		cgroups:    o.cgroups.FD(),
		config:     o.config.FD(),
		pending:    pending.FD(),
		overcommit: ranges,
		comms:      runtimeComms,
		realCred:   realCred,
	})
	if err != nil {
		return nil, fmt.Errorf("generating the program: %w", err)
	}
	if o.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         progName,
		Type:         ebpf.RawTracepoint,
		Instructions: insns,
		// The kernel lends bpf_get_stack only to programs that declare a
		// GPL-compatible licence.
		License: "GPL",
	}); err != nil {
		return nil, fmt.Errorf("loading the program: %w", err)
	}
	if o.link, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: "cap_capable", Program: o.prog}); err != nil {
		return nil, fmt.Errorf("attaching to the cap_capable tracepoint: %w", err)
	}
	path := func(n string) string { return filepath.Join(dir, n) }
	if err = o.cgroups.Pin(path(pinCgroups)); err != nil {
		return nil, fmt.Errorf("pinning: %w", err)
	}
	if err = o.config.Pin(path(pinConfig)); err != nil {
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

// misses is the program's count of runs the kernel skipped.
func (o *objects) misses() (uint64, error) {
	st, err := o.prog.Stats()
	if err != nil {
		return 0, fmt.Errorf("program stats: %w", err)
	}
	return st.RecursionMisses, nil
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
	misses, err := t.objs.misses()
	if err != nil {
		return fmt.Errorf("watching cgroup %d: %w", cg.ID, err)
	}
	err = t.objs.cgroups.Update(cg.ID, newEntry(cg.Level, misses), ebpf.UpdateNoExist)
	if err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
		return fmt.Errorf("watching cgroup %d: %w", cg.ID, err)
	}
	// The entry goes in before its level: the program never looks at a
	// level for nothing, and never misses an entry it could find.
	if err := t.objs.setLevels(); err != nil {
		return fmt.Errorf("watching cgroup %d: %w", cg.ID, err)
	}
	return nil
}

// setLevels writes to the config the levels of the entries now in the map.
func (o *objects) setLevels() error {
	var levels uint64
	value := make([]byte, valueSize)
	var key uint64
	it := o.cgroups.Iterate()
	for it.Next(&key, value) {
		if l := entryLevel(value); l >= 1 && l <= maxLevel {
			levels |= 1 << l
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("listing watched cgroups: %w", err)
	}
	var cfg [cfgWords]uint64
	cfg[cfgLevels] = levels
	cfg[cfgABI] = abiVersion
	if err := o.config.Update(uint32(0), cfg, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("writing the recorder's config: %w", err)
	}
	return nil
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
	value := make([]byte, valueSize)
	err = t.objs.cgroups.LookupAndDelete(id, value)
	if errors.Is(err, ebpf.ErrNotSupported) {
		if err = t.objs.cgroups.Lookup(id, value); err == nil {
			err = t.objs.cgroups.Delete(id)
		}
	}
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return Record{}, fmt.Errorf("harvesting cgroup %d: %w", id, ErrNotWatched)
	}
	if err != nil {
		return Record{}, fmt.Errorf("harvesting cgroup %d: %w", id, err)
	}
	misses, err := t.objs.misses()
	if err != nil {
		return Record{}, fmt.Errorf("harvesting cgroup %d: %w", id, err)
	}
	if err := t.objs.setLevels(); err != nil {
		return Record{}, fmt.Errorf("harvesting cgroup %d: %w", id, err)
	}
	return decodeRecord(id, value, misses), nil
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
	return t.objs.keys()
}

func (o *objects) keys() ([]uint64, error) {
	var ids []uint64
	var key any // nil asks for the first key
	for {
		k, err := o.cgroups.NextKeyBytes(key)
		if err != nil {
			return nil, fmt.Errorf("listing watched cgroups: %w", err)
		}
		if k == nil {
			return ids, nil
		}
		ids = append(ids, binary.NativeEndian.Uint64(k))
		key = k
	}
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
	ids, err := t.objs.keys()
	if err != nil {
		return false, err
	}
	if len(ids) > 0 {
		return false, nil
	}
	t.objs.close()
	t.objs = nil
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
	if alive == nil {
		alive = func(id uint64) bool {
			ok, err := CgroupAlive(id)
			return ok || err != nil // unsure: keep
		}
	}
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
	ids, err := t.objs.keys()
	if err != nil {
		return nil, err
	}
	var dropped []uint64
	for _, id := range ids {
		if alive(id) {
			continue
		}
		if err := t.objs.cgroups.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return dropped, fmt.Errorf("dropping cgroup %d: %w", id, err)
		}
		dropped = append(dropped, id)
	}
	if len(dropped) > 0 {
		if err := t.objs.setLevels(); err != nil {
			return dropped, err
		}
	}
	// Also when nothing was dropped: a process that harvested the last
	// entry may have died before its Release.
	if _, err := t.release(); err != nil {
		return dropped, err
	}
	return dropped, nil
}

// Supported says why the recorder cannot work here, or nil: no cgroup v2
// hierarchy, no right to load BPF programs, no cap_capable tracepoint. It
// loads and attaches a program that does nothing, and removes it again.
func Supported() error {
	if _, _, err := V2Root(); err != nil {
		return fmt.Errorf("capability tracing: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "capshim_probe",
		Type:         ebpf.RawTracepoint,
		Instructions: nopProgram(),
		License:      "GPL",
	})
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
