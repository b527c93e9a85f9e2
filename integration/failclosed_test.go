//go:build integration

package integration

// capshim fails closed: with a missing, truncated or read-only spec, an
// unreadable or untrusted policy, an untrusted runtime or a config.json
// that is a symbolic link, create and run exit non-zero, no container
// exists, the container's command never ran, the --log file holds a
// "capshim: ..." error line naming the problem, config.json keeps every
// byte and no temporary file stays in the bundle.
//
// The containers' command writes a marker into a host directory
// bind-mounted at /marker, so a container that ran leaves a trace outside
// its bundle.

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// markerArgs is the container command of the fail-closed tests: it
// leaves /marker/ran on the host, then prints its capabilities.
var markerArgs = []string{"sh", "-c", "echo ran > /marker/ran; grep Cap /proc/self/status"}

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
