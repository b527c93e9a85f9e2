// Package decisionlog appends to capshim's decision log and reads it back.
//
// The log is a JSON-lines file (by default /var/log/capshim/decisions.log)
// that outlives the container and its bundle. One capshim process per
// container start appends to it, so an append takes an exclusive flock on
// the file it writes and happens in one write(2): lines never interleave.
// When the file would grow beyond its size bound, the appender that holds
// the lock renames it to FILE.1 (FILE.1 to FILE.2, ...), so the log as a
// whole stays bounded. Only the holder of the lock on the file that FILE
// names can rotate, and an appender that waited on a file that was renamed
// meanwhile opens FILE again: no line is lost or written to an old file.
//
// The log is root's: its directory must not be a symbolic link or
// writable by anyone but its owner (root, or the user capshim runs as),
// and the file is created with mode 0600, never followed through a link,
// and refused with more than one hard link.
package decisionlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Default bounds: a file of at most MaxSize bytes and Keep rotated ones,
// so the log takes at most (Keep+1) × MaxSize bytes. A decision line is
// about 1 KB (at most 14 KB, as the runtime log's bounds make it), so the
// default holds tens of thousands of container starts.
const (
	MaxSize = 8 << 20
	Keep    = 4
)

// lockWait bounds how long an append waits for another's lock. An append
// under the lock takes microseconds; a holder that is stuck (stopped in a
// debugger) must not stop container starts, so after this an append goes
// ahead without the lock: O_APPEND still keeps the line whole, and only the
// rotation is left to the next append.
const lockWait = 2 * time.Second

// Log is one decision log file and its bounds.
type Log struct {
	Path    string
	MaxSize int64 // MaxSize when 0
	Keep    int   // Keep when 0
}

func (l *Log) maxSize() int64 {
	if l.MaxSize > 0 {
		return l.MaxSize
	}
	return MaxSize
}

func (l *Log) keep() int {
	if l.Keep > 0 {
		return l.Keep
	}
	return Keep
}

// Append writes data (one or more whole lines) at the end of the log,
// rotating it first when data would take it over its bound.
func (l *Log) Append(data []byte) error {
	if err := l.checkDir(); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		f, err := openFile(l.Path, syscall.O_WRONLY|syscall.O_APPEND|syscall.O_CREAT)
		if err != nil {
			return err
		}
		locked := lockFile(f, syscall.LOCK_EX)
		st, err := l.checkFile(f)
		if err != nil {
			f.Close()
			return err
		}
		if locked && !samePath(l.Path, st) && attempt < maxAttempts {
			// Rotated while this process waited: the lines go to the
			// file the path names now. (After maxAttempts, under a storm
			// of starts, they go where they are: one rotation back.)
			f.Close()
			continue
		}
		if locked && st.Size > 0 && st.Size+int64(len(data)) > l.maxSize() && attempt < maxAttempts {
			err := l.rotate()
			f.Close()
			if err != nil {
				return err
			}
			continue
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing the decision log %s: %w", l.Path, err)
		}
		return nil
	}
}

// maxAttempts bounds how often an append opens the log again after it
// found it rotated.
const maxAttempts = 32

// Check reports what would keep an append from writing the log's
// directory, without changing anything: a missing directory is fine when
// its parent exists (the first append creates it).
func (l *Log) Check() error {
	dir := filepath.Dir(l.Path)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if st, err := os.Stat(filepath.Dir(dir)); err != nil || !st.IsDir() {
			return fmt.Errorf("the decision log's directory %s is missing, and so is the directory it would be made in", dir)
		}
		return nil
	}
	return l.checkDirOnly(false)
}

// checkDir creates the log's directory (root-only) when it is missing and
// refuses one that others could change.
func (l *Log) checkDir() error { return l.checkDirOnly(true) }

