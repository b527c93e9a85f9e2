// Package filecaps reads the file capabilities of executables (the
// security.capability extended attribute) inside a container's root file
// system. The kernel refuses to execute a binary whose file-permitted
// capabilities are not all in the bounding set when its effective bit is
// set, and does so without a capability check, so what a workload needs
// includes what its executables carry.
package filecaps

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/capshim/capshim/capability"
	"golang.org/x/sys/unix"
)

const xattrName = "security.capability"

// Layout of struct vfs_cap_data (include/uapi/linux/capability.h).
const (
	revisionMask  = 0xff000000
	revision1     = 0x01000000 // 32 bits of capabilities
	revision2     = 0x02000000 // 64 bits
	revision3     = 0x03000000 // 64 bits and the root id of a user namespace
	flagEffective = 0x000001
)

// Caps is what one executable's attribute says.
type Caps struct {
	Permitted   capability.Set
	Inheritable capability.Set
	// Effective: the kernel raises the permitted set at exec, and refuses
	// the exec when any of it is not in the bounding set.
	Effective bool
}

// Parse reads the attribute's value.
func Parse(b []byte) (Caps, error) {
	if len(b) < 4 {
		return Caps{}, fmt.Errorf("file capabilities of %d bytes", len(b))
	}
	magic := binary.LittleEndian.Uint32(b)
	c := Caps{Effective: magic&flagEffective != 0}
	words := 0
	switch magic & revisionMask {
	case revision1:
		words = 1
	case revision2, revision3:
		words = 2
	default:
		return Caps{}, fmt.Errorf("file capabilities of unknown revision %#x", magic&revisionMask)
	}
	if len(b) < 4+8*words {
		return Caps{}, fmt.Errorf("file capabilities of %d bytes for revision %#x", len(b), magic&revisionMask)
	}
	for i := 0; i < words; i++ {
		c.Permitted |= capability.Set(binary.LittleEndian.Uint32(b[4+8*i:])) << (32 * i)
		c.Inheritable |= capability.Set(binary.LittleEndian.Uint32(b[8+8*i:])) << (32 * i)
	}
	return c, nil
}

// Read returns the file capabilities of the executable at exe, a path as
// a task of the container saw it, resolved inside rootfs as the
// container's root (symbolic links too): ok is false when it has none.
func Read(rootfs, exe string) (c Caps, ok bool, err error) {
	if !path.IsAbs(exe) {
		return Caps{}, false, fmt.Errorf("executable %q: not an absolute path", exe)
	}
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Caps{}, false, fmt.Errorf("opening the root file system %s: %w", rootfs, err)
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, strings.TrimPrefix(exe, "/"), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return Caps{}, false, fmt.Errorf("executable %s in %s: %w", exe, rootfs, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 64)
	// An O_PATH descriptor does not serve fgetxattr: its /proc path does.
	n, err := unix.Getxattr(fmt.Sprintf("/proc/self/fd/%d", fd), xattrName, buf)
	if errors.Is(err, unix.ENODATA) {
		return Caps{}, false, nil
	}
	if err != nil {
		return Caps{}, false, fmt.Errorf("file capabilities of %s: %w", exe, err)
	}
	c, err = Parse(buf[:n])
	if err != nil {
		return Caps{}, false, fmt.Errorf("%s: %w", exe, err)
	}
	return c, true, nil
}
