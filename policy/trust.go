package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// CheckTrusted refuses a file that someone other than root could change:
// it must be a regular file owned by root and not writable by group or
// others, and so must be every directory above it (a directory writable by
// others is accepted only with the sticky bit, like /tmp, where others
// cannot replace root's files). Links are followed, and the directories
// holding each link are checked too. With exec, the file must also be
// executable.
func CheckTrusted(path string, exec bool) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s: not an absolute path", path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	st, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	if err := trustedOwner(path, real, st, false); err != nil {
		return err
	}
	if exec && st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s: not executable", path)
	}
	dirs := map[string]bool{}
	for _, p := range []string{filepath.Dir(path), filepath.Dir(real)} {
		for d := p; !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			if err := trustedDir(path, d); err != nil {
				return err
			}
			if d == "/" {
				break
			}
		}
	}
	return nil
}

func trustedDir(path, dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("%s: directory %s: %w", path, dir, unwrapPath(err))
	}
	st, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("%s: directory %s: %w", path, dir, unwrapPath(err))
	}
	return trustedOwner(path, real, st, true)
}

// trustedOwner checks owner and mode of one file or directory.
func trustedOwner(path, what string, st os.FileInfo, dir bool) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: cannot read the owner of %s", path, what)
	}
	kind := "file"
	if dir {
		kind = "directory"
	}
	if sys.Uid != 0 {
		return fmt.Errorf("%s: %s %s is owned by uid %d, not root; anyone with that uid could change what capshim trusts (fix: chown root %s)", path, kind, what, sys.Uid, what)
	}
	if st.Mode().Perm()&0o022 != 0 {
		if dir && st.Mode()&os.ModeSticky != 0 {
			return nil
		}
		return fmt.Errorf("%s: %s %s is writable by group or others (mode %04o); capshim refuses it (fix: chmod go-w %s)", path, kind, what, st.Mode().Perm(), what)
	}
	return nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
