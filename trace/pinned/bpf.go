package pinned

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The few bpf(2) commands the steady state needs, made directly: the
// runtime binary runs on every container start and must not carry a BPF
// library for them. The attribute and info structures below are prefixes
// of the kernel's (include/uapi/linux/bpf.h); the kernel accepts a shorter
// info buffer and fills what fits.

// mapElemAttr is the attribute of the map element commands.
type mapElemAttr struct {
	mapFD uint32
	_     uint32
	key   uint64
	value uint64 // or next_key
	flags uint64
}

// objGetAttr is the attribute of BPF_OBJ_GET.
type objGetAttr struct {
	pathname  uint64
	bpfFD     uint32
	fileFlags uint32
	pathFD    int32
	_         uint32
}

// infoAttr is the attribute of BPF_OBJ_GET_INFO_BY_FD.
type infoAttr struct {
	bpfFD   uint32
	infoLen uint32
	info    uint64
}

// mapInfo is the beginning of struct bpf_map_info.
type mapInfo struct {
	Type       uint32
	ID         uint32
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	MapFlags   uint32
	Name       [16]byte
}

// progInfo is struct bpf_prog_info up to recursion_misses.
type progInfo struct {
	Type            uint32
	ID              uint32
	_               [56]byte // tag .. map_ids
	Name            [16]byte
	_               [112]byte // ifindex .. prog_tags
	RunTimeNs       uint64
	RunCnt          uint64
	RecursionMisses uint64
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return r, errno
		}
		return r, nil
	}
}

// objGet opens a pinned object read-write.
func objGet(path string) (int, error) {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return -1, err
	}
	attr := objGetAttr{pathname: uint64(uintptr(unsafe.Pointer(p)))}
	fd, err := bpf(unix.BPF_OBJ_GET, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		return -1, fmt.Errorf("opening pin %s: %w", path, err)
	}
	return int(fd), nil
}

