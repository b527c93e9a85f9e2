//go:build integration

package integration

// Helpers every test file uses: the capshim binary under test (built once
// by TestMain), the capability masks and the checks on a container's Cap*
// lines, and small file, text and environment helpers. The other
// helpers_*_test.go files hold one kind of helper each: running a command
// (run), policies (policy), mounts and file snapshots (fs), bundles and
// root file systems (bundle), image archives (image), runc and crun
// (runtime), capshim's logs (log), the engine launchers (daemon, docker,
// podman, containerd, cri), capshim install (install), learning and
// explaining through the engines (learn) and the test images' workloads
// and profiles (profiles).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// capshimBin is the capshim binary under test, built once by TestMain.
var capshimBin string

// Capability masks as /proc/PID/status prints them.
const (
	maskMinimal  = 0x20000420 // CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE
	maskChown    = 0x1        // CAP_CHOWN
	maskDocker   = 0xa80425fb // Docker's 14 default capabilities
	maskNetRaw   = 1 << 13    // CAP_NET_RAW
	maskSysAdmin = 1 << 21    // CAP_SYS_ADMIN
)

// dockerCaps are Docker's (and containerd's) 14 default capabilities.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "capshim-it-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Root-owned 0755 directory: the binary must live where a trust check
	// would accept it.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// capshim runs its own commands (rewrite, ...) from capshim-tools next
	// to it, as `make install` lays them out.
	capshimBin = filepath.Join(dir, "capshim")
	for _, b := range []string{"capshim", "capshim-tools", "capshim-trace"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, b), "../cmd/"+b)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", b+":", err)
			return 1
		}
	}
	left := snapshotState()
	defer left.restore()
	hostState.save()
	defer hostState.restore()
	logs := snapshotLog()
	defer logs.restore()
	for _, d := range runtimeDirs {
		if _, err := os.Lstat(d); err != nil {
			defer removeEmptyTree(d)
		}
	}
	return m.Run()
}

// runtimeDirs are created by containerd and its shims wherever their own
// state is (containerd 1.6's shims put their sockets in /run/containerd/s,
// containerd 2.x makes /run/containerd itself), and outlive them as empty
// directories. Where they were not there before the tests, they go again.
var runtimeDirs = []string{"/run/containerd"}

// removeEmptyTree removes dir and the directories below it, only as far
// as they hold nothing else: a file anywhere keeps it, and whatever holds it.
func removeEmptyTree(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() && e.Type()&os.ModeSymlink == 0 {
			removeEmptyTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = syscall.Rmdir(dir) // fails, and keeps it, unless it is empty now
}

// stateDirs are where capshim keeps records and profiles when a policy
// names no state_dir of its own (most test policies do not): the tests
// take away what they added there, so the host is left as it was.
var stateDirs = []string{"/run/capshim/containers", "/var/lib/capshim/recent", "/var/lib/capshim/profiles", "/var/lib/capshim", "/run/capshim"}

// stateSnapshot is what those directories held before the tests.
type stateSnapshot struct {
	existed map[string]bool
	names   map[string]map[string]bool
}

func snapshotState() stateSnapshot {
	s := stateSnapshot{existed: map[string]bool{}, names: map[string]map[string]bool{}}
	for _, d := range stateDirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		s.existed[d] = true
		s.names[d] = map[string]bool{}
		for _, e := range entries {
			s.names[d][e.Name()] = true
		}
	}
	return s
}

// restore removes the files the tests added to the state directories,
// and the directories themselves where the tests made them.
func (s stateSnapshot) restore() {
	for _, d := range stateDirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if !s.names[d][e.Name()] && !e.IsDir() {
				os.Remove(filepath.Join(d, e.Name()))
			}
		}
	}
	for _, d := range stateDirs {
		if !s.existed[d] {
			os.Remove(d) // only when empty
		}
	}
}

// defaultLogDir is the decision log's directory when a policy has no log
// key (policy.DefaultLog); most test policies do not set one, and a test
// of the default writes there on purpose.
const defaultLogDir = "/var/log/capshim"

