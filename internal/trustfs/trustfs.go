// Package trustfs opens a file that only root can have chosen, so that
// what was checked is what gets used.
//
// capshim runs as root on every container start and reads a policy and
// executes a runtime named by path. Checking a path and then opening it
// again by the same path leaves a window in which anyone who can change
// what the path names (a link in /tmp, a directory of theirs somewhere in a
// chain of links) swaps the checked file for one of their own. Open closes
// that window: it walks the path one component at a time from a descriptor
// of "/", opens each component with O_NOFOLLOW relative to the directory
// already checked, checks the opened descriptor, and follows a symbolic
// link only after checking the link itself. The caller gets the descriptor
// of the final file and reads or executes that, never the path again.
//
// The rule, for every object on the way (including every link of a chain
// and everything that leads to it):
//
//   - a directory is owned by root and not writable by group or others,
//     unless it has the sticky bit (like /tmp: others may add names there
//     but cannot remove or rename root's);
//   - a symbolic link is owned by root (the owner of a link chooses where
//     it points);
//   - the final file is a regular file owned by root and not writable by
//     group or others (and executable, for Exec);
//   - in a directory others can write to, a file or link has no second
//     hard link: anyone there could have linked a root-owned file of their
//     choosing under that name.
//
// Open never lets the kernel follow a link, so the result does not depend
// on fs.protected_symlinks.
package trustfs