func objInfo(fd int, info unsafe.Pointer, size uintptr) error {
	attr := infoAttr{bpfFD: uint32(fd), infoLen: uint32(size), info: uint64(uintptr(info))}
	_, err := bpf(unix.BPF_OBJ_GET_INFO_BY_FD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

func getMapInfo(fd int) (mapInfo, error) {
	var info mapInfo
	err := objInfo(fd, unsafe.Pointer(&info), unsafe.Sizeof(info))
	return info, err
}

func getProgInfo(fd int) (progInfo, error) {
	var info progInfo
	err := objInfo(fd, unsafe.Pointer(&info), unsafe.Sizeof(info))
	return info, err
}

// objName reads a NUL-padded kernel object name.
func objName(b [16]byte) string {
	if i := bytes.IndexByte(b[:], 0); i >= 0 {
		return string(b[:i])
	}
	return string(b[:])
}

// errKeyNotExist is the kernel's answer for a missing key.
var errKeyNotExist = unix.ENOENT

func mapElem(cmd, fd int, key, value unsafe.Pointer, flags uint64) error {
	attr := mapElemAttr{mapFD: uint32(fd), key: uint64(uintptr(key)), value: uint64(uintptr(value)), flags: flags}
	_, err := bpf(cmd, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	return err
}

func mapLookup(fd int, key, value unsafe.Pointer) error {
	return mapElem(unix.BPF_MAP_LOOKUP_ELEM, fd, key, value, 0)
}

func mapUpdate(fd int, key, value unsafe.Pointer, flags uint64) error {
	return mapElem(unix.BPF_MAP_UPDATE_ELEM, fd, key, value, flags)
}

func mapDelete(fd int, key unsafe.Pointer) error {
	return mapElem(unix.BPF_MAP_DELETE_ELEM, fd, key, nil, 0)
}

// mapLookupAndDelete takes an element out in one step; kernels before
// 5.14 cannot do that for hash maps, and then it is a lookup and a delete
// (under the lock, nothing else deletes in between).
func mapLookupAndDelete(fd int, key, value unsafe.Pointer) error {
	err := mapElem(unix.BPF_MAP_LOOKUP_AND_DELETE_ELEM, fd, key, value, 0)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, errENOTSUPP) || errors.Is(err, unix.EOPNOTSUPP) {
		if err = mapLookup(fd, key, value); err == nil {
			err = mapDelete(fd, key)
		}
	}
	return err
}

// mapKeys lists the u64 keys of a hash map.
func mapKeys(fd int) ([]uint64, error) {
	var ids []uint64
	var key, next uint64
	keyp := unsafe.Pointer(nil) // nil asks for the first key
	for {
		err := mapElem(unix.BPF_MAP_GET_NEXT_KEY, fd, keyp, unsafe.Pointer(&next), 0)
		if errors.Is(err, errKeyNotExist) {
			return ids, nil
		}
		if err != nil {
			return nil, err
		}
		ids = append(ids, next)
		if len(ids) > MaxWatched {
			return nil, fmt.Errorf("more than %d keys", MaxWatched)
		}
		key = next
		keyp = unsafe.Pointer(&key)
	}
}

// errENOTSUPP is the kernel's internal "not supported" (524), which some
// map commands return to user space.
const errENOTSUPP = unix.Errno(524)

// batchAttr is the attribute of the BPF_MAP_*_BATCH commands.
type batchAttr struct {
	inBatch   uint64
	outBatch  uint64
	keys      uint64
	values    uint64
	count     uint32
	mapFD     uint32
	elemFlags uint64
	flags     uint64
}

// A batched look-up asks for firstBatch elements, and for twice as many
// each time a batch comes back full, up to maxBatch: a map of a few
// entries costs one call and small buffers (the runtime binary is a fresh
// process, which pays for every page it touches), one that a node fills
// a few calls in buffers of at most about 100 KB.
//
// The kernel hands out a hash map's buckets whole, and refuses (ENOSPC) a
// batch too small for the next bucket: the batch is then asked again,
// twice as large, up to maxBucket elements.
const (
	firstBatch = 8
	maxBatch   = 64
	maxBucket  = 1024
)

// batchFrom and batchTo are firstBatch and maxBatch; tests make them
// one element, so that every bucket of more than one meets the ENOSPC
// path, or make batchFrom 0, to take the path of a kernel without
// batched look-ups on one that has them.
var batchFrom, batchTo = firstBatch, maxBatch

// errNoBatch says the kernel cannot look a map up in batches (before 5.6).
var errNoBatch = errors.New("batched look-ups not supported")

// mapEach calls fn with every key and value of the hash map fd, a batch
// of elements per system call, where the one-element commands take two
// calls per element; fn must not keep the slices. At most max elements
// are read. errNoBatch: the kernel cannot, and nothing was read.
func mapEach(fd, keySize, valueSize, max int, fn func(key, value []byte) error) error {
	if batchFrom == 0 {
		return errNoBatch
	}
	// The batch token of a hash map is a bucket index (u32); the buffer is
	// wider in case another map type's is.
	var in, out [8]byte
	inp := unsafe.Pointer(nil)
	var keys, values []byte
	for seen, batch := 0, batchFrom; ; {
		if len(keys) < batch*keySize {
			keys, values = make([]byte, batch*keySize), make([]byte, batch*valueSize)
		}
		attr := batchAttr{
			inBatch:  uint64(uintptr(inp)),
			outBatch: uint64(uintptr(unsafe.Pointer(&out))),
			keys:     uint64(uintptr(unsafe.Pointer(&keys[0]))),
			values:   uint64(uintptr(unsafe.Pointer(&values[0]))),
			count:    uint32(batch),
			mapFD:    uint32(fd),
		}
		_, err := bpf(unix.BPF_MAP_LOOKUP_BATCH, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
		if errors.Is(err, unix.ENOSPC) && batch < maxBucket {
			// Nothing was read: the same position again, room for
			// the whole bucket.
			batch = min(2*batch, maxBucket)
			continue
		}
		done := errors.Is(err, unix.ENOENT)
		if err != nil && !done {
			if inp == nil && (errors.Is(err, unix.EINVAL) || errors.Is(err, errENOTSUPP) || errors.Is(err, unix.EOPNOTSUPP)) {
				return errNoBatch
			}
			return err
		}
		n := int(attr.count)
		if seen += n; seen > max {
			return fmt.Errorf("more than %d elements", max)
		}
		for i := 0; i < n; i++ {
			if err := fn(keys[i*keySize:(i+1)*keySize], values[i*valueSize:(i+1)*valueSize]); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
		if n == batch {
			batch = min(2*batch, batchTo)
		}
		in = out
		inp = unsafe.Pointer(&in)
	}
}
