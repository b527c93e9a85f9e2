//go:build integration

package integration

// create and start through capshim, exec with a process.json (as dockerd's
// shim writes it, also detached) and with --cap, and state, kill and
// delete going straight to runc.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// runcPrivilegedCaps are the 38 capabilities dockerd 20.10 puts into the
// process.json of `docker exec --privileged`.
var runcPrivilegedCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
}

// runcExecProcess is a process.json for `runc exec --process` as dockerd's shim
// writes it, with caps in bounding, effective and permitted.
func runcExecProcess(caps []string, args ...string) rspec.Process {
	return rspec.Process{
		User: rspec.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}},
		Args: args,
		Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cwd:  "/",
		Capabilities: &rspec.LinuxCapabilities{
			Bounding: caps, Effective: caps, Permitted: caps,
		},
	}
}

// runcWaitOutput waits up to 10s for the file to contain want and returns its
// content.
func runcWaitOutput(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), want) || time.Now().After(deadline) {
			return string(data)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRuncCreateStartExec(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy)
	env := shimEnv(policy)
	b := newBundle(t, bundleSpec{args: []string{"sleep", "1000"}})
	root, id := runcRoot(t), containerID(t)
	runcCleanup(t, root, id)
	log := filepath.Join(b, "log.json")
	pidFile := filepath.Join(b, "init.pid")
	g := globalArgs(root, log)
	shim := func(args ...string) cmdResult {
		t.Helper()
		return runCmd(cmdOpts{env: env}, capshimBin, append(append([]string{}, g...), args...)...)
	}

	if res := shim("create", "--bundle", b, "--pid-file", pidFile, id); res.code != 0 {
		t.Fatalf("create failed:\n%s", res)
	}
	if st := runcStatus(t, root, id); st != "created" {
		t.Fatalf("after create: status %q, want created", st)
	}
	if _, err := os.Stat(pidFile); err != nil {
		t.Errorf("create wrote no pid file: %v", err)
	}
	if res := shim("start", id); res.code != 0 {
		t.Fatalf("start failed:\n%s", res)
	}
	runcWaitStatus(t, root, id, "running")

	// The init process itself got the reduced set.
	pid := strings.TrimSpace(string(readFile(t, pidFile)))
	status := string(readFile(t, "/proc/"+pid+"/status"))
	t.Run("init process", func(t *testing.T) { assertCaps(t, status, maskMinimal) })

	dir := t.TempDir()
	procs := []struct {
		name  string
		caps  []string
		shim  bool
		want  uint64
		extra []string // extra exec flags
	}{
		{name: "process docker 14", caps: dockerCaps, shim: true, want: maskMinimal},
		{name: "process privileged 38", caps: runcPrivilegedCaps, shim: true, want: maskMinimal},
		// dockerd's shim: exec --process P --detach --pid-file F ID.
		{name: "process docker 14 detached like dockerd", caps: dockerCaps, shim: true, want: maskMinimal,
			extra: []string{"--detach", "--pid-file", filepath.Join(dir, "exec.pid")}},
		// Control: plain runc honours the process.json.
		{name: "control plain runc docker 14", caps: dockerCaps, want: maskDocker},
	}
	for i, p := range procs {
		t.Run(p.name, func(t *testing.T) {
			pf := filepath.Join(dir, fmt.Sprintf("process-%d.json", i))
			writeJSON(t, pf, runcExecProcess(p.caps, "grep", "Cap", "/proc/self/status"))
			bin := runcPath
			if p.shim {
				bin = capshimBin
			}
			args := append(append(append([]string{}, g...), "exec", "--process", pf), p.extra...)
			res := runCmd(cmdOpts{env: env, outDir: dir}, bin, append(args, id)...)
			if res.code != 0 {
				t.Fatalf("exec failed:\n%s", res)
			}
			if slices.Contains(p.extra, "--detach") {
				// runc returned at once; the process writes to the
				// stdout file it inherited.
				res.stdout = runcWaitOutput(t, res.stdoutPath, "CapAmb")
			}
			assertCaps(t, res.stdout, p.want)
			if t.Failed() {
				t.Logf("details:\n%s", res)
			}
		})
	}

	caps := []struct {
		name string
		bin  string
		want uint64
	}{
		{name: "--cap SYS_ADMIN CHOWN through capshim", bin: capshimBin, want: maskMinimal},
		// Control: plain runc adds the --cap capabilities.
		{name: "control plain runc --cap", bin: runcPath, want: maskMinimal | maskChown | maskSysAdmin},
	}
	for _, c := range caps {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{}, g...), "exec", "--cap", "CAP_SYS_ADMIN", "--cap", "CAP_CHOWN", id, "grep", "Cap", "/proc/self/status")
			res := runCmd(cmdOpts{env: env}, c.bin, args...)
			if res.code != 0 {
				t.Fatalf("exec failed:\n%s", res)
			}
			got := capLines(t, res.stdout)
			for _, k := range []string{"CapBnd", "CapPrm", "CapEff"} {
				if got[k] != c.want {
					t.Errorf("%s = %016x, want %016x", k, got[k], c.want)
				}
			}
			if c.bin == capshimBin {
				for k, v := range got {
					if v&(maskChown|maskSysAdmin) != 0 {
						t.Errorf("%s = %016x has CAP_CHOWN or CAP_SYS_ADMIN", k, v)
					}
				}
			}
			if t.Failed() {
				t.Logf("details:\n%s", res)
			}
		})
	}

	// state, kill and delete go straight through capshim to runc.
	if res := shim("state", id); res.code != 0 || !strings.Contains(res.stdout, `"status": "running"`) {
		t.Errorf("state through capshim: want runc's JSON with status running:\n%s", res)
	}
	if res := shim("kill", id, "KILL"); res.code != 0 {
		t.Fatalf("kill through capshim failed:\n%s", res)
	}
	runcWaitStatus(t, root, id, "stopped")
	if res := shim("delete", id); res.code != 0 {
		t.Fatalf("delete through capshim failed:\n%s", res)
	}
	if runcExists(root, id) {
		t.Errorf("container %s still exists after capshim delete", id)
	}
}