// logSnapshot is what the default log's directory held before the tests:
// each file and its size.
type logSnapshot struct {
	existed bool
	sizes   map[string]int64
}

func snapshotLog() logSnapshot {
	s := logSnapshot{sizes: map[string]int64{}}
	entries, err := os.ReadDir(defaultLogDir)
	if err != nil {
		return s
	}
	s.existed = true
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			s.sizes[e.Name()] = info.Size()
		}
	}
	return s
}

// restore takes away what the tests appended: files they made are
// removed, files that were there are cut back to their size, and the
// directory goes when the tests made it. (A rotation during the tests
// would have moved the host's lines to FILE.1; at 8 MiB a file, the
// tests do not write that much.)
func (s logSnapshot) restore() {
	entries, _ := os.ReadDir(defaultLogDir)
	for _, e := range entries {
		p := filepath.Join(defaultLogDir, e.Name())
		size, had := s.sizes[e.Name()]
		switch {
		case !had && !e.IsDir():
			os.Remove(p)
		case had:
			if info, err := e.Info(); err == nil && info.Size() > size {
				os.Truncate(p, size)
			}
		}
	}
	if !s.existed {
		os.Remove(defaultLogDir) // only when empty
	}
}

// requireRoot skips a test that needs root (real containers) when run by
// an ordinary user; `make test` runs as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to start real containers")
	}
}

// requireBinary fails the test when a tool is missing: `make test`
// installs every one of them, so a missing tool is a broken setup.
func requireBinary(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH (make test installs it): %v", name, err)
	}
	return p
}

// writeFile writes data to path or fails the test.
func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// readFile returns the bytes of path or fails the test.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeJSON writes v as JSON to path.
func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(b), 0o644)
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

// envWithout returns the current environment without variables whose names
// start with one of the prefixes, plus extra.
func envWithout(dropPrefixes []string, extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		drop := false
		for _, p := range dropPrefixes {
			if strings.HasPrefix(kv, p) {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// capLines parses the Cap* lines of a /proc/PID/status text into masks
// keyed by line name (CapInh, CapPrm, CapEff, CapBnd, CapAmb).
func capLines(t *testing.T, status string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.HasPrefix(k, "Cap") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			t.Fatalf("bad status line %q: %v", sc.Text(), err)
		}
		out[k] = n
	}
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if _, ok := out[k]; !ok {
			t.Fatalf("no %s line in container output:\n%s", k, status)
		}
	}
	return out
}

// assertCaps checks the container's bounding, permitted and effective sets
// are exactly want and its inheritable and ambient sets are empty.
func assertCaps(t *testing.T, status string, want uint64) {
	t.Helper()
	got := capLines(t, status)
	for _, k := range []string{"CapBnd", "CapPrm", "CapEff"} {
		if got[k] != want {
			t.Errorf("%s = %016x, want %016x\n%s", k, got[k], want, status)
		}
	}
	for _, k := range []string{"CapInh", "CapAmb"} {
		if got[k] != 0 {
			t.Errorf("%s = %016x, want 0", k, got[k])
		}
	}
}

// assertAllSets checks that all five capability sets are exactly want.
func assertAllSets(t *testing.T, status string, want uint64) {
	t.Helper()
	got := capLines(t, status)
	for _, k := range []string{"CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"} {
		if got[k] != want {
			t.Errorf("%s = %016x, want %016x\n%s", k, got[k], want, status)
		}
	}
}

// assertCapsAtMost checks that no capability set of the container holds
// anything outside max.
func assertCapsAtMost(t *testing.T, status string, max uint64) {
	t.Helper()
	got := capLines(t, status)
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if extra := got[k] &^ max; extra != 0 {
			t.Errorf("%s = %016x has %016x outside the allowed %016x\n%s", k, got[k], extra, max, status)
		}
	}
}

// containsAny reports whether s holds one of subs, ignoring case.
func containsAny(s string, subs ...string) bool {
	low := strings.ToLower(s)
	for _, x := range subs {
		if strings.Contains(low, strings.ToLower(x)) {
			return true
		}
	}
	return false
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

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return lastLines(string(b), n)
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