import (
	"errors"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Mode says what the caller does with the file Open returns.
type Mode uint8

const (
	// Regular asks for a regular file, opened with O_PATH: enough to
	// learn its identity, nothing is read.
	Regular Mode = iota
	// Read asks for a regular file, opened for reading.
	Read
	// Exec asks for a regular file with an execute bit, opened with
	// O_PATH; execveat(fd, "", AT_EMPTY_PATH) runs it.
	Exec
	// Dir asks for a directory, opened with O_PATH, to be used as the
	// directory of openat, mkdirat, renameat.
	Dir

	kindMask Mode = 3

	// NoLinks, combined with one of the above, refuses every symbolic
	// link on the way, root's included.
	NoLinks Mode = 1 << 2
)

// maxLinks bounds the links one Open follows, as the kernel does.
const maxLinks = 40

// Errors that Error wraps (besides errnos such as ENOENT, ENOTDIR and
// ELOOP, which errors.Is also finds: errors.Is(err, fs.ErrNotExist)).
var (
	// ErrUntrusted: something on the way could have been chosen by
	// someone other than root.
	ErrUntrusted = errors.New("untrusted")
	// ErrNotRegular: the final object is not a regular file (or, for
	// Dir, not a directory).
	ErrNotRegular = errors.New("not a regular file")
	// ErrNotExecutable: for Exec, the file has no execute bit.
	ErrNotExecutable = errors.New("not executable")
)

// Error is a path Open refuses.
type Error struct {
	Path string // as given to Open
	Err  error  // one of the Err values above, or an errno
	Msg  string // names the object at fault, what is wrong, and the fix
	// Dangling is set with ENOENT when the path itself exists but ends in
	// a symbolic link whose target does not.
	Dangling bool
}

func (e *Error) Error() string { return e.Path + ": " + e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// File is what Open opened.
type File struct {
	Fd   int         // close-on-exec; -1 when Open failed
	Stat unix.Stat_t // fstat of Fd; when Open failed, of the final object if Found
	// Found reports that the final object was reached. With an
	// ErrUntrusted error, Stat says what it is, so a caller can still tell
	// (for a message, or to skip it) what the path named.
	Found bool
}

// Close closes the descriptor, once.
func (f *File) Close() {
	if f.Fd >= 0 {
		unix.Close(f.Fd)
		f.Fd = -1
	}
}

// dirEnt is one directory of the walk: an O_PATH descriptor, checked.
type dirEnt struct {
	fd   int
	mode uint32 // st_mode
	name string // the component that named it; "" for "/"
}

// walker holds one Open's state.
type walker struct {
	path string
	mode Mode
	// The directories from "/" down to the current one: the first ones
	// in dirs (inline, so that a walk allocates nothing for them), the
	// rest, on unusually deep paths, in deep.
	dirs  [16]dirEnt
	deep  []dirEnt
	depth int
	links int
	bad   *Error // the first trust failure; see Open
	atEnd bool   // a link that ended the path was followed
}

// Open resolves the absolute path and returns the final object opened as
// mode asks, checked by the rule of the package comment.
//
// After a trust failure Open still finishes the walk (opening with O_PATH
// only, reading nothing), so that a path naming nothing is reported as
// not found (errors.Is(err, fs.ErrNotExist)) rather than untrusted: a
// missing file is never used, whoever could create it. Errors are
// *Error.
func Open(path string, mode Mode) (File, error) {
	f := File{Fd: -1}
	if path == "" || path[0] != '/' {
		return f, &Error{Path: path, Err: unix.EINVAL, Msg: "not an absolute path"}
	}
	w := walker{path: path, mode: mode}
	defer w.closeAll()

	r, err := openRoot()
	if err != nil {
		return f, w.errno(err, "/")
	}
	st := r.st
	w.push(dirEnt{fd: r.fd, mode: st.Mode})
	w.checkDir(&st, "")

	rest := path
	for {
		var name string
		name, rest = next(rest)
		if name == "" {
			// The path ends in a directory already on the stack ("/",
			// or a trailing ".."): that directory is the final object.
			return w.finishDir(&f)
		}
		if name == ".." {
			// The parent is the directory below on the stack: the one
			// the walk came through, already checked (".." at "/"
			// stays at "/", as in the kernel).
			if w.depth > 1 {
				w.pop()
			}
			continue
		}
		last := !more(rest)
		dir := w.top()
		flags := unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if last && w.mode&kindMask == Read && w.bad == nil {
			// Read the final file through the descriptor that is
			// checked. O_NONBLOCK: a FIFO must not hang the open (it is
			// refused below); O_NOCTTY: a terminal must not become ours.
			flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC
		}
		fd, err := w.open(dir.fd, name, flags, &st)
		if err != nil {
			return f, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, err := w.readLink(fd, name, &st, last)
			unix.Close(fd)
			if err != nil {
				return f, err
			}
			if target[0] == '/' {
				w.toRoot()
			}
			if more(rest) {
				rest = target + rest // rest starts with "/"
			} else {
				rest = target
			}
		case unix.S_IFDIR:
			if last && w.mode&kindMask == Dir {
				w.checkDir(&st, name)
				return w.finish(&f, fd, &st, nil)
			}
			if last {
				return w.finish(&f, fd, &st, w.notRegular(name, &st))
			}
			w.checkDir(&st, name)
			w.push(dirEnt{fd: fd, mode: st.Mode, name: name})
		default:
			if !last {
				unix.Close(fd)
				return f, &Error{Path: w.path, Err: unix.ENOTDIR, Msg: w.join(name) + " is not a directory, but the path goes on below it"}
			}
			return w.finish(&f, fd, &st, w.checkFile(&st, name))
		}
	}
}

// open opens name in dirfd with flags and fstats it into st. With read
// flags, a link makes openat fail with ELOOP; the link itself is then
// opened with O_PATH to be checked and followed. Should the name stop
// being a link in between (only someone who may write the directory can
// do that), the read open is tried again, so that Read always gets a
// readable descriptor.
func (w *walker) open(dirfd int, name string, flags int, st *unix.Stat_t) (int, error) {
	for try := 0; ; try++ {
		fd, err := openat(dirfd, name, flags)
		fallback := err == unix.ELOOP && flags&unix.O_PATH == 0
		if fallback {
			fd, err = openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC)
		}
		if err != nil {
			return -1, w.errno(err, w.join(name))
		}
		if err := unix.Fstat(fd, st); err != nil {
			unix.Close(fd)
			return -1, w.errno(err, w.join(name))
		}
		if !fallback || st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return fd, nil
		}
		unix.Close(fd)
		if try == 8 {
			return -1, &Error{Path: w.path, Err: unix.EAGAIN, Msg: w.join(name) + " keeps changing between a link and a file while it is opened"}
		}
	}
}

// finish ends a walk that reached its final object, open as fd: a type
// error (err) wins, then the first trust failure.
func (w *walker) finish(f *File, fd int, st *unix.Stat_t, err *Error) (File, error) {
	f.Found, f.Stat = true, *st
	if err == nil {
		err = w.bad
	}
	if err != nil {
		unix.Close(fd)
		return *f, err
	}
	f.Fd = fd
	return *f, nil
}

