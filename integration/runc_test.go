//go:build integration

package integration

// Integration tests of capshim in runtime mode with the real runc
// (/usr/bin/runc): capshim is called with runc's command line, reduces the
// capabilities of the bundle's config.json (or of an exec process.json) and
// execs runc; the container prints the Cap* lines of its /proc/self/status
// and the tests compare them to the masks the policy allows.
//
// Every test uses its own bundle, its own runc state directory (--root) and
// its own container ids, and removes its containers with
// `runc --root R delete --force ID` in t.Cleanup even when it fails. The
// containers keep their own network namespace and get no network setup.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
)

const (
	runcPath   = "/usr/bin/runc"
	maskNetRaw = 1 << 13 // CAP_NET_RAW
)

// printCaps is the container command of most tests.
var printCaps = []string{"sh", "-c", "grep Cap /proc/self/status"}

// dockerCaps are Docker's (and containerd's) 14 default capabilities.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// runcPrivilegedCaps are the 38 capabilities of `docker exec --privileged` in
// Docker 20.10 (shared/fixtures/docker-20.10/exec-process.privileged.json).
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

// droppedByDefault are the Docker defaults that the default policy target
// (AUDIT_WRITE, KILL, NET_BIND_SERVICE) does not keep.
var droppedByDefault = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_SYS_CHROOT",
}

// runcPolicy is the example policy with runc as the runtime.
const runcPolicy = `runtime = "/usr/bin/runc"
mode = "enforce"
default = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
never = ["CAP_SYS_ADMIN", "CAP_SYS_MODULE"]
on_denied_request = "drop"
`

// ---------------------------------------------------------------------------
// Helpers

// bundleSpec describes the config.json of a test bundle.
type bundleSpec struct {
	args        []string          // process.args; default printCaps
	inhAmb      bool              // also put the caps into inheritable and ambient
	extraCaps   []string          // caps added to bounding/effective/permitted (and inh/amb when inhAmb)
	env         []string          // extra process.env entries
	annotations map[string]string // config.json annotations
}

// newBundle makes a bundle directory with a busybox rootfs and a config.json
// generated with runtime-tools: Docker's 14 default capabilities in
// bounding, effective and permitted (and inheritable and ambient when
// bs.inhAmb), no terminal, no user namespace, own network namespace.
func newBundle(t *testing.T, bs bundleSpec) string {
	t.Helper()
	b := filepath.Join(t.TempDir(), "bundle")
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	buildRootfs(t, filepath.Join(b, "rootfs"))
	// Runs after the container cleanups (registered later): nothing may
	// stay mounted under the bundle.
	t.Cleanup(func() { checkNoMounts(t, b) })
	g, err := generate.New("linux")
	if err != nil {
		t.Fatal(err)
	}
	g.SetRootPath("rootfs")
	g.SetHostname("capshim-it")
	args := bs.args
	if args == nil {
		args = printCaps
	}
	g.SetProcessArgs(args)
	g.SetProcessTerminal(false)
	// This VM's root has no CAP_SYS_RESOURCE: never ask for an rlimit above
	// the current hard limit (NOFILE's hard limit may be low here), and set
	// no oomScoreAdj.
	g.ClearProcessRlimits()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	nofile := min(uint64(1024), lim.Max)
	g.AddProcessRlimits("RLIMIT_NOFILE", nofile, nofile)
	g.Config.Process.OOMScoreAdj = nil
	caps := append(append([]string{}, dockerCaps...), bs.extraCaps...)
	c := &rspec.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	if bs.inhAmb {
		c.Inheritable, c.Ambient = caps, caps
	}
	g.Config.Process.Capabilities = c
	for _, e := range bs.env {
		k, v, _ := strings.Cut(e, "=")
		g.AddProcessEnv(k, v)
	}
	for k, v := range bs.annotations {
		g.AddAnnotation(k, v)
	}
	// Keep the container's own network namespace (no network setup) and
	// no user namespace.
	netns := false
	for _, ns := range g.Config.Linux.Namespaces {
		switch {
		case ns.Type == rspec.UserNamespace:
			t.Fatal("generated spec has a user namespace")
		case ns.Type == rspec.NetworkNamespace && ns.Path == "":
			netns = true
		}
	}
	if !netns {
		t.Fatal("generated spec has no network namespace of its own")
	}
	if err := g.SaveToFile(filepath.Join(b, "config.json"), generate.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	return b
}

// checkNoMounts fails the test when a mount point lies under dir.
func checkNoMounts(t *testing.T, dir string) {
	t.Helper()
	for _, mp := range mountsUnder(dir) {
		t.Errorf("leftover mount under the bundle: %s", mp)
	}
}

// containerID returns a container id unique to this test run.
func containerID(t *testing.T) string {
	t.Helper()
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	if len(name) > 60 {
		name = name[:60]
	}
	return strings.ToLower("csit-" + name + "-" + hex.EncodeToString(r[:]))
}

// runcRoot returns a fresh runc state directory.
func runcRoot(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "runc-root")
}

