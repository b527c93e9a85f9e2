package runtimefind

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/capshim/capshim/policy"
)

// mkdir makes a fresh directory with the given mode and owner.
func mkdir(t *testing.T, mode os.FileMode, uid int) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, uid, uid); err != nil {
		t.Fatal(err)
	}
	return d
}

// file writes a file with the given mode and returns its path.
func file(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the trust check accepts only root-owned runtimes")
	}
	root := mkdir(t, 0o755, 0)
	root2 := mkdir(t, 0o755, 0)
	users := mkdir(t, 0o755, 65534)
	runc := file(t, root, "runc", 0o755)
	other := file(t, root2, "runc", 0o755)
	plain := file(t, root, "plain", 0o644)
	usersRunc := file(t, users, "runc", 0o755)
	empty := mkdir(t, 0o755, 0)
	selfIs := func(p string) func(*unix.Stat_t) bool { return SameFile(p) }
	never := func(*unix.Stat_t) bool { return false }

	tests := []struct {
		name    string
		runtime string // the policy's runtime
		path    string // PATH
		isSelf  func(*unix.Stat_t) bool
		want    string // the path found, when no error
		onPath  bool
		err     []string // substrings of the error
	}{
		{name: "named", runtime: runc, isSelf: never, want: runc},
		{name: "named missing", runtime: filepath.Join(root, "none"), isSelf: never,
			err: []string{"the runtime named in test.toml", "no such file or directory"}},
		{name: "named not executable", runtime: plain, isSelf: never,
			err: []string{"the runtime " + plain + " named in test.toml is not an executable file"}},
		{name: "named directory", runtime: root, isSelf: never,
			err: []string{"is not an executable file"}},
		{name: "named is capshim", runtime: runc, isSelf: selfIs(runc),
			err: []string{"is capshim itself", "/usr/bin/runc"}},
		{name: "named in a user's directory", runtime: usersRunc, isSelf: never,
			err: []string{"untrusted runtime (named in test.toml)", "owned by uid 65534"}},
		{name: "on PATH", path: empty + ":" + root, isSelf: never, want: runc, onPath: true},
		{name: "relative PATH entries skipped", path: "bin:.:" + root, isSelf: never, want: runc, onPath: true},
		{name: "capshim as runc on PATH skipped", path: root + ":" + root2, isSelf: selfIs(runc), want: other, onPath: true},
		{name: "only capshim on PATH", path: root, isSelf: selfIs(runc),
			err: []string{"no runc found on PATH (other than capshim itself)", "in test.toml"}},
		{name: "untrusted runc on PATH", path: users + ":" + root, isSelf: never,
			err: []string{"untrusted runtime found on PATH", usersRunc}},
		{name: "no runc on PATH", path: empty, isSelf: never,
			err: []string{"no runc found on PATH", `set runtime = "/path/to/runtime" in test.toml`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := Find(&policy.Policy{Runtime: tt.runtime, Source: "test.toml"}, tt.path, tt.isSelf)
			if len(tt.err) > 0 {
				if err == nil {
					rt.File.Close()
					t.Fatalf("found %s, want an error", rt.Path)
				}
				for _, w := range tt.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rt.File.Close()
			if rt.Path != tt.want || rt.OnPath != tt.onPath {
				t.Errorf("found %s (on PATH %v), want %s (%v)", rt.Path, rt.OnPath, tt.want, tt.onPath)
			}
			var st unix.Stat_t
			if err := unix.Fstat(rt.File.Fd, &st); err != nil || !SameFile(tt.want)(&st) {
				t.Errorf("the descriptor is not %s (%v)", tt.want, err)
			}
		})
	}
}

// TestSameFileMissing: a capshim that is not there is nobody.
func TestSameFileMissing(t *testing.T) {
	var st unix.Stat_t
	if SameFile(filepath.Join(t.TempDir(), "none"))(&st) {
		t.Error("a missing file matched")
	}
}
