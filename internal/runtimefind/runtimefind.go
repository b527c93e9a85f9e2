// Package runtimefind finds the real OCI runtime behind capshim: the one
// the policy names, or else the first runc on PATH that is not capshim
// itself, opened and checked with trustfs. The capshim binary runs what
// it finds on every runtime call; capshim's commands (policy check,
// version) use the same lookup to say which runtime that would be, so the
// answer and its messages cannot drift apart from what the runtime does.
//
// It is on the path of every container start: it imports nothing beyond
// what the capshim binary already links.
package runtimefind

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/capshim/capshim/internal/trustfs"
	"github.com/capshim/capshim/policy"
)

// DefaultPath is searched for runc when the caller has no PATH.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Runtime is the runtime found: the path it was found by, which stays
// argv[0] when it runs, and the descriptor that passed the trust check,
// which is what a caller runs.
type Runtime struct {
	Path string
	File trustfs.File
	// OnPath: found on PATH, not named by the policy.
	OnPath bool
}

// Find returns the policy's runtime, or the first runc in the directories
// of path (a PATH value; "" means DefaultPath) that isSelf does not call
// capshim itself. capshim never runs itself: a policy naming it is an
// error, and such a runc on PATH is skipped. The caller closes
// Runtime.File.
func Find(pol *policy.Policy, path string, isSelf func(*unix.Stat_t) bool) (Runtime, error) {
	if pol.Runtime != "" {
		f, err := trustfs.Open(pol.Runtime, trustfs.Exec)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return Runtime{}, fmt.Errorf("the runtime named in %s: %w", pol.Source, err)
		case errors.Is(err, trustfs.ErrNotRegular), errors.Is(err, trustfs.ErrNotExecutable):
			return Runtime{}, fmt.Errorf("the runtime %s named in %s is not an executable file: %w", pol.Runtime, pol.Source, err)
		case f.Found && isSelf(&f.Stat):
			f.Close()
			return Runtime{}, fmt.Errorf("the runtime %s named in %s is capshim itself; name the real runtime, e.g. /usr/bin/runc", pol.Runtime, pol.Source)
		case errors.Is(err, trustfs.ErrUntrusted):
			return Runtime{}, fmt.Errorf("untrusted runtime (named in %s): %w", pol.Source, err)
		case err != nil:
			return Runtime{}, fmt.Errorf("the runtime named in %s: %w", pol.Source, err)
		}
		return Runtime{Path: pol.Runtime, File: f}, nil
	}
	if path == "" {
		// Some callers (Podman's cleanup through conmon) give the runtime
		// no PATH at all: use the usual system directories.
		path = DefaultPath
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // a relative PATH entry would depend on the bundle
		}
		p := filepath.Join(dir, "runc")
		// One stat skips a directory without runc cheaply. It decides
		// nothing else: what it finds is opened and checked below.
		var st syscall.Stat_t
		if syscall.Stat(p, &st) != nil {
			continue
		}
		f, err := trustfs.Open(p, trustfs.Exec)
		switch {
		case errors.Is(err, trustfs.ErrUntrusted) && !(f.Found && isSelf(&f.Stat)):
			return Runtime{}, fmt.Errorf("untrusted runtime found on PATH: %w", err)
		case err != nil:
			continue // gone, not a file, not executable: not a runc
		case isSelf(&f.Stat):
			f.Close()
			continue
		}
		return Runtime{Path: p, File: f, OnPath: true}, nil
	}
	return Runtime{}, fmt.Errorf("no runc found on PATH (other than capshim itself); install runc or set runtime = \"/path/to/runtime\" in %s", pol.Source)
}

// SameFile returns an isSelf for Find that matches the file at path (by
// device and inode), or nothing when path cannot be read: capshim's
// commands pass the capshim binary next to them, the one that would run
// the runtime.
func SameFile(path string) func(*unix.Stat_t) bool {
	var me unix.Stat_t
	if unix.Stat(path, &me) != nil {
		return func(*unix.Stat_t) bool { return false }
	}
	return func(st *unix.Stat_t) bool { return st.Dev == me.Dev && st.Ino == me.Ino }
}