// finishDir ends a walk whose final object is the directory on top of the
// stack.
func (w *walker) finishDir(f *File) (File, error) {
	fd, err := unix.FcntlInt(uintptr(w.top().fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return *f, w.errno(err, w.join(""))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return *f, w.errno(err, w.join(""))
	}
	if w.mode&kindMask != Dir {
		return w.finish(f, fd, &st, w.notRegular("", &st))
	}
	return w.finish(f, fd, &st, nil)
}

// longLink is the buffer size for a link target that the first read did
// not hold. A variable, not a constant: Go puts a buffer of constant size
// on the stack, and this one belongs on the heap (see readLink).
var longLink = unix.PathMax

// readLink checks the link open as fd (named name in the directory on top
// of the stack) and returns its target.
func (w *walker) readLink(fd int, name string, st *unix.Stat_t, last bool) (string, error) {
	if w.mode&NoLinks != 0 {
		return "", &Error{Path: w.path, Err: ErrUntrusted, Msg: "symbolic link " + w.join(name) + ": no link is accepted on this path (replace it with what it points to)"}
	}
	w.links++
	if w.links > maxLinks {
		return "", &Error{Path: w.path, Err: unix.ELOOP, Msg: "more than " + strconv.Itoa(maxLinks) + " symbolic links on the way (is there a loop? the last one is " + w.join(name) + ")"}
	}
	// Most targets are short: a small buffer first, a full one only
	// when it does not fit (the descriptor is the link itself, whose
	// target never changes, so the second read sees the same target). A
	// PATH_MAX buffer in the walker would sit on the stack and make
	// every walk grow it.
	var small [128]byte
	buf := small[:]
	n, err := unix.Readlinkat(fd, "", buf)
	if err == nil && n >= len(buf) {
		buf = make([]byte, longLink)
		n, err = unix.Readlinkat(fd, "", buf)
	}
	if err != nil {
		return "", w.errno(err, w.join(name))
	}
	if n == 0 || n >= len(buf) {
		return "", &Error{Path: w.path, Err: unix.ENAMETOOLONG, Msg: "symbolic link " + w.join(name) + " has an empty or overlong target"}
	}
	target := string(buf[:n])
	if !trustedOwner(st.Uid) {
		w.untrusted("symbolic link " + w.join(name) + " (-> " + target + ") is owned by uid " + utoa(st.Uid) +
			", not root" + self() + "; that user chooses where it points (fix: replace it with a link owned by root, or name the file itself)")
	} else {
		w.checkLinks(st, "symbolic link", name)
	}
	if last {
		w.atEnd = true
	}
	return target, nil
}

// checkDir applies the directory rule to the directory name in the
// directory on top of the stack ("" for "/" itself).
func (w *walker) checkDir(st *unix.Stat_t, name string) {
	switch {
	case !trustedOwner(st.Uid):
		obj := w.join(name)
		w.untrusted("directory " + obj + " is owned by uid " + utoa(st.Uid) +
			", not root" + self() + "; anyone with that uid could change what it holds (fix: chown root " + obj + ")")
	case st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
		obj := w.join(name)
		w.untrusted("directory " + obj + " is writable by group or others (mode " + mode(st.Mode) +
			") and has no sticky bit; anyone could replace what it holds (fix: chmod go-w " + obj + ")")
	}
}

// checkFile applies the file rule to the final object name; a type error
// is returned, a trust failure recorded.
func (w *walker) checkFile(st *unix.Stat_t, name string) *Error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG || w.mode&kindMask == Dir {
		return w.notRegular(name, st)
	}
	if w.mode&kindMask == Exec && st.Mode&0o111 == 0 {
		return &Error{Path: w.path, Err: ErrNotExecutable, Msg: "file " + w.join(name) + " is not executable (mode " + mode(st.Mode) + ")"}
	}
	switch {
	case !trustedOwner(st.Uid):
		obj := w.join(name)
		w.untrusted("file " + obj + " is owned by uid " + utoa(st.Uid) +
			", not root" + self() + "; anyone with that uid could change it (fix: chown root " + obj + ")")
	case st.Mode&0o022 != 0:
		obj := w.join(name)
		w.untrusted("file " + obj + " is writable by group or others (mode " + mode(st.Mode) +
			"); anyone could change it (fix: chmod go-w " + obj + ")")
	default:
		w.checkLinks(st, "file", name)
	}
	return nil
}

// checkLinks refuses a second hard link to name in the directory on top
// of the stack when others can write to that directory.
func (w *walker) checkLinks(st *unix.Stat_t, what, name string) {
	if st.Nlink > 1 && w.top().mode&0o022 != 0 {
		w.untrusted(what + " " + w.join(name) + " has " + strconv.FormatUint(uint64(st.Nlink), 10) + " hard links and is in directory " + w.join("") +
			", which others can write to; anyone there can link a root-owned file under this name (fix: keep it in a directory only root can write)")
	}
}

// notRegular is the type error for the final object name.
func (w *walker) notRegular(name string, st *unix.Stat_t) *Error {
	if w.mode&kindMask == Dir {
		return &Error{Path: w.path, Err: unix.ENOTDIR, Msg: w.join(name) + " is not a directory (it is " + kind(st.Mode) + ")"}
	}
	return &Error{Path: w.path, Err: ErrNotRegular, Msg: w.join(name) + " is not a regular file (it is " + kind(st.Mode) + ")"}
}

