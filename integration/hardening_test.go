//go:build integration

package integration

// Hardening tests with the real runc (/usr/bin/runc):
//
//  1. capshim fails closed: with a missing, truncated or read-only spec, an
//     unreadable or untrusted policy, an untrusted runtime or a config.json
//     that is a symbolic link, create and run exit non-zero, no container
//     exists, the container's command never ran, the --log file holds a
//     "capshim: ..." error line naming the problem, config.json keeps every
//     byte and no temporary file stays in the bundle;
//  2. a successful reduce leaves the bundle as it was apart from
//     config.json's content, and keeps config.json's mode and owner;
//  3. under load (32 bundles at once, and 16 runs sharing one bundle)
//     every container is reduced and every config.json stays whole;
//  4. audit mode changes no byte and logs what it would drop;
//  5. commands that carry no capabilities reach runc with a broken policy.
//
// The containers' command writes a marker into a host directory
// bind-mounted at /marker, so a container that ran leaves a trace outside
// its bundle.

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	capshim "github.com/capshim/capshim"
)

// markerArgs is the container command of the fail-closed tests: it
// leaves /marker/ran on the host, then prints its capabilities.
var markerArgs = []string{"sh", "-c", "echo ran > /marker/ran; grep Cap /proc/self/status"}

// ---------------------------------------------------------------------------
// Helpers

// markerBundle is a test bundle with a host directory bind-mounted at
// /marker inside the container.
type markerBundle struct {
	dir    string // the bundle
	marker string // host directory seen as /marker in the container
}

// newMarkerBundle makes a newBundle (command markerArgs unless bs.args
// is set) and adds the /marker bind mount to its config.json.
func newMarkerBundle(t *testing.T, bs bundleSpec) markerBundle {
	t.Helper()
	if bs.args == nil {
		bs.args = markerArgs
	}
	b := newBundle(t, bs)
	marker := t.TempDir()
	if err := os.Mkdir(filepath.Join(b, "rootfs", "marker"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(b, "config.json")
	var s rspec.Spec
	if err := json.Unmarshal(readFile(t, p), &s); err != nil {
		t.Fatalf("generated config.json: %v", err)
	}
	s.Mounts = append(s.Mounts, rspec.Mount{Destination: "/marker", Type: "bind", Source: marker, Options: []string{"rbind", "rw"}})
	writeJSON(t, p, &s)
	return markerBundle{dir: b, marker: marker}
}

// ran reports whether the container's command left its marker.
func (h markerBundle) ran() bool {
	_, err := os.Stat(filepath.Join(h.marker, "ran"))
	return err == nil
}

// mountReadOnly bind-mounts path (a directory or a file) onto itself
// read-only, and unmounts it when the test ends, whatever happened.
func mountReadOnly(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("mount", "--bind", path, path).CombinedOutput(); err != nil {
		t.Fatalf("mount --bind %s: %v: %s", path, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", path).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", path, err, out)
		}
	})
	if out, err := exec.Command("mount", "-o", "remount,bind,ro", path).CombinedOutput(); err != nil {
		t.Fatalf("remount %s read-only: %v: %s", path, err, out)
	}
	if err := syscall.Access(path, 2 /* W_OK */); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("%s is not read-only after the remount: access(W_OK) = %v", path, err)
	}
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

// logMsgs returns the msg of every JSON line of the given level in a
// --log file (no file: none).
func logMsgs(t *testing.T, path, level string) []string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	var out []string
	for _, l := range logLines(t, path) {
		if l.obj != nil && l.obj["level"] == level {
			m, _ := l.obj["msg"].(string)
			out = append(out, m)
		}
	}
	return out
}

// containsAll reports whether s holds every one of subs, ignoring case,
// and returns the first one missing.
func containsAll(s string, subs ...string) (string, bool) {
	ls := strings.ToLower(s)
	for _, x := range subs {
		if !strings.Contains(ls, strings.ToLower(x)) {
			return x, false
		}
	}
	return "", true
}

// rewriteSpec returns what `capshim rewrite` (with extra flags, e.g.
// --builtin) makes of the spec at path.
func rewriteSpec(t *testing.T, path string, flags ...string) []byte {
	t.Helper()
	args := append(append([]string{"rewrite"}, flags...), path)
	res := runCmd(cmdOpts{env: shimEnv("")}, capshimBin, args...)
	if res.code != 0 {
		t.Fatalf("capshim rewrite failed:\n%s", res)
	}
	return []byte(res.stdout)
}

// copyFile copies src to dst with mode.
func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	data := readFile(t, src)
	if err := os.WriteFile(dst, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, mode); err != nil {
		t.Fatal(err)
	}
}

// newDir returns a fresh directory with the given mode (owned by root).
func newDir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	return d
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

