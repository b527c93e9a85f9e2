package trustfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// user is the uid that owns what an unprivileged user places.
const user = 65534

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create files owned by root and by another user")
	}
}

// setProtectedSymlinks sets fs.protected_symlinks for the test and puts
// the old value back when it ends.
func setProtectedSymlinks(t *testing.T, v string) {
	t.Helper()
	const p = "/proc/sys/fs/protected_symlinks"
	old, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("cannot read %s: %v", p, err)
	}
	if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
		t.Skipf("cannot set %s: %v", p, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(p, old, 0o644); err != nil {
			t.Errorf("restoring %s to %q: %v", p, strings.TrimSpace(string(old)), err)
		}
	})
}

// tree builds test files below a root-owned 0755 directory.
type tree struct {
	t    *testing.T
	base string
}

func newTree(t *testing.T) *tree {
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	return &tree{t: t, base: base}
}

func (tr *tree) p(rel string) string { return filepath.Join(tr.base, rel) }

func (tr *tree) dir(rel string, mode os.FileMode, uid int) string {
	p := tr.p(rel)
	if err := os.MkdirAll(p, 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Chown(p, uid, uid); err != nil {
		tr.t.Fatal(err)
	}
	return p
}

func (tr *tree) file(rel, data string, mode os.FileMode, uid int) string {
	p := tr.p(rel)
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Chown(p, uid, uid); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		tr.t.Fatal(err)
	}
	return p
}