func (l *Log) checkDirOnly(create bool) error {
	dir := filepath.Dir(l.Path)
	st, err := os.Lstat(dir)
	if create && errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating the decision log's directory %s: %w", dir, err)
		}
		st, err = os.Lstat(dir)
	}
	if err != nil {
		return fmt.Errorf("the decision log's directory: %w", err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("the decision log's directory %s is a symbolic link; make it a directory owned by root with mode 0700, or point the policy's log at one", dir)
	}
	if !st.IsDir() {
		return fmt.Errorf("the decision log's directory %s is not a directory", dir)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if !trustedOwner(sys.Uid) || st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("the decision log's directory %s must be owned by root and writable by nobody else (it is uid %d, mode %04o); fix: chown root %s && chmod 0700 %s",
			dir, sys.Uid, st.Mode().Perm(), dir, dir)
	}
	return nil
}

// trustedOwner is root, or the user capshim runs as (a rootless engine's
// capshim writes a log of its own).
func trustedOwner(uid uint32) bool {
	return uid == 0 || int(uid) == os.Geteuid()
}

// checkFile checks the opened log file and makes it root-only.
func (l *Log) checkFile(f *os.File) (*syscall.Stat_t, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("the decision log %s: %w", l.Path, err)
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return nil, fmt.Errorf("the decision log %s is not a regular file", l.Path)
	case !trustedOwner(st.Uid):
		return nil, fmt.Errorf("the decision log %s is owned by uid %d, not root; remove it, capshim creates it", l.Path, st.Uid)
	case st.Nlink > 1:
		return nil, fmt.Errorf("the decision log %s has %d hard links; remove it, capshim creates it", l.Path, st.Nlink)
	}
	if st.Mode&0o077 != 0 {
		// A log written before it was root-only: what containers are
		// called and run is no one else's to read.
		if err := f.Chmod(0o600); err != nil {
			return nil, fmt.Errorf("the decision log %s: %w", l.Path, err)
		}
	}
	return &st, nil
}

// rotate shifts FILE.(n-1) to FILE.n, ..., FILE to FILE.1. The caller holds
// the lock on the file FILE names, which every rotation needs, so no two
// rotations run at once; the oldest file is replaced by the rename.
func (l *Log) rotate() error {
	for i := l.keep() - 1; i >= 1; i-- {
		if err := os.Rename(rotated(l.Path, i), rotated(l.Path, i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotating the decision log: %w", err)
		}
	}
	if err := os.Rename(l.Path, rotated(l.Path, 1)); err != nil {
		return fmt.Errorf("rotating the decision log: %w", err)
	}
	return nil
}

func rotated(path string, i int) string { return path + "." + strconv.Itoa(i) }

// samePath reports whether path still names the file st describes.
func samePath(path string, st *syscall.Stat_t) bool {
	var now syscall.Stat_t
	return syscall.Lstat(path, &now) == nil && now.Dev == st.Dev && now.Ino == st.Ino
}

// openFile opens path without following a link at its end.
func openFile(path string, flags int) (*os.File, error) {
	fd, err := syscall.Open(path, flags|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("the decision log %s is a symbolic link; remove it, capshim creates the file", path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the decision log %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// lockFile takes a flock of the given kind, waiting at most lockWait, and
// reports whether it has it.
func lockFile(f *os.File, how int) bool {
	deadline := time.Now().Add(lockWait)
	wait := 50 * time.Microsecond
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return true
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return false
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait)
		if wait < 5*time.Millisecond {
			wait *= 2
		}
	}
}

// Open opens the log's files for reading, oldest first (FILE.n, ...,
// FILE.1, FILE), holding a shared lock on FILE while it opens them so that
// no rotation shifts them in between. Missing files are left out. The
// caller closes them.
func (l *Log) Open() ([]*os.File, error) {
	cur, err := openFile(l.Path, syscall.O_RDONLY)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			cur = nil
		} else {
			return nil, err
		}
	}
	if cur != nil {
		lockFile(cur, syscall.LOCK_SH)
	}
	var out []*os.File
	for i := l.keep(); i >= 1; i-- {
		f, err := openFile(rotated(l.Path, i), syscall.O_RDONLY)
		if errors.Is(err, syscall.ENOENT) {
			continue
		}
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			if cur != nil {
				cur.Close()
			}
			return nil, err
		}
		out = append(out, f)
	}
	if cur != nil {
		// Unlocked, the file stays open: lines appended later are read
		// too, and a rotation now renames it without moving what is read.
		syscall.Flock(int(cur.Fd()), syscall.LOCK_UN)
		out = append(out, cur)
	}
	return out, nil
}
