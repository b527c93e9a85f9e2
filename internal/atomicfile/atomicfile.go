// Package atomicfile replaces files so that a reader, a crash or a power
// cut sees the old content or the new, never a mix and never nothing.
//
// Every file capshim writes goes through it: reduced specs, the policy
// cache, engine configs, learned profiles and container records.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrSymlink is returned when the path to replace is a symbolic link:
// capshim never writes through one, and replacing the link itself would
// silently change what the link's owner meant.
var ErrSymlink = errors.New("is a symbolic link")

// Options say how the new file is made.
type Options struct {
	// Kind names the file in errors ("spec", "daemon.json", "profile").
	Kind string
	// Mode is the new file's mode; with KeepMode the old file's mode wins.
	Mode     fs.FileMode
	KeepMode bool
	// UID and GID own the new file when Chown is set (root only).
	UID, GID int
	Chown    bool
	// NoReplace fails with fs.ErrExist when path exists already.
	NoReplace bool
	// SyncDir also syncs the directory after the rename, so the new name
	// survives a crash. Files that live in tmpfs or die with their
	// container (a bundle's spec) do not need it.
	SyncDir bool
	// NoSync skips syncing the new file's data: for files in tmpfs, where
	// a sync costs time and saves nothing.
	NoSync bool
}

// Write puts data at path: a temporary file is created exclusively in the
// same directory (so the rename stays on one file system), given its mode
// and owner, synced, and renamed over path; with SyncDir the directory is
// synced too. A failure leaves path as it was and no temporary file
// behind.
func Write(path string, data []byte, o Options) (err error) {
	kind := o.Kind
	if kind == "" {
		kind = "file"
	}
	mode := o.Mode
	if st, lerr := os.Lstat(path); lerr == nil {
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s %s: %w; capshim does not write a %s through a link (replace the link with the file)", kind, path, ErrSymlink, kind)
		case !st.Mode().IsRegular():
			return fmt.Errorf("%s %s: not a regular file", kind, path)
		case o.NoReplace:
			return fmt.Errorf("%s %s: %w", kind, path, fs.ErrExist)
		case o.KeepMode:
			mode = st.Mode().Perm()
		}
	} else if !errors.Is(lerr, fs.ErrNotExist) {
		return fmt.Errorf("%s %s: %w", kind, path, lerr)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".capshim-*")
	if err != nil {
		return fmt.Errorf("creating a temporary file next to %s %s: %w", kind, path, err)
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
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", name, err)
	}
	if o.Chown {
		if err = tmp.Chown(o.UID, o.GID); err != nil {
			return fmt.Errorf("setting the owner of %s: %w", name, err)
		}
	}
	if !o.NoSync {
		if err = tmp.Sync(); err != nil {
			return fmt.Errorf("syncing %s: %w", name, err)
		}
	}

	if err = tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", name, err)
	}
	if o.NoReplace {
		// link fails if path appeared meanwhile: never replace a file
		// somebody else just made.
		if err = os.Link(name, path); err != nil {
			return fmt.Errorf("%s %s: %w", kind, path, err)
		}
		os.Remove(name)
	} else if err = os.Rename(name, path); err != nil {
		return fmt.Errorf("replacing %s %s: %w", kind, path, err)
	}
	if o.SyncDir {
		return syncDir(dir)
	}
	return nil
}

// syncDir makes a rename in dir durable. Some file systems cannot sync a
// directory; that is not an error.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// ReadFile reads a small file that capshim keeps or trusts the runtime to
// keep: never through a link, only a regular file, at most max bytes. A
// missing file is an error that errors.Is finds as fs.ErrNotExist.
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > max {
		return nil, fmt.Errorf("%s: not a regular file of at most %d bytes", path, max)
	}
	buf := make([]byte, st.Size())
	if _, err := f.ReadAt(buf, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return buf, nil
}