func (tr *tree) link(target, rel string, uid int) string {
	p := tr.p(rel)
	if err := os.Symlink(target, p); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Lchown(p, uid, uid); err != nil {
		tr.t.Fatal(err)
	}
	return p
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestOpen(t *testing.T) {
	requireRoot(t)
	tr := newTree(t)
	tr.dir("etc", 0o755, 0)
	good := tr.file("etc/shim.toml", "good\n", 0o644, 0)
	tr.file("etc/group-writable.toml", "x", 0o664, 0)
	tr.file("etc/world-writable.toml", "x", 0o666, 0)
	tr.file("etc/users.toml", "x", 0o644, user)
	tr.file("etc/zero.toml", "x", 0o000, 0)
	exe := tr.file("etc/runc", "#!/bin/sh\n", 0o755, 0)
	tr.file("etc/noexec", "x", 0o644, 0)
	if err := syscall.Mkfifo(tr.p("etc/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr.link(good, "etc/abs-link", 0)
	tr.link("shim.toml", "etc/rel-link", 0)
	tr.link("../etc/./shim.toml", "etc/dotdot-link", 0)
	tr.link("rel-link", "etc/chain-link", 0)
	tr.link("/dev/null", "etc/null-link", 0)
	tr.link(tr.p("etc/gone.toml"), "etc/dangling", 0)
	tr.link("loop-b", "etc/loop-a", 0)
	tr.link("loop-a", "etc/loop-b", 0)
	tr.link("self", "etc/self", 0)
	tr.link(tr.base, "etc/up", 0) // a link to a directory, to walk through
	// Targets longer than the first read buffer: a few hundred bytes, and
	// one that only a PATH_MAX buffer holds ("./" repeated resolves to the
	// same file).
	tr.link(strings.Repeat("./", 150)+"shim.toml", "etc/long-link", 0)
	tr.link(strings.Repeat("./", 2000)+"shim.toml", "etc/longest-link", 0)

	// A root-owned sticky directory, like /tmp: others can add names.
	tr.dir("sticky", 0o777|os.ModeSticky, 0)
	tr.link(good, "sticky/users-link", user)
	tr.link(good, "sticky/roots-link", 0)
	tr.file("sticky/shim.toml", "x", 0o644, 0)
	if err := os.Link(good, tr.p("sticky/hard.toml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(tr.p("etc/abs-link"), tr.p("sticky/hard-link")); err != nil {
		t.Fatal(err)
	}
	tr.dir("users-sticky", 0o777|os.ModeSticky, user)
	tr.file("users-sticky/shim.toml", "x", 0o644, 0)

	// Two hops: a root-owned link in a root directory points at a second
	// link in a directory others can write to, or in a user's directory.
	tr.dir("open", 0o777, 0)
	tr.link(good, "open/hop2", 0)
	tr.link(tr.p("open/hop2"), "etc/two-hop-open", 0)
	tr.dir("home", 0o755, user)
	tr.link(good, "home/hop2", user)
	tr.link(tr.p("home/hop2"), "etc/two-hop-home", 0)
	tr.link(good, "home/roots-hop2", 0)
	tr.link(tr.p("home/roots-hop2"), "etc/two-hop-home-roots-link", 0)
	// A link into a directory others can write to, and a root file there.
	tr.file("open/shim.toml", "x", 0o644, 0)
	tr.link(tr.p("open/shim.toml"), "etc/into-open", 0)
	if err := os.Link(good, tr.p("etc/hard.toml")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		path    string
		mode    Mode
		same    string // the object the descriptor must be (default: the path)
		want    string // substring of the error; "" means accepted
		wantErr error  // errors.Is target for a refusal
	}{
		{name: "root-owned file", path: good, mode: Read},
		{name: "root-owned file mode 0000", path: tr.p("etc/zero.toml"), mode: Read},
		{name: "absolute root-owned link", path: tr.p("etc/abs-link"), mode: Read, same: good},
		{name: "relative root-owned link", path: tr.p("etc/rel-link"), mode: Read, same: good},
		{name: "relative link with ..", path: tr.p("etc/dotdot-link"), mode: Read, same: good},
		{name: "chain of root-owned links", path: tr.p("etc/chain-link"), mode: Read, same: good},
		{name: "link with a long target", path: tr.p("etc/long-link"), mode: Read, same: good},
		{name: "link with a target near PATH_MAX", path: tr.p("etc/longest-link"), mode: Read, same: good},
		{name: "dot-dot and dot in the path", path: tr.base + "/etc/../etc/./shim.toml", mode: Read, same: good},
		{name: "through a link to a directory", path: tr.p("etc/up/etc/shim.toml"), mode: Read, same: good},
		{name: "dot-dot above the root stays at the root", path: "/../../" + strings.TrimPrefix(good, "/"), mode: Read, same: good},
		{name: "root-owned link in a sticky directory", path: tr.p("sticky/roots-link"), mode: Read, same: good},
		{name: "root-owned file in a sticky directory", path: tr.p("sticky/shim.toml"), mode: Read},
		{name: "second hard link in a root directory", path: tr.p("etc/hard.toml"), mode: Read},
		{name: "executable", path: exe, mode: Exec},
		{name: "identity only", path: good, mode: Regular},
		{name: "directory", path: tr.p("etc"), mode: Dir},
		{name: "sticky directory", path: tr.p("sticky"), mode: Dir},
		{name: "the root directory", path: "/", mode: Dir},
		{name: "directory named by a trailing ..", path: tr.base + "/etc/..", mode: Dir, same: tr.base},
		{name: "real runc through /usr/bin", path: "/usr/bin/runc", mode: Exec},

		{name: "user-owned link in a sticky directory", path: tr.p("sticky/users-link"), mode: Read,
			want: "symbolic link " + tr.p("sticky/users-link") + " (-> " + good + ") is owned by uid 65534", wantErr: ErrUntrusted},
		{name: "two hops through a directory others can write", path: tr.p("etc/two-hop-open"), mode: Read,
			want: "directory " + tr.p("open") + " is writable by group or others (mode 0777)", wantErr: ErrUntrusted},
		{name: "two hops through a user's directory", path: tr.p("etc/two-hop-home"), mode: Read,
			want: "directory " + tr.p("home") + " is owned by uid 65534", wantErr: ErrUntrusted},
		{name: "two hops, root-owned second link in a user's directory", path: tr.p("etc/two-hop-home-roots-link"), mode: Read,
			want: "directory " + tr.p("home") + " is owned by uid 65534", wantErr: ErrUntrusted},
		{name: "link into a directory others can write", path: tr.p("etc/into-open"), mode: Read,
			want: "directory " + tr.p("open") + " is writable", wantErr: ErrUntrusted},
		{name: "hard link to a root file in a sticky directory", path: tr.p("sticky/hard.toml"), mode: Read,
			want: "has 3 hard links", wantErr: ErrUntrusted},
		{name: "hard link to a root link in a sticky directory", path: tr.p("sticky/hard-link"), mode: Read,
			want: "symbolic link " + tr.p("sticky/hard-link") + " has 2 hard links", wantErr: ErrUntrusted},
		{name: "sticky directory owned by a user", path: tr.p("users-sticky/shim.toml"), mode: Read,
			want: "directory " + tr.p("users-sticky") + " is owned by uid 65534", wantErr: ErrUntrusted},
		{name: "group-writable file", path: tr.p("etc/group-writable.toml"), mode: Read,
			want: "is writable by group or others (mode 0664)", wantErr: ErrUntrusted},
		{name: "world-writable file", path: tr.p("etc/world-writable.toml"), mode: Read,
			want: "(mode 0666)", wantErr: ErrUntrusted},
		{name: "user-owned file", path: tr.p("etc/users.toml"), mode: Read,
			want: "file " + tr.p("etc/users.toml") + " is owned by uid 65534", wantErr: ErrUntrusted},
		{name: "user's directory", path: tr.p("home"), mode: Dir,
			want: "is owned by uid 65534", wantErr: ErrUntrusted},
		{name: "no links wanted", path: tr.p("etc/abs-link"), mode: Read | NoLinks,
			want: "no link is accepted", wantErr: ErrUntrusted},

		{name: "link loop", path: tr.p("etc/loop-a"), mode: Read,
			want: "more than 40 symbolic links on the way (is there a loop?", wantErr: unix.ELOOP},
		{name: "link to itself", path: tr.p("etc/self"), mode: Read, want: "is there a loop?", wantErr: unix.ELOOP},
		{name: "FIFO", path: tr.p("etc/fifo"), mode: Read, want: "is not a regular file (it is a FIFO)", wantErr: ErrNotRegular},
		{name: "directory as a file", path: tr.p("etc"), mode: Read, want: "is not a regular file (it is a directory)", wantErr: ErrNotRegular},
		{name: "link to a device", path: tr.p("etc/null-link"), mode: Read, want: "/dev/null is not a regular file (it is a character device)", wantErr: ErrNotRegular},
		{name: "file as a directory", path: good, mode: Dir, want: "is not a directory", wantErr: unix.ENOTDIR},
		{name: "below a regular file", path: good + "/x", mode: Read, want: "is not a directory, but the path goes on", wantErr: unix.ENOTDIR},
		{name: "not executable", path: tr.p("etc/noexec"), mode: Exec, want: "is not executable (mode 0644)", wantErr: ErrNotExecutable},
		{name: "missing", path: tr.p("etc/none.toml"), mode: Read, want: "no such file or directory", wantErr: fs.ErrNotExist},
		{name: "missing directory", path: tr.p("nodir/shim.toml"), mode: Read,
			want: "no such file or directory: " + tr.p("nodir") + " does not exist", wantErr: fs.ErrNotExist},
		{name: "missing in a user's directory is not found, not untrusted", path: tr.p("home/none.toml"), mode: Read,
			want: "no such file or directory", wantErr: fs.ErrNotExist},
		{name: "dangling root-owned link", path: tr.p("etc/dangling"), mode: Read,
			want: "it is a symbolic link, and " + tr.p("etc/gone.toml") + " does not exist", wantErr: fs.ErrNotExist},
		{name: "relative path", path: "etc/shim.toml", mode: Read, want: "not an absolute path", wantErr: unix.EINVAL},
	}
	for _, ps := range []string{"0", "1"} {
		t.Run("protected_symlinks="+ps, func(t *testing.T) {
			setProtectedSymlinks(t, ps)
			// "/" stays open once opened (it is shared by every Open).
			if _, err := openRoot(); err != nil {
				t.Fatal(err)
			}
			before := openFDs(t)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					f, err := Open(tt.path, tt.mode)
					// Close is safe on a failed Open too; the descriptor
					// count below checks that nothing is left open.
					defer func() { f.Close() }()
					if tt.want != "" {
						if err == nil {
							t.Fatalf("accepted %s", tt.path)
						}
						if !strings.Contains(err.Error(), tt.want) || !errors.Is(err, tt.wantErr) {
							t.Fatalf("err = %v (%#v)\nwant it to hold %q and to be %v", err, errors.Unwrap(err), tt.want, tt.wantErr)
						}
						if f.Fd != -1 {
							t.Errorf("a refused Open returned descriptor %d", f.Fd)
						}
						if errors.Is(tt.wantErr, fs.ErrNotExist) && errors.Is(err, ErrUntrusted) {
							t.Errorf("a missing file is reported as untrusted: %v", err)
						}
						return
					}
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					same := tt.same
					if same == "" {
						same = tt.path
					}
					var want, got unix.Stat_t
					if err := unix.Stat(same, &want); err != nil {
						t.Fatal(err)
					}
					if err := unix.Fstat(f.Fd, &got); err != nil {
						t.Fatal(err)
					}
					if got.Dev != want.Dev || got.Ino != want.Ino || f.Stat.Ino != want.Ino {
						t.Errorf("descriptor is inode %d, want %s (inode %d)", got.Ino, same, want.Ino)
					}
					if tt.mode&kindMask == Read {
						buf := make([]byte, 64)
						if n, err := unix.Read(f.Fd, buf); err != nil || n == 0 {
							t.Errorf("reading the descriptor: %d, %v", n, err)
						}
					}
					flags, err := unix.FcntlInt(uintptr(f.Fd), unix.F_GETFD, 0)
					if err != nil || flags&unix.FD_CLOEXEC == 0 {
						t.Errorf("descriptor is not close-on-exec (flags %d, %v)", flags, err)
					}
				})
			}
			if after := openFDs(t); after != before {
				t.Errorf("%d descriptors open before, %d after: Open leaks", before, after)
			}
		})
	}
}

// TestOpenRace swaps a root-owned policy with a user's link to the user's
// file while Open runs: whatever Open returns must be the root-owned file.
func TestOpenRace(t *testing.T) {
	requireRoot(t)
	for _, ps := range []string{"0", "1"} {
		t.Run("protected_symlinks="+ps, func(t *testing.T) {
			setProtectedSymlinks(t, ps)
			tr := newTree(t)
			tr.dir("sticky", 0o777|os.ModeSticky, 0)
			tr.dir("home", 0o755, user)
			evil := tr.file("home/evil.toml", "evil\n", 0o644, user)
			a := tr.file("sticky/shim.toml", "good\n", 0o644, 0)
			b := tr.link(evil, "sticky/alt", user)
			var good unix.Stat_t
			if err := unix.Stat(a, &good); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			var flipErr error
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if flipErr = unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); flipErr != nil {
						return
					}
				}
			}()
			var ok, refused int
			began := time.Now()
			for i := 0; i < 20000 && time.Since(began) < 5*time.Second; i++ {
				f, err := Open(a, Read)
				if err != nil {
					if !errors.Is(err, ErrUntrusted) {
						t.Errorf("refused for another reason than trust: %v", err)
						break
					}
					refused++
					continue
				}
				buf := make([]byte, 16)
				n, err := unix.Read(f.Fd, buf)
				if err != nil {
					t.Fatalf("reading the opened file: %v", err)
				}
				f.Close()
				if f.Stat.Ino != good.Ino || string(buf[:n]) != "good\n" {
					t.Fatalf("Open returned inode %d reading %q, not the root-owned file", f.Stat.Ino, buf[:n])
				}
				ok++
			}
			close(stop)
			wg.Wait()
			if flipErr != nil {
				t.Fatal(flipErr)
			}
			t.Logf("%d opens of the root-owned file, %d refusals", ok, refused)
			if ok == 0 || refused == 0 {
				t.Errorf("the race did not show both states (%d accepted, %d refused)", ok, refused)
			}
		})
	}
}

// BenchmarkOpen: the runtime path opens a policy and a runtime per call.
func BenchmarkOpen(b *testing.B) {
	for _, c := range []struct {
		name string
		path string
		mode Mode
	}{
		{"runtime /usr/bin/runc (one link)", "/usr/bin/runc", Exec},
		{"cache directory /run", "/run", Dir | NoLinks},
	} {
		if _, err := os.Stat(c.path); err != nil {
			continue
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f, err := Open(c.path, c.mode)
				if err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}
