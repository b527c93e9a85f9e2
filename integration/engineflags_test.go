//go:build integration

package integration

// The engines' own capability flags are requests: docker and podman
// --cap-add and Kubernetes securityContext.capabilities.add are granted
// where a rule allows them and dropped, and shown as denied in the logs
// and in capshim explain, where none does; --privileged stays clamped;
// engine_requests = false gives the old behaviour, where only the flag
// and a request together gave the capability.

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const maskNetAdmin = 1 << 12 // CAP_NET_ADMIN

// ruleNetAdminOnly lets any container ask for CAP_NET_ADMIN; ruleNetRaw the
// same for CAP_NET_RAW.
const (
	ruleNetAdminOnly = "[[rule]]\nname = \"net-admin\"\ncapabilities = [\"CAP_NET_ADMIN\"]\n"
	ruleNetRaw       = "[[rule]]\nname = \"net-raw\"\ncapabilities = [\"CAP_NET_RAW\"]\n"
)

// flagsPolicy is a policy of these tests with its own decision log and
// state directory next to it.
type flagsPolicy struct{ path, log, state string }

// newFlagsPolicy writes runcPolicy with top (more top-level keys) and rules.
func newFlagsPolicy(t *testing.T, top string, rules ...string) flagsPolicy {
	t.Helper()
	p := flagsPolicy{path: writePolicy(t, "")}
	dir := filepath.Dir(p.path)
	p.log, p.state = filepath.Join(dir, "decisions.log"), filepath.Join(dir, "state")
	text := runcPolicy + top + fmt.Sprintf("log = %q\nstate_dir = %q\n", p.log, p.state)
	for _, r := range rules {
		text += "\n" + r
	}
	writeFile(t, p.path, text, 0o644)
	return p
}

// engineDecision returns the last decision of the log that names an engine
// request, or fails.
func engineDecision(t *testing.T, log string) map[string]any {
	t.Helper()
	var last map[string]any
	for _, l := range logLines(t, log) {
		if l.obj != nil && l.obj["engine_request"] != nil {
			last = l.obj
		}
	}
	if last == nil {
		data, _ := os.ReadFile(log)
		t.Fatalf("no decision in %s names an engine request:\n%s", log, data)
	}
	return last
}

