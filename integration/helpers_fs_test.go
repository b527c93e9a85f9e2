//go:build integration

package integration

// File system helpers: short private directories (a unix socket path must
// stay below 108 bytes) whose mounts are released at cleanup, the mount
// table, and the snapshots and listings that show what a command changed
// in a bundle, down to inode, mode and owner.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shortTempDir creates a short private directory under os.TempDir (unix socket
// paths must stay below 108 bytes, so t.TempDir with a long test name is
// not used for daemons). At cleanup it unmounts whatever is still mounted
// below it (reporting it as an error) and removes it.
func shortTempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if left := unmountUnder(dir); len(left) > 0 {
			t.Errorf("mounts left under %s after the engine was stopped (unmounted now): %v", dir, left)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing %s: %v", dir, err)
		}
	})
	return dir
}

// unmountUnder unmounts everything mounted at or below dir (lazily when
// a plain unmount fails) and returns what it found.
func unmountUnder(dir string) []string {
	var found []string
	for pass := 0; pass < 5; pass++ {
		mps := mountsUnder(dir)
		if len(mps) == 0 {
			break
		}
		found = append(found, mps...)
		for _, mp := range mps {
			if err := syscall.Unmount(mp, 0); err != nil {
				_ = syscall.Unmount(mp, syscall.MNT_DETACH)
			}
		}
	}
	return uniq(found)
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// mountsUnder lists the mount points at or below dir, deepest first, from
// /proc/self/mountinfo (octal escapes such as \040 undone).
func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// unescapeMountinfo undoes the octal escapes of a mountinfo field.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// fileSnap is what a file looked like at one moment.
type fileSnap struct {
	exists bool
	link   string // target when the path is a symbolic link
	data   []byte // content (through a link)
	mode   os.FileMode
	uid    uint32
	gid    uint32
	ino    uint64
	mtime  time.Time
}

// snapshot records path without following a link at it (and its
// content through the link).
func snapshot(t *testing.T, path string) fileSnap {
	t.Helper()
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fileSnap{}
	}
	if err != nil {
		t.Fatal(err)
	}
	s := fileSnap{exists: true, mode: st.Mode(), mtime: st.ModTime()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		s.uid, s.gid, s.ino = sys.Uid, sys.Gid, sys.Ino
	}
	if st.Mode()&os.ModeSymlink != 0 {
		if s.link, err = os.Readlink(path); err != nil {
			t.Fatal(err)
		}
	}
	if st.Mode().IsRegular() || s.link != "" {
		s.data, _ = os.ReadFile(path)
	}
	return s
}

// listing lists every entry under dir (dir itself as ".") with its
// type, mode and owner, and for regular files other than the top-level
// config.json their size and SHA-256 too.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		var uid, gid uint32
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid, gid = sys.Uid, sys.Gid
		}
		v := fmt.Sprintf("%v %d:%d", st.Mode(), uid, gid)
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			v += " -> " + l
		case st.Mode().IsRegular() && rel != "config.json":
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %d %x", len(data), sha256.Sum256(data))
		}
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	return out
}

// diffListing describes how two listings differ ("" when equal).
func diffListing(before, after map[string]string) string {
	var b strings.Builder
	for k, v := range before {
		if w, ok := after[k]; !ok {
			fmt.Fprintf(&b, "removed: %s (%s)\n", k, v)
		} else if w != v {
			fmt.Fprintf(&b, "changed: %s: %s -> %s\n", k, v, w)
		}
	}
	for k, v := range after {
		if _, ok := before[k]; !ok {
			fmt.Fprintf(&b, "added: %s (%s)\n", k, v)
		}
	}
	return b.String()
}

// capshimTempFiles returns the paths under dir that look like capshim's
// temporary spec files.
func capshimTempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), ".capshim-") {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	return found
}

// runtimeCopy copies the real runc to a fresh directory of mode dirMode
// as a file of mode and owner uid, and returns its path.
func runtimeCopy(t *testing.T, mode os.FileMode, uid int, dirMode os.FileMode) string {
	t.Helper()
	real, err := filepath.EvalSymlinks(runcPath)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(newDir(t, dirMode), "runc")
	copyFile(t, real, p, mode)
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // chown clears set-id bits only, but be exact
		t.Fatal(err)
	}
	return p
}

// removeNewCgroupParent registers a cleanup that removes the cgroup
// directory name, an engine's default cgroup parent (dockerd's "docker",
// Podman's "libpod_parent"), from every hierarchy in which it did not
// exist yet, once the engine has removed its containers' cgroups below it.
// Register it before the engine starts, so that it runs after the engine
// stopped.
func removeNewCgroupParent(t *testing.T, name string) {
	t.Helper()
	existed := map[string]bool{}
	for _, d := range cgroupParentDirs(name) {
		existed[d] = true
	}
	t.Cleanup(func() {
		for _, d := range cgroupParentDirs(name) {
			if existed[d] {
				continue
			}
			// rmdir removes only an empty cgroup.
			for _, c := range dirsDeepestFirst(d) {
				if err := syscall.Rmdir(c); err != nil {
					t.Logf("removing the cgroup %s the engine left: %v", c, err)
				}
			}
		}
	})
}

// cgroupParentDirs lists the cgroup directories called name right below
// the root of every mounted hierarchy.
func cgroupParentDirs(name string) []string {
	cands, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", name))
	cands = append(cands, filepath.Join("/sys/fs/cgroup", name))
	var dirs []string
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			dirs = append(dirs, c)
		}
	}
	return dirs
}

// dirsDeepestFirst lists dir and the directories below it, each after
// those inside it: the order in which rmdir can remove them.
func dirsDeepestFirst(dir string) []string {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	slices.Reverse(dirs)
	return dirs
}