// runcCleanup removes container id from runc state root when the test
// ends, whatever happened.
func runcCleanup(t *testing.T, root, id string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = exec.CommandContext(ctx, runcPath, "--root", root, "delete", "--force", id).Run()
		if runcExists(root, id) {
			t.Errorf("cleanup: container %s still exists in %s", id, root)
		}
	})
}

// runcExists reports whether runc knows container id in state root.
func runcExists(root, id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, runcPath, "--root", root, "state", id).Run() == nil
}

// runcStatus returns runc's status of id ("created", "running",
// "stopped") or "" when it does not exist.
func runcStatus(t *testing.T, root, id string) string {
	t.Helper()
	out, err := exec.Command(runcPath, "--root", root, "state", id).Output()
	if err != nil {
		return ""
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("runc state %s: %v: %s", id, err, out)
	}
	return st.Status
}

// runcWaitStatus waits up to 20s for container id to reach status want.
func runcWaitStatus(t *testing.T, root, id, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		if got = runcStatus(t, root, id); got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("container %s: status %q, want %q", id, got, want)
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

// shimEnv is the environment capshim runs with: PATH and, when policy is
// not empty, CAPSHIM_CONFIG.
func shimEnv(policy string) []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	if policy != "" {
		env = append(env, "CAPSHIM_CONFIG="+policy)
	}
	return env
}

// runBundle runs bundle b in the foreground through capshim with
// policy (env CAPSHIM_CONFIG) in a fresh runc root, with a JSON --log in the
// bundle, and removes the container at cleanup. It returns the result, the
// log path and the container id.
func runBundle(t *testing.T, b, policy string) (res cmdResult, log, id string) {
	t.Helper()
	root := runcRoot(t)
	id = containerID(t)
	runcCleanup(t, root, id)
	log = filepath.Join(b, "log.json")
	res = requireExited(t, runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(globalArgs(root, log), "run", "--bundle", b, id)...))
	return res, log, id
}

// globalArgs is the global part of the runtime command line engines use.
func globalArgs(root, log string) []string {
	return []string{"--root", root, "--log", log, "--log-format", "json"}
}

// logLine is one line of a --log or decision log file; obj is nil when
// the line is not JSON.
type logLine struct {
	raw string
	obj map[string]any
}

// logLines returns the non-empty lines of a log file.
func logLines(t *testing.T, path string) []logLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading log %s: %v", path, err)
	}
	var out []logLine
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil {
			m = nil
		}
		out = append(out, logLine{raw: l, obj: m})
	}
	return out
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

// requireRunc checks the environment every runc test needs.
func requireRunc(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if _, err := os.Stat(runcPath); err != nil {
		t.Fatalf("runc missing at %s (apt-get install runc): %v", runcPath, err)
	}
}

// ---------------------------------------------------------------------------
// 1 + 2: run reduces the bundle's capability sets.