// checkEngineDecision checks a decision's engine request: the flag that
// made it, and whether CAP_NET_ADMIN was denied.
func checkEngineDecision(t *testing.T, d map[string]any, flag string, denied bool) {
	t.Helper()
	names := func(k string) []string {
		var out []string
		v, _ := d[k].([]any)
		for _, x := range v {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	if d["engine_flag"] != flag || !slices.Contains(names("engine_request"), "CAP_NET_ADMIN") {
		t.Errorf("decision %v: want CAP_NET_ADMIN asked for by %s", d, flag)
	}
	if got := slices.Contains(names("denied"), "CAP_NET_ADMIN"); got != denied {
		t.Errorf("decision %v: CAP_NET_ADMIN denied %v, want %v", d, got, denied)
	}
	if got := slices.Contains(names("granted"), "CAP_NET_ADMIN"); got == denied {
		t.Errorf("decision %v: CAP_NET_ADMIN granted %v, want %v", d, got, !denied)
	}
}

// TestEngineFlagsDocker: docker run --cap-add under capshim, with and
// without a rule allowing it, --privileged, docker exec, the runtime log,
// capshim explain, and engine_requests = false.
func TestEngineFlagsDocker(t *testing.T) {
	allow := newFlagsPolicy(t, "", ruleNetAdminOnly)
	deny := newFlagsPolicy(t, "")
	off := newFlagsPolicy(t, "engine_requests = false\n", ruleNetAdminOnly)
	runtime := func(p flagsPolicy) map[string]any {
		return map[string]any{"path": capshimBin, "runtimeArgs": []string{"--capshim-config=" + p.path}}
	}
	e := dockerStart(t, map[string]any{"runtimes": map[string]any{
		"capshim-allow": runtime(allow), "capshim-deny": runtime(deny), "capshim-off": runtime(off),
	}}, nil)

	t.Run("run", func(t *testing.T) {
		dockerRunCases(t, e, []dockerRunCase{
			// Control: runc alone gives Docker's 14 and the added one.
			{name: "runc control", args: []string{"--runtime", "runc", "--cap-add", "NET_ADMIN"}, want: maskDocker | maskNetAdmin},
			{name: "--cap-add allowed by a rule", args: []string{"--runtime", "capshim-allow", "--cap-add", "NET_ADMIN"}, want: maskMinimal | maskNetAdmin},
			{name: "no --cap-add asks for nothing", args: []string{"--runtime", "capshim-allow"}, want: maskMinimal},
			// Docker's own default is no request: NET_RAW is in its 14.
			{name: "--cap-add of a default capability", args: []string{"--runtime", "capshim-allow", "--cap-add", "NET_RAW"}, want: maskMinimal},
			{name: "--cap-drop ALL --cap-add", args: []string{"--runtime", "capshim-allow", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN"}, want: maskNetAdmin},
			{name: "--cap-add without a rule", args: []string{"--runtime", "capshim-deny", "--cap-add", "NET_ADMIN"}, want: maskMinimal},
			// Under plain runc --privileged fails here (root lacks
			// CAP_SYS_RESOURCE); capshim keeps the target, and the rule
			// allowing NET_ADMIN does not make it a request.
			{name: "--privileged stays clamped", args: []string{"--runtime", "capshim-allow", "--privileged"}, want: maskMinimal},
			{name: "engine_requests off: --cap-add alone", args: []string{"--runtime", "capshim-off", "--cap-add", "NET_ADMIN"}, want: maskMinimal},
			{name: "engine_requests off: --cap-add and the env", args: []string{"--runtime", "capshim-off", "--cap-add", "NET_ADMIN", "-e", "CAPSHIM_CAPABILITIES=CAP_NET_ADMIN"}, want: maskMinimal | maskNetAdmin},
		})
		checkEngineDecision(t, engineDecision(t, allow.log), "docker --cap-add", false)
		checkEngineDecision(t, engineDecision(t, deny.log), "docker --cap-add", true)
		for _, l := range logLines(t, off.log) {
			if l.obj != nil && l.obj["engine_request"] != nil {
				t.Errorf("engine_requests = false, but a decision names an engine request: %s", l.raw)
			}
		}
	})

	// A running container: its runtime log, capshim explain and docker
	// exec, for a denied and a granted --cap-add.
	for _, tc := range []struct {
		name    string
		runtime string
		pol     flagsPolicy
		want    uint64
		explain string
	}{
		{name: "denied", runtime: "capshim-deny", pol: deny, want: maskMinimal,
			explain: "docker --cap-add asked for CAP_NET_ADMIN: denied CAP_NET_ADMIN (no matching rule allows it"},
		{name: "granted", runtime: "capshim-allow", pol: allow, want: maskMinimal | maskNetAdmin,
			explain: "docker --cap-add asked for CAP_NET_ADMIN: granted CAP_NET_ADMIN"},
	} {
		t.Run("running container "+tc.name, func(t *testing.T) {
			name := "ef-" + tc.name
			r := e.docker("run", "-d", "--name", name, "--network", "none", "--runtime", tc.runtime, "--cap-add", "NET_ADMIN", imageBusybox, "sleep", "300")
			if r.err != nil {
				t.Fatalf("%v\ndockerd log:\n%s", r, e.daemon.tail(20))
			}
			t.Cleanup(func() { e.docker("rm", "-f", name) })
			id := strings.TrimSpace(r.stdout)
			t.Logf("$ %s\n%s", r.cmdline, id)
			if msgs := logMsgs(t, dockerRuntimeLog(t, e, id), "info"); !containsAnyOf(msgs, tc.explain) {
				t.Errorf("the runtime log does not say %q:\n%s", tc.explain, strings.Join(msgs, "\n"))
			} else {
				t.Logf("runtime log: %s", msgs[0])
			}
			ex := runCmd(cmdOpts{}, capshimBin, "explain", "--state-dir", tc.pol.state, id[:12])
			if ex.err != nil || !strings.Contains(ex.stdout, "  "+tc.explain) {
				t.Errorf("capshim explain does not say %q: %v", tc.explain, ex)
			}
			t.Logf("$ capshim explain %s\n%s", id[:12], ex.stdout)
			// An exec gets what its container was granted, and no more
			// when privileged.
			x := e.docker("exec", name, "grep", "Cap", "/proc/self/status")
			if x.err != nil {
				t.Fatal(x)
			}
			assertCaps(t, x.stdout, tc.want)
			t.Logf("$ %s\n%s", x.cmdline, x.stdout)
			x = e.docker("exec", "--privileged", name, "grep", "Cap", "/proc/self/status")
			if x.err != nil {
				t.Fatal(x)
			}
			assertCapsAtMost(t, x.stdout, tc.want)
		})
	}
}

// fileSize is the size of the file at path, or 0.
func fileSize(path string) int {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return int(st.Size())
}

// containsAnyOf reports whether one of lines holds sub.
func containsAnyOf(lines []string, sub string) bool {
	return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, sub) })
}

// dockerRuntimeLog finds the --log file of a running Docker container: in
// its bundle, which the runc shim keeps under the daemon's exec root.
func dockerRuntimeLog(t *testing.T, e *dockerEngine, id string) string {
	t.Helper()
	var found string
	filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "log.json" && filepath.Base(filepath.Dir(path)) == id {
			found = path
			return filepath.SkipAll
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no log.json of container %s under %s", id, e.dir)
	}
	return found
}

// TestEngineFlagsPodman: podman run --cap-add under capshim. Podman's
// default is 11 capabilities, so NET_RAW (in Docker's 14) is a request
// there too.
func TestEngineFlagsPodman(t *testing.T) {
	p := podmanSetup(t)
	allow := newFlagsPolicy(t, "", ruleNetAdminOnly, ruleNetRaw)
	deny := newFlagsPolicy(t, "")
	off := newFlagsPolicy(t, "engine_requests = false\n", ruleNetAdminOnly)
	via := func(pol flagsPolicy) []string {
		return []string{"--runtime", capshimBin, "--runtime-flag", "capshim-config=" + pol.path}
	}
	cases := []struct {
		name   string
		global []string
		args   []string
		want   uint64
		atMost bool
	}{
		{name: "runc control", global: []string{"--runtime", "/usr/bin/runc"}, args: []string{"--cap-add", "NET_ADMIN"}, want: maskPodman | maskNetAdmin},
		{name: "--cap-add allowed by a rule", global: via(allow), args: []string{"--cap-add", "NET_ADMIN"}, want: maskPodmanMinimal | maskNetAdmin},
		{name: "--cap-add NET_RAW, beyond Podman's 11", global: via(allow), args: []string{"--cap-add", "NET_RAW"}, want: maskPodmanMinimal | maskNetRaw},
		{name: "--cap-add without a rule", global: via(deny), args: []string{"--cap-add", "NET_ADMIN"}, want: maskPodmanMinimal},
		{name: "--privileged stays clamped", global: via(allow), args: []string{"--privileged"}, want: maskMinimal, atMost: true},
		{name: "engine_requests off", global: via(off), args: []string{"--cap-add", "NET_ADMIN"}, want: maskPodmanMinimal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, tc.global...), "run", "--rm", "--network", "none")
			args = append(append(args, tc.args...), imageBusybox, "grep", "Cap", "/proc/self/status")
			r := p.podman("containers.conf", args...)
			if r.err != nil {
				t.Fatalf("%v", r)
			}
			t.Logf("$ %s\n%s(%v)", r.cmdline, r.stdout, r.took.Round(time.Millisecond))
			if tc.atMost {
				assertCapsAtMost(t, r.stdout, tc.want)
			} else {
				assertCaps(t, r.stdout, tc.want)
			}
		})
	}
	checkEngineDecision(t, engineDecision(t, deny.log), "podman --cap-add", true)
}

