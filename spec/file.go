package spec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/capshim/capshim/internal/atomicfile"
)

// MaxSize is the largest spec capshim reads. Real specs are a few KB; a
// larger file is refused instead of being read into memory.
const MaxSize = 64 << 20

// ErrSymlink is returned for a spec path that is a symbolic link: capshim
// never writes through a link.
var ErrSymlink = errors.New("is a symbolic link; capshim does not read or write specs through links")

// File is a spec file read from disk, with what is needed to replace it.
type File struct {
	Path string
	Data []byte
	Mode os.FileMode
	UID  int
	GID  int
}

// ReadFile reads a spec file without following a symbolic link at path
// and without reading more than MaxSize bytes.
func ReadFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s %w", path, ErrSymlink)
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > MaxSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d capshim reads", path, st.Size(), MaxSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s is more than the %d bytes capshim reads", path, MaxSize)
	}
	out := &File{Path: path, Data: data, Mode: st.Mode().Perm()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		out.UID, out.GID = int(sys.Uid), int(sys.Gid)
	}
	return out, nil
}

// Replace writes data over the file atomically: a new file is created
// exclusively next to it, given the old file's mode and owner, synced, and
// renamed over the old name. A reader sees the old or the new content,
// never a mix; a failure leaves the old file as it was and no temporary
// file behind. A link put at the path meanwhile is refused, never written
// through.
func (f *File) Replace(data []byte) error {
	err := atomicfile.Write(f.Path, data, atomicfile.Options{
		Kind: "spec", Mode: f.Mode,
		UID: f.UID, GID: f.GID, Chown: os.Geteuid() == 0,
	})
	if err != nil {
		return err
	}
	f.Data = data
	return nil
}