func TestRuncRunReducesCaps(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy)

	tests := []struct {
		name   string
		inhAmb bool // 14 caps also in inheritable and ambient: those become in ∩ target too
		// argv builds capshim's arguments after the global runtime flags.
		argv  func(b, id string) []string
		inDir bool // run from inside the bundle directory
		// flag: policy through --capshim-config=P, inserted at index
		// flagAt of the global flags, instead of CAPSHIM_CONFIG.
		flag   bool
		flagAt int
		// builtin: no CAPSHIM_CONFIG, no flag: /etc/capshim/shim.toml or
		// the embedded default.
		builtin bool
		binary  string
		want    uint64
	}{
		{name: "short -b", argv: func(b, id string) []string { return []string{"run", "-b", b, id} }, want: maskMinimal},
		{name: "long --bundle B", argv: func(b, id string) []string { return []string{"run", "--bundle", b, id} }, want: maskMinimal},
		{name: "--bundle=B", argv: func(b, id string) []string { return []string{"run", "--bundle=" + b, id} }, want: maskMinimal},
		{name: "cwd bundle", inDir: true, argv: func(b, id string) []string { return []string{"run", id} }, want: maskMinimal},
		{name: "inheritable and ambient input", inhAmb: true, argv: func(b, id string) []string { return []string{"run", "-b", b, id} }, want: maskMinimal},
		{name: "--capshim-config first", flag: true, flagAt: 0, argv: func(b, id string) []string { return []string{"run", "--bundle", b, id} }, want: maskMinimal},
		{name: "--capshim-config among globals", flag: true, flagAt: 2, argv: func(b, id string) []string { return []string{"run", "--bundle", b, id} }, want: maskMinimal},
		{name: "embedded default policy", builtin: true, argv: func(b, id string) []string { return []string{"run", "--bundle", b, id} }, want: maskMinimal},
		// Control: the same bundle with plain runc keeps Docker's caps, so
		// the assertion can fail.
		{name: "control plain runc", binary: runcPath, argv: func(b, id string) []string { return []string{"run", "--bundle", b, id} }, want: maskDocker},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.builtin {
				if _, err := os.Stat("/etc/capshim/shim.toml"); err == nil {
					t.Skip("/etc/capshim/shim.toml exists: the embedded default is not in use")
				}
			}
			b := newBundle(t, bundleSpec{inhAmb: tc.inhAmb})
			root, id := runcRoot(t), containerID(t)
			runcCleanup(t, root, id)
			before := readFile(t, filepath.Join(b, "config.json"))
			log := filepath.Join(b, "log.json")

			bin, env := capshimBin, shimEnv(policy)
			args := globalArgs(root, log)
			if tc.flag || tc.builtin {
				env = shimEnv("")
			}
			if tc.flag {
				args = append(args[:tc.flagAt:tc.flagAt], append([]string{"--capshim-config=" + policy}, args[tc.flagAt:]...)...)
			}
			if tc.binary != "" {
				bin = tc.binary
			}
			args = append(args, tc.argv(b, id)...)
			dir := ""
			if tc.inDir {
				dir = b
			}
			res := runCmd(cmdOpts{env: env, dir: dir}, bin, args...)
			if res.code != 0 {
				t.Fatalf("container failed:\n%s", res)
			}
			if !strings.Contains(res.stdout, "CapBnd") {
				t.Fatalf("no Cap lines in container output:\n%s", res)
			}
			t.Logf("container output:\n%s", res.stdout)
			if tc.inhAmb {
				// out.S = in.S ∩ target for every set, so inheritable and
				// ambient keep the target's caps the input had there.
				assertAllSets(t, res.stdout, tc.want)
			} else {
				assertCaps(t, res.stdout, tc.want)
			}
			if t.Failed() {
				t.Logf("details:\n%s", res)
			}
			if runcExists(root, id) {
				t.Errorf("runc run left container %s behind", id)
			}
			if tc.binary == "" {
				// Enforce mode rewrote the bundle and logged its decision.
				if bytes.Equal(before, readFile(t, filepath.Join(b, "config.json"))) {
					t.Errorf("config.json unchanged in enforce mode")
				}
				if len(logMsgs(t, log, "info")) == 0 {
					t.Errorf("no info-level decision line in --log:\n%s", res)
				}
			}
		})
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

// ---------------------------------------------------------------------------
// 3: requests through env and annotations, granted by policy rules.