// policyWithRuntime writes runcPolicy with runtime = rt.
func policyWithRuntime(t *testing.T, rt string) string {
	t.Helper()
	return writePolicy(t, strings.Replace(runcPolicy, `runtime = "/usr/bin/runc"`, fmt.Sprintf("runtime = %q", rt), 1))
}

// runAll starts every command line (capshim's arguments) at once,
// after a common barrier, and waits for all of them. The goroutines call
// no t method: runCmd needs none.
func runAll(env []string, cmds [][]string) []cmdResult {
	out := make([]cmdResult, len(cmds))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, args := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = runCmd(cmdOpts{env: env}, capshimBin, args...)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// ---------------------------------------------------------------------------
// 1: fail closed.

// failCase is one way to break a create or run.
type failCase struct {
	name string
	// policy returns the policy path; nil: runcPolicy.
	policy func(t *testing.T) string
	// spoil damages the bundle after it is built.
	spoil func(t *testing.T, b string)
	// want are substrings the capshim error message must all hold
	// (case-insensitive) to name the problem; empty with ok.
	want []string
	// ok marks a control: the start must succeed.
	ok bool
}

func failCases() []failCase {
	truncate := func(keep func(data []byte) []byte) func(t *testing.T, b string) {
		return func(t *testing.T, b string) {
			p := filepath.Join(b, "config.json")
			writeFile(t, p, string(keep(readFile(t, p))), 0o644)
		}
	}
	symlink := func(abs bool) func(t *testing.T, b string) {
		return func(t *testing.T, b string) {
			p := filepath.Join(b, "config.json")
			real := filepath.Join(b, "real-config.json")
			target := "real-config.json"
			if abs {
				real = filepath.Join(t.TempDir(), "config.json")
				target = real
			}
			copyFile(t, p, real, 0o644)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	policyIn := func(dirMode os.FileMode, dirUID int) func(t *testing.T) string {
		return func(t *testing.T) string {
			d := newDir(t, dirMode)
			if err := os.Chown(d, dirUID, dirUID); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(d, "shim.toml")
			writeFile(t, p, runcPolicy, 0o644)
			return p
		}
	}
	policyFile := func(mode os.FileMode, uid int) func(t *testing.T) string {
		return func(t *testing.T) string {
			p := writePolicy(t, runcPolicy)
			if err := os.Chown(p, uid, uid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
			return p
		}
	}
	policyPath := func(make func(t *testing.T, p string)) func(t *testing.T) string {
		return func(t *testing.T) string {
			p := filepath.Join(newDir(t, 0o755), "shim.toml")
			make(t, p)
			return p
		}
	}
	runtime := func(mode os.FileMode, uid int, dirMode os.FileMode) func(t *testing.T) string {
		return func(t *testing.T) string {
			return policyWithRuntime(t, runtimeCopy(t, mode, uid, dirMode))
		}
	}
	return []failCase{
		{name: "control good bundle and policy", ok: true},

		// (a) config.json missing.
		{name: "config.json missing",
			spoil: func(t *testing.T, b string) {
				if err := os.Remove(filepath.Join(b, "config.json")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"config.json", "no such file"}},
		{name: "config.json is a directory",
			spoil: func(t *testing.T, b string) {
				p := filepath.Join(b, "config.json")
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"config.json", "not a regular file"}},

		// (b) config.json truncated or damaged.
		{name: "config.json truncated to half",
			spoil: truncate(func(d []byte) []byte { return d[:len(d)/2] }),
			want:  []string{"config.json", "invalid JSON"}},
		{name: "config.json truncated inside capabilities",
			spoil: truncate(func(d []byte) []byte {
				i := bytes.Index(d, []byte(`"capabilities"`))
				return d[:i+len(`"capabilities": {`)]
			}),
			want: []string{"config.json", "invalid JSON"}},
		{name: "config.json without its closing brace",
			spoil: truncate(func(d []byte) []byte { return bytes.TrimRight(d, "}\n\t ") }),
			want:  []string{"config.json", "invalid JSON"}},
		{name: "config.json empty",
			spoil: truncate(func([]byte) []byte { return nil }),
			want:  []string{"config.json", "empty"}},
		{name: "config.json with data after the end",
			spoil: truncate(func(d []byte) []byte { return append(d, "}"...) }),
			want:  []string{"config.json", "after the end"}},

		// (c) config.json not writable.
		{name: "bundle read-only bind mount",
			spoil: func(t *testing.T, b string) { mountReadOnly(t, b) },
			want:  []string{"config.json", "read-only file system"}},
		{name: "config.json read-only bind mount",
			spoil: func(t *testing.T, b string) { mountReadOnly(t, filepath.Join(b, "config.json")) },
			want:  []string{"config.json", "writing the reduced spec", "busy"}},

		// (d) policy unreadable.
		{name: "policy is a directory",
			policy: policyPath(func(t *testing.T, p string) {
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
			}),
			want: []string{"shim.toml", "not a regular file"}},
		{name: "policy is a FIFO",
			policy: policyPath(func(t *testing.T, p string) {
				if err := syscall.Mkfifo(p, 0o644); err != nil {
					t.Fatal(err)
				}
			}),
			want: []string{"shim.toml", "not a regular file"}},
		{name: "policy is a dangling symlink",
			policy: policyPath(func(t *testing.T, p string) {
				if err := os.Symlink(filepath.Join(filepath.Dir(p), "gone.toml"), p); err != nil {
					t.Fatal(err)
				}
			}),
			want: []string{"shim.toml", "no such file"}},
		{name: "policy path below a regular file",
			policy: func(t *testing.T) string {
				f := filepath.Join(newDir(t, 0o755), "file")
				writeFile(t, f, "x", 0o644)
				return filepath.Join(f, "shim.toml")
			},
			want: []string{"shim.toml", "not a directory"}},
		{name: "policy missing",
			policy: func(t *testing.T) string { return filepath.Join(newDir(t, 0o755), "absent.toml") },
			want:   []string{"absent.toml", "no such file"}},
		// Mode 0000 does not stop root from reading: a root-owned
		// file nobody else can write is trusted, so this one works.
		{name: "control policy mode 0000 read by root", policy: policyFile(0o000, 0), ok: true},

		// (e) untrusted policy.
		{name: "policy owned by uid 65534", policy: policyFile(0o644, 65534),
			want: []string{"untrusted policy", "uid 65534", "shim.toml"}},
		{name: "policy mode 0666", policy: policyFile(0o666, 0),
			want: []string{"untrusted policy", "writable by group or others", "0666"}},
		{name: "policy mode 0664", policy: policyFile(0o664, 0),
			want: []string{"untrusted policy", "writable by group or others", "0664"}},
		{name: "policy in a 0777 non-sticky directory", policy: policyIn(0o777, 0),
			want: []string{"untrusted policy", "directory", "0777"}},
		{name: "policy in a directory owned by uid 65534", policy: policyIn(0o755, 65534),
			want: []string{"untrusted policy", "directory", "uid 65534"}},
		{name: "policy symlink in a 0777 directory",
			policy: func(t *testing.T) string {
				good := writePolicy(t, runcPolicy)
				p := filepath.Join(newDir(t, 0o777), "shim.toml")
				if err := os.Symlink(good, p); err != nil {
					t.Fatal(err)
				}
				return p
			},
			want: []string{"untrusted policy", "directory", "0777"}},
		{name: "control policy in a 01777 sticky directory", policy: policyIn(os.ModeSticky|0o777, 0), ok: true},

		// (f) untrusted runtime.
		{name: "runtime world-writable", policy: runtime(0o777, 0, 0o755),
			want: []string{"untrusted runtime", "writable by group or others", "0777"}},
		{name: "runtime group-writable", policy: runtime(0o775, 0, 0o755),
			want: []string{"untrusted runtime", "writable by group or others", "0775"}},
		{name: "runtime owned by uid 65534", policy: runtime(0o755, 65534, 0o755),
			want: []string{"untrusted runtime", "uid 65534"}},
		{name: "runtime in a 0777 directory", policy: runtime(0o755, 0, 0o777),
			want: []string{"untrusted runtime", "directory", "0777"}},
		{name: "runtime not executable", policy: runtime(0o644, 0, 0o755),
			want: []string{"runtime", "not an executable"}},
		{name: "control runtime copy root 0755", policy: runtime(0o755, 0, 0o755), ok: true},

		// (g) config.json is a symbolic link to a real config.
		{name: "config.json relative symlink in the bundle", spoil: symlink(false),
			want: []string{"config.json", "symbolic link"}},
		{name: "config.json absolute symlink out of the bundle", spoil: symlink(true),
			want: []string{"config.json", "symbolic link"}},
	}
}

func TestHardFailClosed(t *testing.T) {
	requireRunc(t)
	began := time.Now()
	for _, tc := range failCases() {
		for _, cmdWord := range []string{"run", "create"} {
			t.Run(tc.name+"/"+cmdWord, func(t *testing.T) {
				checkFailClosed(t, tc, cmdWord)
			})
		}
	}
	t.Logf("fail-closed cases took %v", time.Since(began).Round(time.Millisecond))
}

// checkFailClosed runs one case with one command word.
func checkFailClosed(t *testing.T, tc failCase, cmdWord string) {
	t.Helper()
	h := newMarkerBundle(t, bundleSpec{})
	root, id := runcRoot(t), containerID(t)
	runcCleanup(t, root, id)
	policy := writePolicy(t, runcPolicy)
	if tc.policy != nil {
		policy = tc.policy(t)
	}
	if tc.spoil != nil {
		tc.spoil(t, h.dir)
	}
	cfg := filepath.Join(h.dir, "config.json")
	before := snapshot(t, cfg)
	// Log and pid file outside the bundle: it may be read-only.
	side := t.TempDir()
	log := filepath.Join(side, "log.json")
	pidFile := filepath.Join(side, "init.pid")
	args := append(globalArgs(root, log), cmdWord, "--bundle", h.dir)
	if cmdWord == "create" {
		args = append(args, "--pid-file", pidFile)
	}
	res := requireExited(t, runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(args, id)...))
	defer func() {
		if t.Failed() {
			t.Logf("policy %s\ndetails:\n%s", policy, res)
		}
	}()

	if tc.ok {
		if res.code != 0 {
			t.Fatalf("control: capshim %s failed", cmdWord)
		}
		if cmdWord == "create" {
			if st := runcStatus(t, root, id); st != "created" {
				t.Fatalf("control: status %q after create, want created", st)
			}
			if out, err := exec.Command(runcPath, "--root", root, "start", id).CombinedOutput(); err != nil {
				t.Fatalf("control: runc start: %v: %s", err, out)
			}
			runcWaitStatus(t, root, id, "stopped")
		} else {
			assertCaps(t, res.stdout, maskMinimal)
		}
		if !h.ran() {
			t.Errorf("control: the container did not leave its marker in %s: the marker proves nothing", h.marker)
		}
		if after := snapshot(t, cfg); bytes.Equal(after.data, before.data) {
			t.Errorf("control: config.json unchanged in enforce mode")
		}
		if tmp := capshimTempFiles(t, h.dir); len(tmp) > 0 {
			t.Errorf("control: temporary files left in the bundle: %v", tmp)
		}
		return
	}

	if res.code == 0 {
		t.Errorf("capshim %s exited 0, want non-zero", cmdWord)
	}
	if runcExists(root, id) {
		t.Errorf("container %s exists after the refused %s (runc --root %s state %s succeeds)", id, cmdWord, root, id)
	}
	if h.ran() {
		t.Errorf("the container's command ran: marker %s exists", filepath.Join(h.marker, "ran"))
	}
	if _, err := os.Stat(pidFile); err == nil {
		t.Errorf("a pid file was written: %s", pidFile)
	}
	msg := checkErrorLog(t, log, "json")
	t.Logf("refused: %s", msg)
	if msg != "" {
		if miss, ok := containsAll(msg, tc.want...); !ok {
			t.Errorf("error message does not name the problem (no %q): %q", miss, msg)
		}
		if !strings.Contains(res.stderr, msg) {
			t.Errorf("stderr does not carry the logged message %q", msg)
		}
	}
	after := snapshot(t, cfg)
	switch {
	case before.exists != after.exists:
		t.Errorf("config.json existed before: %v, after: %v", before.exists, after.exists)
	case before.link != after.link:
		t.Errorf("config.json link changed: %q -> %q", before.link, after.link)
	case before.mode != after.mode || before.ino != after.ino || before.uid != after.uid || before.gid != after.gid:
		t.Errorf("config.json replaced or changed: mode %v ino %d %d:%d -> mode %v ino %d %d:%d",
			before.mode, before.ino, before.uid, before.gid, after.mode, after.ino, after.uid, after.gid)
	case !bytes.Equal(before.data, after.data):
		t.Errorf("config.json content changed:\nbefore: %s\nafter:  %s", before.data, after.data)
	}
	if tmp := capshimTempFiles(t, h.dir); len(tmp) > 0 {
		t.Errorf("temporary files left in the bundle: %v", tmp)
	}
}

// ---------------------------------------------------------------------------
// 2: a successful reduce leaves nothing behind and keeps mode and owner.

func TestHardTempFiles(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy)
	for _, tc := range []struct {
		name     string
		cmd      string
		mode     os.FileMode
		uid, gid int
	}{
		{name: "run 0640 root", cmd: "run", mode: 0o640},
		{name: "create 0640 root", cmd: "create", mode: 0o640},
		{name: "run 0600 uid 1234 gid 5678", cmd: "run", mode: 0o600, uid: 1234, gid: 5678},
		{name: "run 0444 root", cmd: "run", mode: 0o444},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, bundleSpec{})
			root, id := runcRoot(t), containerID(t)
			runcCleanup(t, root, id)
			cfg := filepath.Join(b, "config.json")
			if err := os.Chown(cfg, tc.uid, tc.gid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(cfg, tc.mode); err != nil {
				t.Fatal(err)
			}
			orig := filepath.Join(t.TempDir(), "orig.json")
			copyFile(t, cfg, orig, 0o644)
			want := rewriteSpec(t, orig, "--config", policy)
			before := snapshot(t, cfg)
			listBefore := listing(t, b)
			side := t.TempDir()
			log := filepath.Join(side, "log.json")
			args := append(globalArgs(root, log), tc.cmd, "--bundle", b)
			if tc.cmd == "create" {
				args = append(args, "--pid-file", filepath.Join(side, "init.pid"))
			}
			res := runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(args, id)...)
			defer func() {
				if t.Failed() {
					t.Logf("details:\n%s", res)
				}
			}()
			if res.code != 0 {
				t.Fatalf("capshim %s failed", tc.cmd)
			}
			if tc.cmd == "run" {
				assertCaps(t, res.stdout, maskMinimal)
			} else {
				pid := strings.TrimSpace(string(readFile(t, filepath.Join(side, "init.pid"))))
				assertCaps(t, string(readFile(t, "/proc/"+pid+"/status")), maskMinimal)
			}
			after := snapshot(t, cfg)
			if d := diffListing(listBefore, listing(t, b)); d != "" {
				t.Errorf("the bundle changed beyond config.json's content:\n%s", d)
			}
			if tmp := capshimTempFiles(t, b); len(tmp) > 0 {
				t.Errorf("temporary files left in the bundle: %v", tmp)
			}
			if after.mode != before.mode || after.mode.Perm() != tc.mode {
				t.Errorf("config.json mode %v, want %v", after.mode, before.mode)
			}
			if int(after.uid) != tc.uid || int(after.gid) != tc.gid {
				t.Errorf("config.json owner %d:%d, want %d:%d", after.uid, after.gid, tc.uid, tc.gid)
			}
			if !json.Valid(after.data) {
				t.Errorf("config.json is not valid JSON:\n%s", after.data)
			}
			if !bytes.Equal(after.data, want) {
				t.Errorf("config.json is not what capshim rewrite gives:\ngot:  %s\nwant: %s", after.data, want)
			}
			if bytes.Equal(after.data, before.data) {
				t.Errorf("config.json unchanged in enforce mode")
			}
			// Replaced by rename, not written in place.
			if after.ino == before.ino {
				t.Errorf("config.json kept inode %d: written in place, not replaced atomically", after.ino)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 3: load.

func TestHardLoad(t *testing.T) {
	requireRunc(t)
	// The built-in default as a policy file, so /etc/capshim/shim.toml
	// does not matter; the expected result is `capshim rewrite --builtin`.
	policy := writePolicy(t, string(capshim.DefaultPolicy))
	env := shimEnv(policy)
	grepCaps := []string{"grep", "Cap", "/proc/self/status"}

	t.Run("32 bundles", func(t *testing.T) {
		const n = 32
		began := time.Now()
		root, side := runcRoot(t), t.TempDir()
		type job struct{ bundle, id, log, orig string }
		jobs := make([]job, n)
		cmds := make([][]string, n)
		base := containerID(t)
		for i := range jobs {
			b := newBundle(t, bundleSpec{args: grepCaps})
			j := job{bundle: b, id: fmt.Sprintf("%s-%02d", base, i),
				log: filepath.Join(side, fmt.Sprintf("log-%02d.json", i)), orig: filepath.Join(side, fmt.Sprintf("orig-%02d.json", i))}
			copyFile(t, filepath.Join(b, "config.json"), j.orig, 0o644)
			runcCleanup(t, root, j.id)
			jobs[i] = j
			cmds[i] = append(globalArgs(root, j.log), "run", "-b", b, j.id)
		}
		setup := time.Since(began)
		began = time.Now()
		outs := runAll(env, cmds)
		t.Logf("setup %v; %d parallel runs %v", setup.Round(time.Millisecond), n, time.Since(began).Round(time.Millisecond))
		for i, o := range outs {
			j := jobs[i]
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				if !o.exited {
					t.Fatalf("%v\n%s", o.err, o)
				}
				if o.code != 0 {
					t.Fatalf("run failed:\n%s", o)
				}
				assertCaps(t, o.stdout, maskMinimal)
				got := readFile(t, filepath.Join(j.bundle, "config.json"))
				if !json.Valid(got) {
					t.Errorf("config.json is not valid JSON afterwards:\n%s", got)
				} else if want := rewriteSpec(t, j.orig, "--builtin"); !bytes.Equal(got, want) {
					t.Errorf("config.json is not what capshim rewrite --builtin gives:\ngot:  %s\nwant: %s", got, want)
				}
				if tmp := capshimTempFiles(t, j.bundle); len(tmp) > 0 {
					t.Errorf("temporary files left: %v", tmp)
				}
				if runcExists(root, j.id) {
					t.Errorf("runc run left container %s behind", j.id)
				}
				if t.Failed() {
					t.Logf("details:\n%s", o)
				}
			})
		}
	})

	t.Run("16 runs sharing one bundle", func(t *testing.T) {
		const n = 16
		root, side := runcRoot(t), t.TempDir()
		b := newBundle(t, bundleSpec{args: grepCaps})
		cfg := filepath.Join(b, "config.json")
		orig := readFile(t, cfg)
		origPath := filepath.Join(side, "orig.json")
		copyFile(t, cfg, origPath, 0o644)
		want := rewriteSpec(t, origPath, "--builtin")
		if bytes.Equal(want, orig) {
			t.Fatal("the policy changes nothing in this bundle: the test would prove nothing")
		}
		base := containerID(t)
		// Several rounds, each starting from the original, so that many
		// writers race to replace the same file each time.
		for round := 0; round < 4; round++ {
			copyFile(t, origPath, cfg, 0o644)
			cmds := make([][]string, n)
			ids := make([]string, n)
			for i := range cmds {
				ids[i] = fmt.Sprintf("%s-r%d-%02d", base, round, i)
				runcCleanup(t, root, ids[i])
				cmds[i] = append(globalArgs(root, filepath.Join(side, fmt.Sprintf("log-r%d-%02d.json", round, i))), "run", "-b", b, ids[i])
			}
			// A reader sees the old or the new content, never a mix.
			stop := make(chan struct{})
			var reads, bad int
			var badSample []byte
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					select {
					case <-stop:
						return
					default:
					}
					data, err := os.ReadFile(cfg)
					reads++
					if err != nil || !bytes.Equal(data, orig) && !bytes.Equal(data, want) {
						bad++
						if badSample == nil {
							badSample = fmt.Appendf(nil, "%d bytes, error %v, starting: %.300q", len(data), err, data)
						}
					}
				}
			}()
			began := time.Now()
			outs := runAll(env, cmds)
			close(stop)
			<-done
			t.Logf("round %d: %d parallel runs on one bundle %v; %d concurrent reads", round, n, time.Since(began).Round(time.Millisecond), reads)
			if bad > 0 {
				t.Errorf("round %d: %d of %d concurrent reads saw neither the original nor the reduced config.json, e.g.:\n%s", round, bad, reads, badSample)
			}
			for i, o := range outs {
				if o.code != 0 {
					t.Errorf("round %d run %d failed: %v\n%s", round, i, o.err, o)
					continue
				}
				assertCaps(t, o.stdout, maskMinimal)
				if t.Failed() {
					t.Logf("details:\n%s", o)
				}
			}
			got := readFile(t, cfg)
			if !bytes.Equal(got, want) {
				t.Errorf("round %d: shared config.json is not what capshim rewrite --builtin gives (valid JSON: %v):\ngot:  %s\nwant: %s", round, json.Valid(got), got, want)
			}
			if tmp := capshimTempFiles(t, b); len(tmp) > 0 {
				t.Errorf("round %d: temporary files left: %v", round, tmp)
			}
			// The info line of every run names its container: each one
			// decided on its own.
			for i, id := range ids {
				lp := filepath.Join(side, fmt.Sprintf("log-r%d-%02d.json", round, i))
				found := false
				for _, m := range logMsgs(t, lp, "info") {
					found = found || strings.Contains(m, id)
				}
				if !found {
					t.Errorf("round %d: no capshim info line for %s in %s", round, id, lp)
				}
			}
		}
	})
}

// ---------------------------------------------------------------------------
// 4: audit mode changes no byte.

func TestHardAudit(t *testing.T) {
	requireRunc(t)
	for _, tc := range []struct {
		name   string
		inhAmb bool
		cmd    string
	}{
		{name: "run", cmd: "run"},
		{name: "run inheritable and ambient", cmd: "run", inhAmb: true},
		{name: "create", cmd: "create"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			side := t.TempDir()
			decisions := filepath.Join(side, "decisions.jsonl")
			policy := writePolicy(t, strings.Replace(runcPolicy, `mode = "enforce"`, `mode = "audit"`, 1)+fmt.Sprintf("log = %q\n", decisions))
			b := newBundle(t, bundleSpec{inhAmb: tc.inhAmb})
			root, id := runcRoot(t), containerID(t)
			runcCleanup(t, root, id)
			cfg := filepath.Join(b, "config.json")
			old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
			if err := os.Chtimes(cfg, old, old); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, cfg)
			listBefore := listing(t, b)
			log := filepath.Join(side, "log.json")
			args := append(globalArgs(root, log), tc.cmd, "--bundle", b)
			if tc.cmd == "create" {
				args = append(args, "--pid-file", filepath.Join(side, "init.pid"))
			}
			res := runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(args, id)...)
			defer func() {
				if t.Failed() {
					dl, _ := os.ReadFile(decisions)
					t.Logf("details:\n%s\n--- decision log ---\n%s", res, dl)
				}
			}()
			if res.code != 0 {
				t.Fatalf("capshim %s failed", tc.cmd)
			}
			after := snapshot(t, cfg)
			if !bytes.Equal(before.data, after.data) {
				t.Errorf("audit mode changed config.json:\nbefore: %s\nafter:  %s", before.data, after.data)
			}
			if !after.mtime.Equal(before.mtime) || after.ino != before.ino || after.mode != before.mode {
				t.Errorf("audit mode touched config.json: mtime %v ino %d mode %v -> mtime %v ino %d mode %v",
					before.mtime, before.ino, before.mode, after.mtime, after.ino, after.mode)
			}
			if d := diffListing(listBefore, listing(t, b)); d != "" {
				t.Errorf("audit mode changed the bundle:\n%s", d)
			}
			// The container got what the engine gave.
			if tc.cmd == "run" {
				if tc.inhAmb {
					assertAllSets(t, res.stdout, maskDocker)
				} else {
					assertCaps(t, res.stdout, maskDocker)
				}
			} else {
				pid := strings.TrimSpace(string(readFile(t, filepath.Join(side, "init.pid"))))
				assertCaps(t, string(readFile(t, "/proc/"+pid+"/status")), maskDocker)
			}
			// --log: an info line saying what would be dropped.
			var info string
			for _, m := range logMsgs(t, log, "info") {
				if strings.HasPrefix(m, "capshim:") && strings.Contains(m, id) {
					info = m
				}
			}
			switch {
			case info == "":
				t.Errorf("--log has no capshim info line for %s", id)
			case !strings.Contains(info, "would drop"):
				t.Errorf("info line does not say \"would drop\": %q", info)
			default:
				for _, c := range droppedByDefault {
					if !strings.Contains(info, c) {
						t.Errorf("info line does not name %s: %q", c, info)
					}
				}
			}
			// Decision log: a JSON line with the dropped sets.
			var line map[string]any
			for _, l := range logLines(t, decisions) {
				if l.obj != nil && l.obj["container"] == id {
					line = l.obj
				}
			}
			if line == nil {
				t.Fatalf("decision log has no JSON line with container %q", id)
			}
			if line["mode"] != "audit" {
				t.Errorf("decision line mode = %v, want audit", line["mode"])
			}
			dropped, _ := line["dropped"].(map[string]any)
			sets := []string{"bounding", "effective", "permitted"}
			if tc.inhAmb {
				sets = append(sets, "inheritable", "ambient")
			}
			for _, s := range sets {
				list, _ := dropped[s].([]any)
				got := map[string]bool{}
				for _, v := range list {
					got[fmt.Sprint(v)] = true
				}
				for _, c := range droppedByDefault {
					if !got[c] {
						t.Errorf("decision line dropped.%s lacks %s: %v", s, c, dropped[s])
					}
				}
				if len(list) != len(droppedByDefault) {
					t.Errorf("decision line dropped.%s has %d names, want %d: %v", s, len(list), len(droppedByDefault), list)
				}
			}
			if !tc.inhAmb {
				for _, s := range []string{"inheritable", "ambient"} {
					if _, ok := dropped[s]; ok {
						t.Errorf("decision line drops from %s, which was empty: %v", s, dropped[s])
					}
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 5: pass-through commands work with a broken policy.

func TestHardPassThroughBrokenPolicy(t *testing.T) {
	requireRunc(t)
	good := writePolicy(t, runcPolicy)
	broken := []struct {
		name   string
		policy func(t *testing.T) string
	}{
		{name: "syntax error", policy: func(t *testing.T) string { return writePolicy(t, runcPolicy+"[[rule]\nname = \n") }},
		{name: "missing", policy: func(t *testing.T) string { return filepath.Join(newDir(t, 0o755), "absent.toml") }},
		{name: "directory", policy: func(t *testing.T) string {
			p := filepath.Join(newDir(t, 0o755), "shim.toml")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "mode 0666", policy: func(t *testing.T) string {
			p := writePolicy(t, runcPolicy)
			if err := os.Chmod(p, 0o666); err != nil {
				t.Fatal(err)
			}
			return p
		}},
	}
	for _, bp := range broken {
		t.Run(bp.name, func(t *testing.T) {
			policy := bp.policy(t)
			env := shimEnv(policy)
			root := runcRoot(t)
			side := t.TempDir()

			// A container that does not exist: runc answers.
			for _, c := range []struct {
				name string
				args []string
			}{
				{name: "state", args: []string{"state", "nosuch"}},
				{name: "kill", args: []string{"kill", "nosuch", "KILL"}},
				{name: "delete", args: []string{"delete", "nosuch"}},
			} {
				t.Run(c.name+" nosuch", func(t *testing.T) {
					log := filepath.Join(side, c.name+".log.json")
					res := requireExited(t, runCmd(cmdOpts{env: env}, capshimBin, append(globalArgs(root, log), c.args...)...))
					defer func() {
						if t.Failed() {
							t.Logf("policy %s\ndetails:\n%s", policy, res)
						}
					}()
					if res.code == 0 {
						t.Errorf("exit 0 for a container that does not exist")
					}
					runcErr := false
					for _, m := range logMsgs(t, log, "error") {
						if strings.HasPrefix(m, "capshim:") {
							t.Errorf("capshim refused a pass-through command: %q", m)
						}
						runcErr = runcErr || strings.Contains(m, "container does not exist")
					}
					if !runcErr && !strings.Contains(res.stderr, "container does not exist") {
						t.Errorf(`runc's "container does not exist" is neither in --log nor on stderr: the command did not reach runc`)
					}
					checkWarning(t, log, c.args[0])
				})
			}

			// A live container started with a good policy can still be
			// inspected, stopped and removed.
			t.Run("live container", func(t *testing.T) {
				b := newBundle(t, bundleSpec{args: []string{"sleep", "1000"}})
				id := containerID(t)
				runcCleanup(t, root, id)
				startLog := filepath.Join(side, "live-start.log.json")
				res := runCmd(cmdOpts{env: shimEnv(good)}, capshimBin, append(globalArgs(root, startLog), "run", "--detach", "--bundle", b, id)...)
				if res.code != 0 {
					t.Fatalf("starting the container with the good policy failed:\n%s", res)
				}
				runcWaitStatus(t, root, id, "running")
				log := filepath.Join(side, "live.log.json")
				shim := func(args ...string) cmdResult {
					t.Helper()
					return runCmd(cmdOpts{env: env}, capshimBin, append(globalArgs(root, log), args...)...)
				}
				if res := shim("state", id); res.code != 0 || !strings.Contains(res.stdout, `"status": "running"`) {
					t.Errorf("state with a broken policy: want runc's JSON with status running:\n%s", res)
				}
				if res := shim("kill", id, "KILL"); res.code != 0 {
					t.Fatalf("kill with a broken policy failed:\n%s", res)
				}
				runcWaitStatus(t, root, id, "stopped")
				if res := shim("delete", id); res.code != 0 {
					t.Fatalf("delete with a broken policy failed:\n%s", res)
				}
				if runcExists(root, id) {
					t.Errorf("container %s still exists after delete", id)
				}
				for _, w := range []string{"state", "kill", "delete"} {
					checkWarning(t, log, w)
				}
				// create still fails closed with the same policy.
				b2 := newBundle(t, bundleSpec{})
				id2 := containerID(t)
				runcCleanup(t, root, id2)
				clog := filepath.Join(side, "create.log.json")
				res = requireExited(t, runCmd(cmdOpts{env: env}, capshimBin, append(globalArgs(root, clog), "create", "--bundle", b2, id2)...))
				if res.code == 0 || runcExists(root, id2) {
					t.Errorf("create with the broken policy was not refused:\n%s", res)
				}
				checkErrorLog(t, clog, "json")
			})
		})
	}
}

// TestHardPassThroughUntrustedRuntime: a policy that loads but names a
// runtime others could change is not a broken policy that capshim works
// around: capshim never execs a binary it does not trust, so even state,
// kill and delete are refused (with a capshim error line), and runc on PATH
// is not silently used instead.
func TestHardPassThroughUntrustedRuntime(t *testing.T) {
	requireRunc(t)
	rt := runtimeCopy(t, 0o777, 0, 0o755)
	policy := policyWithRuntime(t, rt)
	root, side := runcRoot(t), t.TempDir()
	for _, args := range [][]string{{"state", "nosuch"}, {"kill", "nosuch", "KILL"}, {"delete", "nosuch"}} {
		t.Run(args[0], func(t *testing.T) {
			log := filepath.Join(side, args[0]+".log.json")
			res := requireExited(t, runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(globalArgs(root, log), args...)...))
			if res.code == 0 {
				t.Errorf("exit 0 through an untrusted runtime")
			}
			msg := checkErrorLog(t, log, "json")
			if miss, ok := containsAll(msg, "untrusted runtime", rt); msg != "" && !ok {
				t.Errorf("error message does not name the problem (no %q): %q", miss, msg)
			}
			for _, m := range logMsgs(t, log, "error") {
				if strings.Contains(m, "container does not exist") {
					t.Errorf("the untrusted runtime (or another runc) ran: %q", m)
				}
			}
			if t.Failed() {
				t.Logf("details:\n%s", res)
			}
		})
	}
}

// checkWarning checks the --log file has a warning line from capshim
// that names the pass-through command.
func checkWarning(t *testing.T, log, command string) {
	t.Helper()
	for _, m := range logMsgs(t, log, "warning") {
		if strings.HasPrefix(m, "capshim:") && strings.Contains(m, command+" carries no capabilities") {
			return
		}
	}
	data, _ := os.ReadFile(log)
	t.Errorf("--log has no capshim warning line for %s:\n%s", command, data)
}
