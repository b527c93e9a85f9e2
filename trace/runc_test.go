package trace

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/trace/internal/cgtest"
)

// busyboxRootfs makes a root file system of the static busybox with the
// applets named, all owned by root.
func busyboxRootfs(t *testing.T, applets ...string) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("needs busybox")
	}
	if out, err := exec.Command("file", "-L", bb).Output(); err == nil && !strings.Contains(string(out), "statically linked") {
		t.Skipf("%s is not static", bb)
	}
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// runcBundle writes a bundle with a config of `runc spec`, changed to run
// args non-interactively with caps in every set, in cgroup cgPath.
func runcBundle(t *testing.T, runc, rootfs, cgPath string, caps capability.Set, args ...string) string {
	t.Helper()
	dir := filepath.Dir(rootfs)
	cmd := exec.Command(runc, "spec")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = args
	names := caps.Names()
	proc["capabilities"] = map[string]any{
		"bounding": names, "effective": names, "permitted": names,
	}
	cfg["root"] = map[string]any{"path": "rootfs", "readonly": false}
	cfg["linux"].(map[string]any)["cgroupsPath"] = cgPath
	if raw, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRuncContainer records a real runc container from its start to its
// exit: runc's init sets up the container inside the cgroup (mounts,
// setuid, capset, all SYS_ADMIN and SETPCAP checks) and must not show.
func TestRuncContainer(t *testing.T) {
	requireTracing(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("needs runc")
	}
	mp, _, err := V2Root()
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := newTracer(t)
	rootfs := busyboxRootfs(t, "sh", "chown", "mknod", "touch")
	id := fmt.Sprintf("capshim-trace-%d", time.Now().UnixNano())
	cgPath := "/" + id
	bundle := runcBundle(t, runc, rootfs, cgPath, capability.DockerDefault,
		"/bin/sh", "-c", "touch /f && chown 1000 /f && mknod /n c 1 3")
	state := t.TempDir()
	rc := func(args ...string) error {
		cmd := exec.Command(runc, append([]string{"--root", state}, args...)...)
		cmd.Dir = bundle
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("runc %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	// runc create leaves the init waiting for start with runc's stdio:
	// a file, as a pipe would stay open until the container exits.
	logPath := filepath.Join(state, "create.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	create := exec.Command(runc, "--root", state, "create", "--bundle", bundle, id)
	create.Dir = bundle
	create.Stdout, create.Stderr = logf, logf
	if err := create.Run(); err != nil {
		out, _ := os.ReadFile(logPath)
		t.Fatalf("runc create: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		rc("delete", "--force", id)
		cgtest.Remove(t, filepath.Join(mp, id)) // if runc left it
	})
	cg, err := CgroupByPath(cgPath)
	if err != nil {
		t.Fatalf("the container's cgroup v2: %v", err)
	}
	if err := tr.Watch(cg); err != nil {
		t.Fatal(err)
	}
	if err := rc("start", id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		cmd := exec.Command(runc, "--root", state, "state", id)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("runc state: %v", err)
		}
		var st struct{ Status string }
		if err := json.Unmarshal(out, &st); err != nil {
			t.Fatal(err)
		}
		if st.Status == "stopped" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container still %s", st.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rec, err := tr.Harvest(cg.ID)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v", rec)
	if err := rc("delete", id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "n")); err != nil {
		t.Fatalf("the workload did not run to its end: %v", err)
	}
	if want := caps(capChown, capMknod); rec.Used != want || rec.Refused != 0 {
		t.Errorf("used %v refused %v, want used %v only", rec.Used, rec.Refused, want)
	}
	if !rec.Complete {
		t.Errorf("incomplete: %q", rec.Gaps)
	}
	if rec.Overcommit == 0 {
		t.Error("no overcommit checks seen")
	}
}