func TestRuncRequests(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy+`
[[rule]]
name = "chown-for-all"
capabilities = ["CAP_CHOWN"]

[[rule]]
name = "net-team"
capabilities = ["CAP_NET_RAW"]
[rule.match.annotations]
"team.example.com/name" = "net-*"
`)
	tests := []struct {
		name string
		bs   bundleSpec
		want uint64
	}{
		{name: "env CHOWN granted",
			bs:   bundleSpec{env: []string{"CAPSHIM_CAPABILITIES=CAP_CHOWN"}},
			want: maskMinimal | maskChown},
		{name: "env lower case without prefix",
			bs:   bundleSpec{env: []string{"CAPSHIM_CAPABILITIES=chown"}},
			want: maskMinimal | maskChown},
		// SYS_ADMIN is in the input and requested, but in never (and so
		// in no rule).
		{name: "env SYS_ADMIN never",
			bs:   bundleSpec{extraCaps: []string{"CAP_SYS_ADMIN"}, env: []string{"CAPSHIM_CAPABILITIES=CAP_SYS_ADMIN"}},
			want: maskMinimal},
		{name: "env SYS_ADMIN and CHOWN",
			bs:   bundleSpec{extraCaps: []string{"CAP_SYS_ADMIN"}, env: []string{"CAPSHIM_CAPABILITIES=CAP_SYS_ADMIN,CAP_CHOWN"}},
			want: maskMinimal | maskChown},
		// NET_RAW is in the input but no matching rule allows it.
		{name: "env NET_RAW not allowed",
			bs:   bundleSpec{env: []string{"CAPSHIM_CAPABILITIES=CAP_NET_RAW"}},
			want: maskMinimal},
		{name: "annotation CHOWN granted",
			bs:   bundleSpec{annotations: map[string]string{"capshim.io/capabilities": "CAP_CHOWN"}},
			want: maskMinimal | maskChown},
		{name: "annotation SYS_ADMIN never",
			bs:   bundleSpec{extraCaps: []string{"CAP_SYS_ADMIN"}, annotations: map[string]string{"capshim.io/capabilities": "CAP_SYS_ADMIN"}},
			want: maskMinimal},
		{name: "annotation glob matches",
			bs: bundleSpec{annotations: map[string]string{
				"capshim.io/capabilities": "CAP_NET_RAW",
				"team.example.com/name":   "net-ops",
			}},
			want: maskMinimal | maskNetRaw},
		{name: "annotation glob does not match",
			bs: bundleSpec{annotations: map[string]string{
				"capshim.io/capabilities": "CAP_NET_RAW",
				"team.example.com/name":   "web",
			}},
			want: maskMinimal},
		{name: "annotation rule without its annotation",
			bs:   bundleSpec{annotations: map[string]string{"capshim.io/capabilities": "CAP_NET_RAW,CAP_CHOWN"}},
			want: maskMinimal | maskChown},
		{name: "no request",
			bs:   bundleSpec{},
			want: maskMinimal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, tc.bs)
			res, _, _ := runBundle(t, b, policy)
			if res.code != 0 {
				t.Fatalf("container failed:\n%s", res)
			}
			assertCaps(t, res.stdout, tc.want)
			if t.Failed() {
				t.Logf("details:\n%s", res)
			}
		})
	}
}

// TestRuncRuleListsNeverCap: a rule that lists a capability of never
// (SYS_ADMIN) is a load error, so capshim fails closed: nothing starts,
// config.json is unchanged, and the --log line names the rule and never.
func TestRuncRuleListsNeverCap(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy+`
[[rule]]
name = "admin"
capabilities = ["CAP_CHOWN", "CAP_SYS_ADMIN"]
`)
	b := newBundle(t, bundleSpec{extraCaps: []string{"CAP_SYS_ADMIN"}, env: []string{"CAPSHIM_CAPABILITIES=CAP_SYS_ADMIN,CAP_CHOWN"}})
	before := readFile(t, filepath.Join(b, "config.json"))
	res, log, _ := runBundle(t, b, policy)
	if res.code == 0 {
		t.Fatalf("capshim started a container under a policy whose rule lists a never capability:\n%s", res)
	}
	if strings.Contains(res.stdout, "CapBnd") {
		t.Errorf("the container ran although capshim failed")
	}
	if !bytes.Equal(before, readFile(t, filepath.Join(b, "config.json"))) {
		t.Errorf("config.json changed")
	}
	msg := checkErrorLog(t, log, "json")
	for _, want := range []string{`"admin"`, "CAP_SYS_ADMIN", "never"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error line %q does not name %s", msg, want)
		}
	}
}

// TestRuncRequestNoEscalation: a granted request for a capability the
// engine did not give is not added.
func TestRuncRequestNoEscalation(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy+`
[[rule]]
name = "time"
capabilities = ["CAP_SYS_TIME"]
`)
	b := newBundle(t, bundleSpec{env: []string{"CAPSHIM_CAPABILITIES=CAP_SYS_TIME"}})
	root, id := runcRoot(t), containerID(t)
	runcCleanup(t, root, id)
	res := runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(globalArgs(root, filepath.Join(b, "log.json")), "run", "--bundle", b, id)...)
	if res.code != 0 {
		t.Fatalf("container failed:\n%s", res)
	}
	assertCaps(t, res.stdout, maskMinimal)
	if t.Failed() {
		t.Logf("details:\n%s", res)
	}
}