// untrusted records the first trust failure; the walk goes on.
func (w *walker) untrusted(msg string) {
	if w.bad == nil {
		w.bad = &Error{Path: w.path, Err: ErrUntrusted, Msg: msg}
	}
}

// errno turns a failed system call on obj into an *Error.
func (w *walker) errno(err error, obj string) error {
	e := &Error{Path: w.path, Err: err}
	switch {
	case err == unix.ENOENT && w.atEnd:
		e.Dangling = true
		e.Msg = "no such file or directory: it is a symbolic link, and " + obj + " does not exist"
	case err == unix.ENOENT && obj != w.path:
		e.Msg = "no such file or directory: " + obj + " does not exist"
	case obj == w.path:
		e.Msg = err.Error()
	default:
		e.Msg = obj + ": " + err.Error()
	}
	return e
}

// at returns the i-th directory of the walk, 0 being "/".
func (w *walker) at(i int) *dirEnt {
	if i < len(w.dirs) {
		return &w.dirs[i]
	}
	return &w.deep[i-len(w.dirs)]
}

func (w *walker) top() *dirEnt { return w.at(w.depth - 1) }

func (w *walker) push(d dirEnt) {
	if w.depth < len(w.dirs) {
		w.dirs[w.depth] = d
	} else {
		w.deep = append(w.deep, d)
	}
	w.depth++
}

// pop closes the current directory and returns to its parent.
func (w *walker) pop() {
	unix.Close(w.top().fd)
	w.depth--
	if w.depth >= len(w.dirs) {
		w.deep = w.deep[:w.depth-len(w.dirs)]
	}
}

// toRoot drops every directory but "/": an absolute link target starts
// there again.
func (w *walker) toRoot() {
	for w.depth > 1 {
		w.pop()
	}
}

// closeAll closes every directory of the walk but the shared "/".
func (w *walker) closeAll() {
	for w.depth > 1 {
		w.pop()
	}
}

// rootDir is "/", opened once per process: capshim resolves three paths
// per call (policy, cache, runtime), and "/" is the same for all of them.
// The descriptor is close-on-exec, so it does not outlive capshim.
type rootDir struct {
	once sync.Once
	fd   int
	st   unix.Stat_t
	err  error
}

var root rootDir

func openRoot() (*rootDir, error) {
	root.once.Do(func() {
		root.fd, root.err = unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if root.err == nil {
			if root.err = unix.Fstat(root.fd, &root.st); root.err != nil {
				unix.Close(root.fd)
			}
		}
	})
	return &root, root.err
}

// join names the object name in the current directory, for messages.
func (w *walker) join(name string) string {
	n := 0
	for i := 1; i < w.depth; i++ {
		n += 1 + len(w.at(i).name)
	}
	b := make([]byte, 0, n+1+len(name))
	for i := 1; i < w.depth; i++ {
		b = append(b, '/')
		b = append(b, w.at(i).name...)
	}
	if name != "" || len(b) == 0 {
		b = append(b, '/')
		b = append(b, name...)
	}
	return string(b)
}

// next returns the first component of p that is not empty or "." and what
// follows it.
func next(p string) (name, rest string) {
	for {
		for len(p) > 0 && p[0] == '/' {
			p = p[1:]
		}
		if p == "" {
			return "", ""
		}
		i := 0
		for i < len(p) && p[i] != '/' {
			i++
		}
		if name, p = p[:i], p[i:]; name != "." {
			return name, p
		}
	}
}

// more reports whether p holds another component.
func more(p string) bool {
	name, _ := next(p)
	return name != ""
}

// openat retries on EINTR (a signal during the open of a FIFO or a slow
// file system).
func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// euid is the user capshim runs as. Besides root, that user may own what
// capshim trusts: a rootless engine runs capshim as the user, and a file
// that user can change can only hurt that user's own containers. As root,
// only root counts.
var euid = uint32(os.Geteuid())

func trustedOwner(uid uint32) bool { return uid == 0 || uid == euid }

// self names the second trusted owner in messages, when there is one.
func self() string {
	if euid == 0 {
		return ""
	}
	return " or uid " + utoa(euid) + " (capshim's own user)"
}

func utoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// mode formats permission bits as chmod takes them: 0644, 1777.
func mode(m uint32) string {
	s := strconv.FormatUint(uint64(m&0o7777), 8)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

// kind names a file type.
func kind(m uint32) string {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return "a regular file"
}
