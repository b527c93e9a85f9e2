package pinned

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Cgroup is a cgroup of the v2 hierarchy as the program sees it.
type Cgroup struct {
	// ID is what bpf_get_current_cgroup_id returns for a task in it: the
	// inode number of its directory in the v2 hierarchy.
	ID uint64
	// Level is its depth: 0 is the root of the hierarchy.
	Level int
}

// V2Root returns where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup
// on a pure v2 host, /sys/fs/cgroup/unified on a hybrid one, from
// /proc/self/mountinfo. It also returns the hierarchy path of the mount's
// root ("/" unless only a sub-tree is mounted there).
func V2Root() (mountPoint, root string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", fmt.Errorf("finding the cgroup v2 mount: %w", err)
	}
	defer f.Close()
	return parseV2Root(f)
}

// ErrNoCgroupV2 says no cgroup v2 hierarchy is mounted.
var ErrNoCgroupV2 = errors.New("no cgroup v2 hierarchy is mounted")

func parseV2Root(r io.Reader) (mountPoint, root string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mount-point options [optional...] - type source super-options
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) || fields[sep+1] != "cgroup2" {
			continue
		}
		r, mp := UnescapeMount(fields[3]), UnescapeMount(fields[4])
		// The first mount of the whole hierarchy wins; a bind mount of a
		// sub-tree is used only when there is nothing better.
		if mountPoint == "" || (root != "/" && r == "/") {
			mountPoint, root = mp, r
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("finding the cgroup v2 mount: %w", err)
	}
	if mountPoint == "" {
		return "", "", ErrNoCgroupV2
	}
	return mountPoint, root, nil
}

// UnescapeMount undoes mountinfo's octal escapes (\040 for a blank).
func UnescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return true
}

// CgroupByPath returns the cgroup at path, which is either a directory
// below the v2 mount point or a hierarchy path as runc's cgroupsPath and
// the "0::" line of /proc/PID/cgroup give it ("/docker/abc").
func CgroupByPath(path string) (Cgroup, error) {
	mp, root, err := V2Root()
	if err != nil {
		return Cgroup{}, err
	}
	return cgroupAt(mp, root, path)
}

// CgroupID is CgroupByPath(path).ID.
func CgroupID(path string) (uint64, error) {
	cg, err := CgroupByPath(path)
	return cg.ID, err
}

func cgroupAt(mountPoint, root, path string) (Cgroup, error) {
	path = filepath.Clean("/" + path)
	var rel string
	if r, ok := within(mountPoint, path); ok {
		rel = r
	} else if r, ok := within(root, path); ok {
		rel = r
	} else {
		return Cgroup{}, fmt.Errorf("cgroup %s: outside the hierarchy mounted at %s (its %s)", path, mountPoint, root)
	}
	dir := filepath.Join(mountPoint, rel)
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return Cgroup{}, fmt.Errorf("cgroup %s: %w", path, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return Cgroup{}, fmt.Errorf("cgroup %s: %s is not a directory", path, dir)
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(dir, &sfs); err != nil {
		return Cgroup{}, fmt.Errorf("cgroup %s: %w", path, err)
	}
	if sfs.Type != unix.CGROUP2_SUPER_MAGIC {
		return Cgroup{}, fmt.Errorf("cgroup %s: %s is not on the cgroup v2 hierarchy", path, dir)
	}
	return Cgroup{ID: st.Ino, Level: depth(root) + depth(rel)}, nil
}

// within returns path relative to base when path is base or below it.
func within(base, path string) (string, bool) {
	rel, err := filepath.Rel(base, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return rel, true
}

// depth counts the components of a slash-separated path; "/", "" and "."
// have none.
func depth(p string) int {
	n := 0
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			n++
		}
	}
	return n
}

// fileIDKernfs is the file-handle type of kernfs (cgroupfs): its 8 bytes
// are the node id, which for a cgroup is its id.
const fileIDKernfs = 0xfe

// CgroupAlive reports whether a cgroup of that id still exists on the
// host: it opens the directory by file handle (which needs
// CAP_DAC_READ_SEARCH) and falls back to a walk of the hierarchy. An error
// means neither answered, and the caller should keep the entry.
func CgroupAlive(id uint64) (bool, error) {
	l := newLiveness()
	defer l.close()
	return l.alive(id)
}

// liveness answers CgroupAlive for many ids at about the cost of one: the
// hierarchy's mount point is found and opened once (reading mountinfo
// costs more than a handle's open), and where handles cannot tell, the
// hierarchy is walked once for all ids.
type liveness struct {
	mountPoint string
	mfd        int // -1: not open (handles cannot tell)
	dirs       map[uint64]bool
	err        error
}

func newLiveness() *liveness {
	l := &liveness{mfd: -1}
	if l.mountPoint, _, l.err = V2Root(); l.err != nil {
		return l
	}
	if fd, err := unix.Open(l.mountPoint, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		l.mfd = fd
	}
	return l
}

func (l *liveness) close() {
	if l.mfd >= 0 {
		unix.Close(l.mfd)
		l.mfd = -1
	}
}

func (l *liveness) alive(id uint64) (bool, error) {
	if l.err != nil {
		return false, l.err
	}
	if l.mfd >= 0 {
		if ok, err := aliveByHandle(l.mfd, id); err == nil {
			return ok, nil
		}
	}
	if l.dirs == nil {
		dirs, err := dirInodes(l.mountPoint)
		if err != nil {
			return false, err
		}
		l.dirs = dirs
	}
	return l.dirs[id], nil
}

// aliveByHandle opens the cgroup by file handle below the hierarchy's
// mount point mfd; an error means the handle could not tell (no
// CAP_DAC_READ_SEARCH, no handle support).
func aliveByHandle(mfd int, id uint64) (bool, error) {
	h := make([]byte, 8)
	binary.NativeEndian.PutUint64(h, id)
	fd, err := unix.OpenByHandleAt(mfd, unix.NewFileHandle(fileIDKernfs, h), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	switch {
	case err == nil:
		unix.Close(fd)
		return true, nil
	case errors.Is(err, unix.ESTALE), errors.Is(err, unix.ENOENT):
		return false, nil
	}
	return false, fmt.Errorf("opening cgroup %d by handle: %w", id, err)
}

// dirInodes walks the hierarchy below mountPoint and returns the inode
// numbers of its directories, which are the ids of its cgroups.
func dirInodes(mountPoint string) (map[uint64]bool, error) {
	dirs := map[uint64]bool{}
	err := filepath.WalkDir(mountPoint, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == mountPoint {
				return err
			}
			return nil // gone while we walked, or unreadable: not one
		}
		if !d.IsDir() {
			return nil
		}
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil {
			dirs[st.Ino] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walking %s: %w", mountPoint, err)
	}
	return dirs, nil
}