// ---------------------------------------------------------------------------
// 4: create/start, exec --process, exec --cap, kill/delete pass-through.

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

// ---------------------------------------------------------------------------
// 5: fail closed.

func TestRuncFailClosed(t *testing.T) {
	requireRunc(t)
	good := writePolicy(t, runcPolicy)
	cases := []struct {
		name string
		// policy returns the policy path for this case.
		policy func(t *testing.T) string
		// spoil damages the bundle; it returns false when config.json is
		// gone (nothing to compare).
		spoil func(t *testing.T, b string) bool
		// names are substrings one of which the error message must hold
		// (case-insensitive) to name the problem.
		names []string
		// format is the --log-format.
		format string
	}{
		{name: "policy syntax error",
			policy: func(t *testing.T) string { return writePolicy(t, runcPolicy+"[[rule]\nname = \n") },
			names:  []string{"polic", "shim.toml", "toml"}},
		{name: "policy unknown key",
			policy: func(t *testing.T) string { return writePolicy(t, runcPolicy+"frobnicate = true\n") },
			names:  []string{"frobnicate"}},
		{name: "policy unknown capability",
			policy: func(t *testing.T) string {
				return writePolicy(t, strings.Replace(runcPolicy, `"CAP_KILL"`, `"CAP_BOGUS"`, 1))
			},
			names: []string{"CAP_BOGUS", "bogus"}},
		{name: "policy missing",
			policy: func(t *testing.T) string { return filepath.Join(t.TempDir(), "absent.toml") },
			names:  []string{"absent.toml", "polic"}},
		{name: "config.json missing",
			spoil: func(t *testing.T, b string) bool {
				if err := os.Remove(filepath.Join(b, "config.json")); err != nil {
					t.Fatal(err)
				}
				return false
			},
			names: []string{"config.json"}},
		{name: "config.json truncated",
			spoil: func(t *testing.T, b string) bool {
				p := filepath.Join(b, "config.json")
				data := readFile(t, p)
				writeFile(t, p, string(data[:len(data)/2]), 0o644)
				return true
			},
			names: []string{"config.json"}},
		{name: "config.json not an object",
			spoil: func(t *testing.T, b string) bool {
				writeFile(t, filepath.Join(b, "config.json"), `["not","a","spec"]`, 0o644)
				return true
			},
			names: []string{"config.json"}},
		{name: "text log format policy syntax error", format: "text",
			policy: func(t *testing.T) string { return writePolicy(t, "runtime = \n") },
			names:  []string{"polic", "shim.toml", "toml"}},
		{name: "text log format truncated config", format: "text",
			spoil: func(t *testing.T, b string) bool {
				p := filepath.Join(b, "config.json")
				data := readFile(t, p)
				writeFile(t, p, string(data[:len(data)/2]), 0o644)
				return true
			},
			names: []string{"config.json"}},
	}
	for _, tc := range cases {
		for _, cmdWord := range []string{"run", "create"} {
			t.Run(tc.name+"/"+cmdWord, func(t *testing.T) {
				// The container would leave a marker in its rootfs if it ran.
				b := newBundle(t, bundleSpec{args: []string{"sh", "-c", "echo ran > /ran-marker"}})
				root, id := runcRoot(t), containerID(t)
				runcCleanup(t, root, id)
				policy := good
				if tc.policy != nil {
					policy = tc.policy(t)
				}
				hasConfig := true
				if tc.spoil != nil {
					hasConfig = tc.spoil(t, b)
				}
				var before []byte
				if hasConfig {
					before = readFile(t, filepath.Join(b, "config.json"))
				}
				format := tc.format
				if format == "" {
					format = "json"
				}
				log := filepath.Join(b, "log.json")
				args := []string{"--root", root, "--log", log, "--log-format", format, cmdWord, "--bundle", b}
				if cmdWord == "create" {
					args = append(args, "--pid-file", filepath.Join(b, "init.pid"))
				}
				res := requireExited(t, runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(args, id)...))

				if res.code == 0 {
					t.Errorf("capshim %s exited 0, want non-zero", cmdWord)
				}
				if runcExists(root, id) {
					t.Errorf("container %s exists after a failed %s", id, cmdWord)
				}
				if _, err := os.Stat(filepath.Join(b, "rootfs", "ran-marker")); err == nil {
					t.Errorf("the container ran")
				}
				if hasConfig {
					if after, err := os.ReadFile(filepath.Join(b, "config.json")); err != nil {
						t.Errorf("config.json: %v", err)
					} else if !bytes.Equal(before, after) {
						t.Errorf("config.json changed:\nbefore: %s\nafter:  %s", before, after)
					}
				} else if _, err := os.Stat(filepath.Join(b, "config.json")); err == nil {
					t.Errorf("capshim created a config.json")
				}
				msg := checkErrorLog(t, log, format)
				if msg != "" && !containsAny(msg, tc.names...) {
					t.Errorf("error message %q names none of %q", msg, tc.names)
				}
				if !strings.Contains(res.stderr, "capshim:") {
					t.Errorf("stderr does not carry capshim's message")
				} else if format == "json" && msg != "" && !strings.Contains(res.stderr, msg) {
					t.Errorf("stderr does not carry the logged message %q", msg)
				}
				if t.Failed() {
					t.Logf("details:\n%s", res)
				}
			})
		}
	}
}

