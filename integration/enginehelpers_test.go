//go:build integration

package integration

// Helpers shared by the engine tests (docker_test.go, podman_test.go,
// crun_test.go): private temp dirs, daemons started and stopped by PID,
// leftover process and mount checks, a docker-archive image, and command
// runners with timeouts. Every name starts with "eng" so it cannot clash
// with the other test files of this package.

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// policyHeader is the common part of the test policies: Docker's three
// capabilities that capshim keeps by default (maskMinimal) and the
// capabilities no rule may grant. Append runtime, rules, etc.
const policyHeader = `mode = "enforce"
default = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
never = ["CAP_SYS_ADMIN", "CAP_SYS_MODULE"]
on_denied_request = "drop"
log = ""
`

// chownPolicy returns a policy for the runtime at runtimePath whose only rule
// lets any container ask for CAP_CHOWN. (A rule naming a `never`
// capability is a load error, so no rule lists CAP_SYS_ADMIN.)
func chownPolicy(runtimePath string) string {
	return fmt.Sprintf("runtime = %q\n", runtimePath) + policyHeader + `
[[rule]]
name = "chown-for-everyone"
capabilities = ["CAP_CHOWN"]
`
}

// brokenPolicy is a policy file with a TOML syntax error (unterminated
// string): capshim must refuse to start the container.
const brokenPolicy = "runtime = \"/usr/bin/runc\"\nmode = \"enforce\ndefault = [\n"

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

// procsMentioning returns the PIDs (other than this process) whose
// command line contains marker. The engines' helper processes (dockerd's
// containerd, containerd-shim-runc-v2, conmon) all name their private
// state directory on their command line, and the test's temp dirs are
// unique, so this finds exactly the processes this test caused.
func procsMentioning(marker string) map[int]string {
	out := map[int]string{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if strings.Contains(cmd, marker) {
			out[pid] = cmd
		}
	}
	return out
}

// killLeftovers reports and then kills (by PID) every process whose
// command line still mentions dir: after an engine was stopped cleanly
// there must be none.
func killLeftovers(t *testing.T, dir string) {
	t.Helper()
	// With the slash, /tmp/x-12 does not match /tmp/x-123.
	marker := strings.TrimSuffix(dir, "/") + "/"
	left := procsMentioning(marker)
	if len(left) == 0 {
		return
	}
	// Their descendants (container processes under a shim or conmon) do
	// not name dir; kill them first, then the helpers themselves.
	kids := descendants(left)
	for pid, cmd := range kids {
		t.Errorf("container process left running (killing pid %d): %s", pid, cmd)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	for pid, cmd := range left {
		t.Errorf("process left running after the engine was stopped (killing pid %d): %s", pid, cmd)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(procsMentioning(marker)) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
}

// descendants returns the descendants of the given processes that are
// not among them, with their command lines.
func descendants(roots map[int]string) map[int]string {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	out := map[int]string{}
	var walk func(int)
	walk = func(pid int) {
		for _, c := range children[pid] {
			if _, isRoot := roots[c]; isRoot {
				continue
			}
			if _, seen := out[c]; seen {
				continue
			}
			b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(c), "cmdline"))
			out[c] = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
			walk(c)
		}
	}
	for pid := range roots {
		walk(pid)
	}
	return out
}

// daemonProc is a long-running engine process (dockerd) started by a test.
type daemonProc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startDaemon starts argv[0] in its own process group with stdout and
// stderr going to logPath, and registers a cleanup that stops it.
func startDaemon(t *testing.T, logPath string, env []string, argv ...string) *daemonProc {
	t.Helper()
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = lf, lf
	// Own process group (a ^C to `go test` does not hit it mid-shutdown);
	// SIGTERM when the test binary dies without running its cleanups (a
	// `go test -timeout` panic), so no daemon outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", argv[0], err)
	}
	d := &daemonProc{name: filepath.Base(argv[0]), cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	t.Logf("started %s pid %d", d.name, cmd.Process.Pid)
	t.Cleanup(func() { d.stop(t) })
	return d
}

