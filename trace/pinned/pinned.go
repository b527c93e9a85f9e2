// Package pinned is the steady-state side of the capability recorder of
// package trace: it opens the recorder trace loaded and pinned in bpffs,
// watches a cgroup, harvests what it recorded, reclaims entries of
// cgroups that are gone and unpins the recorder when nothing is watched.
// It makes the few bpf(2) calls this takes itself, so that the runtime
// binary, which runs on every container start, does this work in its own
// process without linking a BPF library; only the first start of a boot
// (or after the recorder was released) runs capshim-trace to load it.
//
// It also holds what both sides must agree on: the layout of the maps
// (layout.go), the reading of an entry (Record) and cgroup ids (Cgroup).
package pinned

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

var (
	// ErrNoPins says no complete recorder is pinned: it must be loaded
	// first (trace.Attach), or there is nothing to harvest.
	ErrNoPins = errors.New("no capability recorder is pinned")
	// ErrNotWatched says the cgroup has no entry (Harvest).
	ErrNotWatched = errors.New("cgroup is not watched")
)

// StaleError is a set of pins made by another layout of the recorder.
type StaleError struct {
	ABI     uint64
	Watched int
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("a recorder of layout %d (this is %d) is pinned and watches %d cgroups", e.ABI, ABIVersion, e.Watched)
}

// Recorder is an open handle on the pinned recorder's maps and program.
// Its methods do not take the lock: callers hold it (Lock) around a
// sequence of them.
type Recorder struct {
	cgroups, config, prog, execs int
	slots                        int
	mapID                        uint32
	noExec                       uint64 // the config's CfgNoExec, written back with the levels
}

// Lock takes the lock file that orders capshim processes, creating it and
// its root-only directory, and returns its release.
func Lock(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the trace lock directory: %w", err)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
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

// Open opens the recorder pinned in dir, after checking that it is
// capshim's: dir is a directory on bpffs that only root can change, each
// pin is root's, and the objects are of the names, types and sizes this
// layout makes, with this layout's version in the config. ErrNoPins: some
// pin is missing; *StaleError: another layout's.
func Open(dir string) (_ *Recorder, err error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	r := &Recorder{cgroups: -1, config: -1, prog: -1, execs: -1, slots: -1}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	open := func(name string) (int, error) {
		p := filepath.Join(dir, name)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return -1, ErrNoPins
			}
			return -1, fmt.Errorf("pin %s: %w", p, err)
		}
		if st.Uid != 0 || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return -1, fmt.Errorf("pin %s is not a pin of root's (owner %d, mode %o): remove it", p, st.Uid, st.Mode)
		}
		return objGet(p)
	}
	// The link is pinned last: without it the rest may be a loader's that
	// died half-way. It is not opened: unpinning is all that is done to it.
	if _, err := os.Lstat(filepath.Join(dir, PinLink)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrNoPins
		}
		return nil, fmt.Errorf("pin %s: %w", filepath.Join(dir, PinLink), err)
	}
	if r.cgroups, err = open(PinCgroups); err != nil {
		return nil, err
	}
	if r.config, err = open(PinConfig); err != nil {
		return nil, err
	}
	if r.prog, err = open(PinProg); err != nil {
		return nil, err
	}
	if r.execs, err = open(PinExecs); err != nil {
		return nil, err
	}
	cinfo, err := getMapInfo(r.config)
	if err != nil {
		return nil, fmt.Errorf("config map info: %w", err)
	}
	if cinfo.Type != unix.BPF_MAP_TYPE_ARRAY || objName(cinfo.Name) != ConfigName || cinfo.KeySize != 4 || cinfo.MaxEntries != 1 {
		return nil, fmt.Errorf("pin %s is not a capshim recorder's config (map %q)", filepath.Join(dir, PinConfig), objName(cinfo.Name))
	}
	pinfo, err := getProgInfo(r.prog)
	if err != nil {
		return nil, fmt.Errorf("program info: %w", err)
	}
	if pinfo.Type != unix.BPF_PROG_TYPE_RAW_TRACEPOINT || objName(pinfo.Name) != ProgName {
		return nil, fmt.Errorf("pin %s is not a capshim recorder (program %q)", filepath.Join(dir, PinProg), objName(pinfo.Name))
	}
	info, err := getMapInfo(r.cgroups)
	if err != nil {
		return nil, fmt.Errorf("cgroups map info: %w", err)
	}
	if info.Type != unix.BPF_MAP_TYPE_HASH || objName(info.Name) != CgroupsName {
		return nil, fmt.Errorf("pin %s is not a capshim recorder's map (map %q)", filepath.Join(dir, PinCgroups), objName(info.Name))
	}
	einfo, err := getMapInfo(r.execs)
	if err != nil {
		return nil, fmt.Errorf("execs map info: %w", err)
	}
	if einfo.Type != unix.BPF_MAP_TYPE_HASH || objName(einfo.Name) != ExecsName || einfo.KeySize != ExecKeySize {
		return nil, fmt.Errorf("pin %s is not a capshim recorder's map (map %q)", filepath.Join(dir, PinExecs), objName(einfo.Name))
	}
	// The config's layout has not changed with the entries': its version
	// word names the other layout in the message.
	var cfg [CfgWords]uint64
	if cinfo.ValueSize == CfgWords*8 {
		if err := mapLookup(r.config, unsafe.Pointer(new(uint32)), unsafe.Pointer(&cfg)); err != nil {
			return nil, fmt.Errorf("reading the recorder's config: %w", err)
		}
	}
	abi := cfg[CfgABI]
	if info.ValueSize != ValueSize || info.KeySize != 8 {
		if abi == ABIVersion {
			abi = 0
		}
	}
	if abi != ABIVersion {
		n := 1 // a map that cannot be listed is not taken for an empty one
		if keys, err := mapKeys(r.cgroups); err == nil {
			n = len(keys)
		}
		return nil, &StaleError{ABI: abi, Watched: n}
	}
	// The slots came with this layout: they are opened once the layout is
	// known to be this one, so that an older recorder's pins are stale, not
	// missing.
	if r.slots, err = open(PinSlots); err != nil {
		return nil, err
	}
	sinfo, err := getMapInfo(r.slots)
	if err != nil {
		return nil, fmt.Errorf("slots map info: %w", err)
	}
	if sinfo.Type != unix.BPF_MAP_TYPE_ARRAY || objName(sinfo.Name) != SlotsName || sinfo.KeySize != 4 || sinfo.ValueSize != SlotSize || sinfo.MaxEntries != Slots {
		return nil, fmt.Errorf("pin %s is not a capshim recorder's map (map %q)", filepath.Join(dir, PinSlots), objName(sinfo.Name))
	}
	r.mapID = info.ID
	r.noExec = cfg[CfgNoExec]
	return r, nil
}