// TestRuncDeniedRequestFail: with on_denied_request = "fail" a request the
// policy does not grant fails the start (fail closed, like the errors).
func TestRuncDeniedRequestFail(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, strings.Replace(runcPolicy, `on_denied_request = "drop"`, `on_denied_request = "fail"`, 1))
	for _, tc := range []struct {
		name string
		bs   bundleSpec
		ok   bool
	}{
		{name: "denied env request", bs: bundleSpec{env: []string{"CAPSHIM_CAPABILITIES=CAP_NET_RAW"}}},
		{name: "denied annotation request", bs: bundleSpec{annotations: map[string]string{"capshim.io/capabilities": "CAP_SYS_ADMIN"}}},
		{name: "no request", ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, tc.bs)
			before := readFile(t, filepath.Join(b, "config.json"))
			res, log, _ := runBundle(t, b, policy)
			if tc.ok {
				if res.code != 0 {
					t.Fatalf("container failed:\n%s", res)
				}
				assertCaps(t, res.stdout, maskMinimal)
				return
			}
			if res.code == 0 {
				t.Errorf("capshim run exited 0 for a denied request with on_denied_request = fail")
			}
			if strings.Contains(res.stdout, "CapBnd") {
				t.Errorf("the container ran")
			}
			if !bytes.Equal(before, readFile(t, filepath.Join(b, "config.json"))) {
				t.Errorf("config.json changed")
			}
			checkErrorLog(t, log, "json")
			if t.Failed() {
				t.Logf("details:\n%s", res)
			}
		})
	}
}

// checkErrorLog checks the --log file holds an error line written by capshim
// in the given format and returns its message ("" after a failure).
func checkErrorLog(t *testing.T, log, format string) string {
	t.Helper()
	data, err := os.ReadFile(log)
	if err != nil {
		t.Errorf("no --log file: %v", err)
		return ""
	}
	switch format {
	case "json":
		for _, l := range logLines(t, log) {
			if l.obj == nil || l.obj["level"] != "error" {
				continue
			}
			msg, _ := l.obj["msg"].(string)
			if !strings.HasPrefix(msg, "capshim:") {
				continue
			}
			if ts, _ := l.obj["time"].(string); ts == "" {
				t.Errorf("error line has no time: %s", l.raw)
			} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				t.Errorf("error line time %q is not RFC3339: %v", ts, err)
			}
			return msg
		}
		t.Errorf(`--log has no JSON line with "level":"error" and a msg starting "capshim:":\n%s`, data)
	case "text":
		// logrus text format: time="..." level=error msg="capshim: ..."
		re := regexp.MustCompile(`level=error msg="(capshim:(?:[^"\\]|\\.)*)"`)
		for _, l := range strings.Split(string(data), "\n") {
			if m := re.FindStringSubmatch(l); m != nil {
				if json.Valid([]byte(l)) {
					t.Errorf("text log line is JSON: %s", l)
				}
				return m[1]
			}
		}
		t.Errorf(`--log has no text line with level=error msg="capshim: ...":\n%s`, data)
	}
	return ""
}

// ---------------------------------------------------------------------------
// 6: exit code.