// kubeletMaskedPaths and kubeletReadonlyPaths are what kubelet sends for
// a container that is not privileged (procMount Default); the CRI plugin
// writes them into the spec as they are, and none for a privileged one.
var (
	kubeletMaskedPaths = []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"}
	kubeletReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// TestEngineFlagsCRI: securityContext.capabilities.add through containerd's
// CRI, driven as kubelet drives it, with a rule for the namespaces net-*
// (a key the pod cannot forge), a privileged pod, and engine_requests =
// false.
func TestEngineFlagsCRI(t *testing.T) {
	requireContainerd(t)
	ruleNet := ruleNetAdminOnly + "[rule.match.annotations]\n\"io.kubernetes.cri.sandbox-namespace\" = \"net-*\"\n"
	pol := newLivePolicy(t, policyTOML(ruleNet))
	// containerd 1.6's CRI plugin needs its default handler runc listed.
	handlers := []criHandler{{name: "runc"}, {name: "capshim", binary: capshimBin, annotations: true}}
	d := startContainerd(t, handlers, []string{"CAPSHIM_CONFIG=" + pol.path})
	d.importImages(t, "k8s.io")
	c := dialCRI(t, d)
	add := &cri.LinuxContainerSecurityContext{
		Capabilities: &cri.Capability{AddCapabilities: []string{"NET_ADMIN"}},
		MaskedPaths:  kubeletMaskedPaths, ReadonlyPaths: kubeletReadonlyPaths,
	}
	privileged := &cri.LinuxContainerSecurityContext{Privileged: true}
	tests := []struct {
		name          string
		policy        string
		namespace     string
		sc            *cri.LinuxContainerSecurityContext
		wantSandbox   uint64
		wantContainer uint64 // also for an exec in it
		atMost        bool
		denied        bool // the decision log shows CAP_NET_ADMIN denied
	}{
		{name: "capabilities.add allowed in net-a", policy: policyTOML(ruleNet), namespace: "net-a", sc: add,
			wantSandbox: maskMinimal, wantContainer: maskMinimal | maskNetAdmin},
		{name: "capabilities.add denied in other", policy: policyTOML(ruleNet), namespace: "other", sc: add,
			wantSandbox: maskMinimal, wantContainer: maskMinimal, denied: true},
		{name: "no add asks for nothing", policy: policyTOML(ruleNet), namespace: "net-a",
			wantSandbox: maskMinimal, wantContainer: maskMinimal},
		{name: "privileged stays clamped", policy: policyTOML(ruleNet), namespace: "net-a", sc: privileged,
			wantSandbox: maskMinimal, wantContainer: maskMinimal, atMost: true},
		{name: "engine_requests off", policy: strings.Replace(policyTOML(ruleNet), "log = ", "engine_requests = false\nlog = ", 1), namespace: "net-a", sc: add,
			wantSandbox: maskMinimal, wantContainer: maskMinimal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol.set(t, tc.policy)
			before := fileSize(pol.logPath)
			got, err := c.run(t, criPod{handler: "capshim", namespace: tc.namespace, ctrSecurity: tc.sc})
			if err != nil {
				t.Fatalf("%v\ncontainerd log:\n%s", err, d.logTail(20))
			}
			check := assertCaps
			if tc.atMost {
				check = assertCapsAtMost
			}
			t.Run("sandbox", func(t *testing.T) { check(t, got.sandboxStatus, tc.wantSandbox) })
			t.Run("container", func(t *testing.T) { check(t, got.containerStatus, tc.wantContainer) })
			t.Run("exec", func(t *testing.T) { check(t, got.execStatus, tc.wantContainer) })
			// The decisions of this pod: the sandbox, the container, the exec.
			var asked []map[string]any
			data, _ := os.ReadFile(pol.logPath)
			for _, l := range strings.Split(string(data[min(before, len(data)):]), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(l), &m) == nil && m["engine_request"] != nil {
					asked = append(asked, m)
				}
			}
			wantAsked := tc.sc == add && !strings.Contains(tc.policy, "engine_requests = false")
			if wantAsked != (len(asked) > 0) {
				t.Fatalf("decisions naming an engine request: %v, want some: %v\n%s", asked, wantAsked, pol.decisions(3))
			}
			for _, m := range asked {
				checkEngineDecision(t, m, "securityContext.capabilities.add", tc.denied)
			}
			t.Logf("container %s:\n%sdecisions:\n%s", got.ctrID, got.containerStatus, pol.decisions(3))
		})
	}
}