// checkDir checks that dir is a directory on bpffs that only root can
// change; ErrNoPins when it does not exist.
func checkDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return ErrNoPins
		}
		return fmt.Errorf("pin directory %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != 0 || st.Mode&0o022 != 0 {
		return fmt.Errorf("pin directory %s is not a directory only root can change (owner %d, mode %o): remove it", dir, st.Uid, st.Mode&0o7777)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		return fmt.Errorf("pin directory %s: %w", dir, err)
	}
	if sfs.Type != unix.BPF_FS_MAGIC {
		return fmt.Errorf("pin directory %s is not on bpffs", dir)
	}
	return nil
}

// Close drops the handles; the pins stay.
func (r *Recorder) Close() {
	if r == nil {
		return
	}
	for _, fd := range []*int{&r.cgroups, &r.config, &r.prog, &r.execs, &r.slots} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// MapID is the kernel's id of the cgroups map: two handles with the same
// id are on the same recorder.
func (r *Recorder) MapID() uint32 { return r.mapID }

// PinnedMapID is the id of the cgroups map pinned in dir.
func PinnedMapID(dir string) (uint32, error) {
	fd, err := objGet(filepath.Join(dir, PinCgroups))
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	info, err := getMapInfo(fd)
	if err != nil {
		return 0, fmt.Errorf("map info: %w", err)
	}
	return info.ID, nil
}

// Misses is the program's count of runs the kernel skipped.
func (r *Recorder) Misses() (uint64, error) {
	info, err := getProgInfo(r.prog)
	if err != nil {
		return 0, fmt.Errorf("program info: %w", err)
	}
	return info.RecursionMisses, nil
}

// Watch starts recording the checks of the tasks in cg and in the cgroups
// below it, but for those below another watched cgroup inside cg, which
// records them itself. Watching a cgroup again keeps what it has recorded.
func (r *Recorder) Watch(cg Cgroup) error {
	if cg.Level < 1 || cg.Level > MaxLevel {
		return fmt.Errorf("watching cgroup %d: level %d is not in 1..%d", cg.ID, cg.Level, MaxLevel)
	}
	misses, err := r.Misses()
	if err != nil {
		return fmt.Errorf("watching cgroup %d: %w", cg.ID, err)
	}
	id := cg.ID
	entry := NewEntry(cg.Level, misses)
	err = mapUpdate(r.cgroups, unsafe.Pointer(&id), unsafe.Pointer(&entry[0]), unix.BPF_NOEXIST)
	switch {
	case err == nil:
		if err := r.claimSlot(id, entry); err != nil {
			return fmt.Errorf("watching cgroup %d: %w", cg.ID, err)
		}
	case !errors.Is(err, unix.EEXIST):
		return fmt.Errorf("watching cgroup %d: %w", cg.ID, err)
	}
	// The entry goes in before its level: the program never looks at a
	// level for nothing, and never misses an entry it could find.
	if err := r.SetLevels(); err != nil {
		return fmt.Errorf("watching cgroup %d: %w", cg.ID, err)
	}
	return nil
}

// claimSlot gives a cgroup just added to the cgroups map its slot, unless
// another watched cgroup holds it. A slot whose holder has no entry in the
// cgroups map is one a harvest that died half-way left behind: it is
// taken, and so is one that holds the same id (watched again after such a
// harvest), whose counts are of the earlier run.
func (r *Recorder) claimSlot(id uint64, entry []byte) error {
	idx, slot, err := r.readSlot(id)
	if err != nil {
		return err
	}
	if holder := binary.NativeEndian.Uint64(slot); holder != 0 && holder != id {
		probe := make([]byte, ValueSize)
		err := mapLookup(r.cgroups, unsafe.Pointer(&holder), unsafe.Pointer(&probe[0]))
		if err == nil {
			return nil
		}
		if !errors.Is(err, errKeyNotExist) {
			return fmt.Errorf("reading watched cgroup %d: %w", holder, err)
		}
	}
	binary.NativeEndian.PutUint64(slot, id)
	copy(slot[8:], entry)
	return r.writeSlot(idx, slot)
}

// readSlot reads the slot of cgroup id: its index and its contents, the
// holder's id in the first word.
func (r *Recorder) readSlot(id uint64) (uint32, []byte, error) {
	idx := SlotIndex(id)
	slot := make([]byte, SlotSize)
	if err := mapLookup(r.slots, unsafe.Pointer(&idx), unsafe.Pointer(&slot[0])); err != nil {
		return 0, nil, fmt.Errorf("reading slot %d: %w", idx, err)
	}
	return idx, slot, nil
}

func (r *Recorder) writeSlot(idx uint32, slot []byte) error {
	if err := mapUpdate(r.slots, unsafe.Pointer(&idx), unsafe.Pointer(&slot[0]), unix.BPF_ANY); err != nil {
		return fmt.Errorf("writing slot %d: %w", idx, err)
	}
	return nil
}

// takeSlot frees the slot of cgroup id when id holds it, and adds what was
// counted there to value, the cgroup's entry; value may be nil.
func (r *Recorder) takeSlot(id uint64, value []byte) error {
	idx, slot, err := r.readSlot(id)
	if err != nil {
		return err
	}
	if binary.NativeEndian.Uint64(slot) != id {
		return nil
	}
	if value != nil {
		MergeEntry(value, slot[8:])
	}
	clear(slot)
	return r.writeSlot(idx, slot)
}

// SetLevels writes to the config the levels of the entries now in the map.
func (r *Recorder) SetLevels() error {
	w, err := r.list()
	if err != nil {
		return err
	}
	return r.writeLevels(w)
}

// watchedCgroup is what a listing of the cgroups map says of one entry.
type watchedCgroup struct {
	id    uint64
	level int
}

// list reads the cgroups map once: every watched cgroup and its level.
func (r *Recorder) list() ([]watchedCgroup, error) {
	var w []watchedCgroup
	add := func(id uint64, value []byte) {
		w = append(w, watchedCgroup{id: id, level: EntryLevel(value)})
	}
	err := mapEach(r.cgroups, 8, ValueSize, MaxWatched, func(key, value []byte) error {
		add(binary.NativeEndian.Uint64(key), value)
		return nil
	})
	if errors.Is(err, errNoBatch) {
		w = w[:0]
		err = r.eachEntry(add)
	}
	if err != nil {
		return nil, fmt.Errorf("listing watched cgroups: %w", err)
	}
	return w, nil
}

// writeLevels writes the config for the watched cgroups w: the levels the
// program looks at and the filter of their ids.
func (r *Recorder) writeLevels(w []watchedCgroup) error {
	var levels, filter uint64
	for _, c := range w {
		if c.level >= 1 && c.level <= MaxLevel {
			levels |= 1 << c.level
			filter |= FilterBit(c.id)
		}
	}
	cfg := [CfgWords]uint64{CfgLevels: levels, CfgABI: ABIVersion, CfgNoExec: r.noExec, CfgFilter: filter}
	if err := mapUpdate(r.config, unsafe.Pointer(new(uint32)), unsafe.Pointer(&cfg), unix.BPF_ANY); err != nil {
		return fmt.Errorf("writing the recorder's config: %w", err)
	}
	return nil
}

// eachEntry calls fn with every entry, one look-up each, for kernels that
// cannot look up in batches.
func (r *Recorder) eachEntry(fn func(id uint64, value []byte)) error {
	ids, err := mapKeys(r.cgroups)
	if err != nil {
		return err
	}
	value := make([]byte, ValueSize)
	for _, id := range ids {
		if err := mapLookup(r.cgroups, unsafe.Pointer(&id), unsafe.Pointer(&value[0])); err != nil {
			if errors.Is(err, errKeyNotExist) {
				continue
			}
			return fmt.Errorf("reading watched cgroup %d: %w", id, err)
		}
		fn(id, value)
	}
	return nil
}

// Harvest returns what was recorded for the cgroup id and stops watching
// it; ErrNotWatched when it has no entry.
func (r *Recorder) Harvest(id uint64) (Record, error) {
	rec, err := r.harvest(id)
	if err != nil {
		return rec, err
	}
	if err := r.SetLevels(); err != nil {
		return Record{}, fmt.Errorf("harvesting cgroup %d: %w", id, err)
	}
	return rec, nil
}

// harvest is Harvest but for the config, which still names the harvested
// cgroup's level and filter bit afterwards (harmless: the program then
// looks for an entry it does not find) until the next write of the levels.
func (r *Recorder) harvest(id uint64) (Record, error) {
	// The executables go first: an entry left by a harvest that died
	// half-way is reclaimed with its cgroup, and takes its executables
	// with it.
	value := make([]byte, ValueSize)
	if err := mapLookup(r.cgroups, unsafe.Pointer(&id), unsafe.Pointer(&value[0])); err != nil {
		if errors.Is(err, errKeyNotExist) {
			return Record{}, fmt.Errorf("harvesting cgroup %d: %w", id, ErrNotWatched)
		}
		return Record{}, fmt.Errorf("harvesting cgroup %d: %w", id, err)
	}
	execs, err := r.takeExecs(map[uint64]bool{id: true})
	if err != nil {
		return Record{}, fmt.Errorf("harvesting cgroup %d: %w", id, err)
	}
	err = mapLookupAndDelete(r.cgroups, unsafe.Pointer(&id), unsafe.Pointer(&value[0]))
	if errors.Is(err, errKeyNotExist) {
		return Record{}, fmt.Errorf("harvesting cgroup %d: %w", id, ErrNotWatched)
	}
	if err != nil {
		return Record{}, fmt.Errorf("harvesting cgroup %d: %w", id, err)
	}
	if err := r.takeSlot(id, value); err != nil {
		return Record{}, fmt.Errorf("harvesting cgroup %d: %w", id, err)
	}
	misses, err := r.Misses()
	if err != nil {
		return Record{}, fmt.Errorf("harvesting cgroup %d: %w", id, err)
	}
	rec := DecodeRecord(id, value, misses)
	rec.Execs = execs[id]
	if r.noExec != 0 {
		rec.Gaps = append(rec.Gaps, "executables were not recorded (no kernel BTF to find their paths): file capabilities they demand are not known")
		rec.Complete = false
	}
	return rec, nil
}

// takeExecs deletes the executables recorded for the cgroups in ids and
// returns their paths by cgroup.
func (r *Recorder) takeExecs(ids map[uint64]bool) (map[uint64][]string, error) {
	var keys [][ExecKeySize]byte
	err := mapEach(r.execs, ExecKeySize, 8, MaxExecEntries, func(key, _ []byte) error {
		if ids[binary.NativeEndian.Uint64(key[:8])] {
			keys = append(keys, [ExecKeySize]byte(key))
		}
		return nil
	})
	if errors.Is(err, errNoBatch) {
		keys, err = r.execKeys(ids)
	}
	if err != nil {
		return nil, fmt.Errorf("listing executables: %w", err)
	}
	out := map[uint64][]string{}
	for i := range keys {
		k := &keys[i]
		if err := mapDelete(r.execs, unsafe.Pointer(k)); err != nil && !errors.Is(err, errKeyNotExist) {
			return nil, fmt.Errorf("dropping an executable: %w", err)
		}
		id := binary.NativeEndian.Uint64(k[:8])
		p := k[8:]
		if n := bytes.IndexByte(p, 0); n >= 0 {
			p = p[:n]
		}
		out[id] = append(out[id], string(p))
	}
	for id := range out {
		slices.Sort(out[id])
	}
	return out, nil
}

// execKeys lists the keys of the executables of the cgroups in ids, a key
// at a time, for kernels that cannot look up in batches.
func (r *Recorder) execKeys(ids map[uint64]bool) ([][ExecKeySize]byte, error) {
	var keys [][ExecKeySize]byte
	var key, next [ExecKeySize]byte
	keyp := unsafe.Pointer(nil)
	for n := 0; ; n++ {
		if n > MaxExecEntries {
			return nil, fmt.Errorf("more than %d executables", MaxExecEntries)
		}
		err := mapElem(unix.BPF_MAP_GET_NEXT_KEY, r.execs, keyp, unsafe.Pointer(&next), 0)
		if errors.Is(err, errKeyNotExist) {
			return keys, nil
		}
		if err != nil {
			return nil, err
		}
		if ids[binary.NativeEndian.Uint64(next[:8])] {
			keys = append(keys, next)
		}
		key = next
		keyp = unsafe.Pointer(&key)
	}
}

// Keys lists the ids of the watched cgroups.
func (r *Recorder) Keys() ([]uint64, error) {
	w, err := r.list()
	if err != nil {
		return nil, err
	}
	ids := make([]uint64, len(w))
	for i, c := range w {
		ids[i] = c.id
	}
	return ids, nil
}

// Drop deletes the entry of cgroup id, and frees its slot, if it has them.
func (r *Recorder) Drop(id uint64) error {
	if err := mapDelete(r.cgroups, unsafe.Pointer(&id)); err != nil && !errors.Is(err, errKeyNotExist) {
		return fmt.Errorf("dropping cgroup %d: %w", id, err)
	}
	if err := r.takeSlot(id, nil); err != nil {
		return fmt.Errorf("dropping cgroup %d: %w", id, err)
	}
	return nil
}

// Reclaim drops the entries of cgroups that alive says are gone (nil: a
// cgroup with that id no longer exists, see CgroupAlive; cgroup ids are
// not reused), and returns the ids it dropped.
func (r *Recorder) Reclaim(alive func(cgroupID uint64) bool) ([]uint64, error) {
	return r.reclaim(alive, false)
}

// reclaim is Reclaim, which writes the levels when it dropped an entry,
// or always when levels is set.
func (r *Recorder) reclaim(alive func(cgroupID uint64) bool, levels bool) ([]uint64, error) {
	if alive == nil {
		// One look at the hierarchy for every entry: a node watches as
		// many cgroups as it runs containers, and every delete reclaims.
		l := newLiveness()
		defer l.close()
		alive = func(id uint64) bool {
			ok, err := l.alive(id)
			return ok || err != nil // unsure: keep
		}
	}
	w, err := r.list()
	if err != nil {
		return nil, err
	}
	var dropped []uint64
	kept := w[:0]
	for _, c := range w {
		if alive(c.id) {
			kept = append(kept, c)
			continue
		}
		if err := r.Drop(c.id); err != nil {
			return dropped, err
		}
		dropped = append(dropped, c.id)
	}
	if len(dropped) > 0 || levels {
		// The listing is the map as it is: this process holds the lock
		// and the program never inserts.
		if err := r.writeLevels(kept); err != nil {
			return dropped, err
		}
	}
	if len(dropped) > 0 {
		gone := map[uint64]bool{}
		for _, id := range dropped {
			gone[id] = true
		}
		if _, err := r.takeExecs(gone); err != nil {
			return dropped, err
		}
	}
	return dropped, nil
}

// Idle reports whether no cgroup is watched.
func (r *Recorder) Idle() (bool, error) {
	var first uint64
	err := mapElem(unix.BPF_MAP_GET_NEXT_KEY, r.cgroups, nil, unsafe.Pointer(&first), 0)
	if errors.Is(err, errKeyNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("listing watched cgroups: %w", err)
	}
	return false, nil
}

// RemovePins unpins whatever is in dir and removes dir. Unpinning the link
// detaches the program once no process holds it open.
func RemovePins(dir string) error {
	for _, n := range PinNames {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("unpinning %s: %w", n, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}
