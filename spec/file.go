package spec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
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
// file behind. rename replaces the directory entry itself, so a link put
// at the path is replaced, never written through.
func (f *File) Replace(data []byte) (err error) {
	dir, base := filepath.Split(f.Path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".capshim-*")
	if err != nil {
		return fmt.Errorf("creating a temporary file next to %s: %w", f.Path, err)
	}
	name := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	if err = tmp.Chmod(f.Mode); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", name, err)
	}
	if os.Geteuid() == 0 {
		if err = tmp.Chown(f.UID, f.GID); err != nil {
			return fmt.Errorf("setting the owner of %s: %w", name, err)
		}
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", name, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", name, err)
	}
	if err = os.Rename(name, f.Path); err != nil {
		return fmt.Errorf("replacing %s: %w", f.Path, err)
	}
	f.Data = data
	return nil
}