func TestRuncExitCode(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy)
	for _, code := range []int{0, 7, 42} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			b := newBundle(t, bundleSpec{args: []string{"sh", "-c", fmt.Sprintf("exit %d", code)}})
			root, id := runcRoot(t), containerID(t)
			runcCleanup(t, root, id)
			res := requireExited(t, runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(globalArgs(root, filepath.Join(b, "log.json")), "run", "--bundle", b, id)...))
			if res.code != code {
				t.Errorf("capshim exit code %d, want %d\n%s", res.code, code, res)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 7: audit mode.

func TestRuncAuditMode(t *testing.T) {
	requireRunc(t)
	decisions := filepath.Join(t.TempDir(), "decisions.jsonl")
	policy := writePolicy(t, strings.Replace(runcPolicy, `mode = "enforce"`, `mode = "audit"`, 1)+
		fmt.Sprintf("log = %q\n", decisions))
	for _, inhAmb := range []bool{false, true} {
		t.Run(fmt.Sprintf("inheritable-ambient=%v", inhAmb), func(t *testing.T) {
			b := newBundle(t, bundleSpec{inhAmb: inhAmb})
			before := readFile(t, filepath.Join(b, "config.json"))
			res, _, id := runBundle(t, b, policy)
			if res.code != 0 {
				t.Fatalf("container failed:\n%s", res)
			}
			if after := readFile(t, filepath.Join(b, "config.json")); !bytes.Equal(before, after) {
				t.Errorf("audit mode changed config.json")
			}
			// Audit changes nothing: the container has what the engine gave.
			if inhAmb {
				assertAllSets(t, res.stdout, maskDocker)
			} else {
				assertCaps(t, res.stdout, maskDocker)
			}
			// The decision log names the container and what would be dropped.
			var line string
			for _, l := range logLines(t, decisions) {
				if strings.Contains(l.raw, id) {
					if l.obj == nil {
						t.Errorf("decision log line is not JSON: %s", l.raw)
					}
					line = l.raw
				}
			}
			if line == "" {
				t.Fatalf("decision log %s has no line naming %s:\n%s\n%s", decisions, id, readFile(t, decisions), res)
			}
			runcCheckDropped(t, line)
			if t.Failed() {
				t.Logf("details:\n%s", res)
			}
		})
	}
}

// runcCheckDropped checks a JSON decision line names every capability the
// default policy drops from Docker's 14: in its "dropped" field when it has
// one, else anywhere in the line.
func runcCheckDropped(t *testing.T, line string) {
	t.Helper()
	where := line
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(line), &m) == nil && m["dropped"] != nil {
		where = string(m["dropped"])
	}
	for _, c := range droppedByDefault {
		if !strings.Contains(where, c) {
			t.Errorf("decision line does not name dropped %s: %s", c, line)
		}
	}
}

// TestRuncDecisionLog: in enforce mode the policy's log file gets a JSON
// line for the container too.
func TestRuncDecisionLog(t *testing.T) {
	requireRunc(t)
	decisions := filepath.Join(t.TempDir(), "decisions.jsonl")
	policy := writePolicy(t, runcPolicy+fmt.Sprintf("log = %q\n", decisions))
	b := newBundle(t, bundleSpec{})
	root, id := runcRoot(t), containerID(t)
	runcCleanup(t, root, id)
	res := runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(globalArgs(root, filepath.Join(b, "log.json")), "run", "--bundle", b, id)...)
	if res.code != 0 {
		t.Fatalf("container failed:\n%s", res)
	}
	assertCaps(t, res.stdout, maskMinimal)
	found := false
	for _, l := range logLines(t, decisions) {
		if l.obj != nil && strings.Contains(l.raw, id) {
			found = true
			runcCheckDropped(t, l.raw)
		}
	}
	if !found {
		t.Errorf("decision log has no JSON line naming %s:\n%s", id, readFile(t, decisions))
	}
	if t.Failed() {
		t.Logf("details:\n%s", res)
	}
}

// ---------------------------------------------------------------------------
// 8: --version.

func TestRuncVersion(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy)
	res := runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, "--version")
	if res.code != 0 {
		t.Fatalf("capshim --version failed:\n%s", res)
	}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "capshim") {
		t.Fatalf("want a capshim line then runc's version lines:\n%s", res)
	}
	want, err := exec.Command(runcPath, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	rest := strings.Join(lines[1:], "\n")
	if !strings.Contains(rest, strings.TrimSpace(string(want))) {
		t.Errorf("runc's version lines missing after the capshim line:\nwant:\n%s\ngot:\n%s", want, res.stdout)
	}
}