// exited reports whether the daemon process has ended.
func (d *daemonProc) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the daemon's PID, waits up to 30s, then SIGKILLs
// it. Safe to call more than once.
func (d *daemonProc) stop(t *testing.T) {
	t.Helper()
	if d.exited() {
		return
	}
	start := time.Now()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		t.Logf("%s (pid %d) stopped after SIGTERM in %v", d.name, d.cmd.Process.Pid, time.Since(start).Round(time.Millisecond))
		return
	case <-time.After(30 * time.Second):
	}
	t.Errorf("%s (pid %d) ignored SIGTERM for 30s, sending SIGKILL", d.name, d.cmd.Process.Pid)
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s (pid %d) survived SIGKILL", d.name, d.cmd.Process.Pid)
	}
}

// tail returns the last n lines of the daemon's log.
func (d *daemonProc) tail(n int) string {
	return tailFile(d.log, n)
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

// buildDockerArchive writes an image archive that both `docker load` of
// Docker 20.10 and `podman load` accept: the OCI layout of
// buildImageArchive plus a docker-archive manifest.json next to it (Docker
// loads OCI layouts only from version 25 on; podman's oci-archive
// transport refuses an index with two images and falls back to
// docker-archive). The tags are docker.io/capshim-test/busybox:1 and
// docker.io/capshim-test/pause:1.
func buildDockerArchive(t *testing.T, out string) {
	t.Helper()
	oci := filepath.Join(t.TempDir(), "oci.tar")
	buildImageArchive(t, oci)
	if err := addDockerManifest(oci, out); err != nil {
		t.Fatalf("converting %s to a docker archive: %v", oci, err)
	}
}

// addDockerManifest copies the OCI layout tar in to out and adds the
// manifest.json of the docker-archive format.
func addDockerManifest(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	type entry struct {
		hdr  *tar.Header
		data []byte
	}
	var entries []entry
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		entries = append(entries, entry{h, data})
		files[filepath.Clean(h.Name)] = data
	}
	blob := func(digest string) (string, []byte, error) {
		algo, hex, ok := strings.Cut(digest, ":")
		if !ok {
			return "", nil, fmt.Errorf("bad digest %q", digest)
		}
		p := filepath.Join("blobs", algo, hex)
		data, ok := files[p]
		if !ok {
			return "", nil, fmt.Errorf("blob %s not in archive", p)
		}
		return p, data, nil
	}
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		return fmt.Errorf("index.json: %w", err)
	}
	type dockerManifest struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var dm []dockerManifest
	for _, m := range index.Manifests {
		_, data, err := blob(m.Digest)
		if err != nil {
			return err
		}
		var man struct {
			Config struct {
				Digest string `json:"digest"`
			} `json:"config"`
			Layers []struct {
				Digest string `json:"digest"`
			} `json:"layers"`
		}
		if err := json.Unmarshal(data, &man); err != nil {
			return fmt.Errorf("manifest %s: %w", m.Digest, err)
		}
		cfg, _, err := blob(man.Config.Digest)
		if err != nil {
			return err
		}
		item := dockerManifest{Config: cfg}
		if name := m.Annotations["io.containerd.image.name"]; name != "" {
			item.RepoTags = []string{name}
		}
		for _, l := range man.Layers {
			lp, _, err := blob(l.Digest)
			if err != nil {
				return err
			}
			item.Layers = append(item.Layers, lp)
		}
		dm = append(dm, item)
	}
	mj, err := json.Marshal(dm)
	if err != nil {
		return err
	}
	o, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(o)
	for _, e := range entries {
		if err := tw.WriteHeader(e.hdr); err != nil {
			o.Close()
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			o.Close()
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(mj)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		o.Close()
		return err
	}
	if _, err := tw.Write(mj); err != nil {
		o.Close()
		return err
	}
	if err := tw.Close(); err != nil {
		o.Close()
		return err
	}
	return o.Close()
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
