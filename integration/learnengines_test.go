//go:build integration

package integration

// Learning and explaining through real engines: Docker 20.10 (a learn
// request in the environment), containerd's CRI (a learn rule on pod
// namespaces, the emitted rule matching by image) and Podman (no
// environment reaches the runtime; the policy comes by --runtime-flag).
// The workload is busybox chowning a file, which needs exactly CAP_CHOWN.
// Every engine is a private daemon or private storage of the test; every
// policy keeps its profiles and records in a state directory of the test.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capshim/capshim/learn"
)

// lrnEngScript chowns a file in the container's own root file system and
// prints whether it could, then the container's Cap* lines.
var lrnEngScript = lrnCheck("chown", "touch /tmp/f && chown 1000 /tmp/f") + "; grep Cap /proc/self/status"

// lrnEngPolicy is a policy for runc with capshim's default target, its
// profiles and records in stateDir, its decisions and warnings in log.
func lrnEngPolicy(stateDir, log string, rules ...string) string {
	s := fmt.Sprintf(`runtime = "/usr/bin/runc"
mode = "enforce"
default = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
never = ["CAP_SYS_ADMIN", "CAP_SYS_MODULE"]
on_denied_request = "drop"
state_dir = %q
log = %q
`, stateDir, log)
	for _, r := range rules {
		s += "\n" + r
	}
	return s
}

const (
	lrnEngRuleAsk = `[[rule]]
name = "may-ask-to-learn"
learn = true
`
	lrnEngRuleAll = `[[rule]]
name = "learn-everything"
mode = "learn"
`
	lrnEngRuleNS = `[[rule]]
name = "learn-namespaces"
mode = "learn"
[rule.match.annotations]
"io.kubernetes.cri.sandbox-namespace" = "learn-*"
`
)

// lrnEngState makes a state directory for a test's policies.
func lrnEngState(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "state")
}

// lrnEngTool runs one of capshim's commands (learn, explain) on stateDir,
// from the test's bin directory as an administrator would.
func lrnEngTool(stateDir string, args ...string) cmdResult {
	return runCmd(cmdOpts{timeout: time.Minute, env: envWithout([]string{"CAPSHIM_"})}, capshimBin, append(args, "--state-dir", stateDir)...)
}

// lrnEngKeep is the line of an emitted rule that keeps exactly caps.
func lrnEngKeep(caps ...string) string {
	q := make([]string, len(caps))
	for i, c := range caps {
		q[i] = fmt.Sprintf("%q", c)
	}
	return "keep = [" + strings.Join(q, ", ") + "]\n"
}

// lrnEngShow is `capshim learn show name`, which must succeed and keep
// exactly caps.
func lrnEngShow(t *testing.T, stateDir, name string, caps ...string) string {
	t.Helper()
	r := lrnEngTool(stateDir, "learn", "show", name)
	if r.err != nil {
		list := lrnEngTool(stateDir, "learn", "list")
		t.Fatalf("%v\nlearn list:\n%s", r, list.stdout)
	}
	if !strings.Contains(r.stdout, lrnEngKeep(caps...)) {
		t.Fatalf("profile %s does not keep exactly %v:\n%s", name, caps, r.stdout)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		t.Logf("learn show %s: %s", name, line)
	}
	return r.stdout
}

// lrnEngNoProfile checks that no profile name was made.
func lrnEngNoProfile(t *testing.T, stateDir, name string) {
	t.Helper()
	if r := lrnEngTool(stateDir, "learn", "show", name); r.err == nil {
		t.Errorf("a learn request no rule allows made profile %s:\n%s", name, r.stdout)
	}
}

// lrnEngExplain is `capshim explain query`, which must find the container
// and say that it was refused the dropped CAP_CHOWN. It returns the text.
func lrnEngExplain(t *testing.T, stateDir, query string) string {
	t.Helper()
	r := lrnEngTool(stateDir, "explain", query)
	if r.err != nil {
		t.Fatalf("%v", r)
	}
	if !strings.Contains(r.stdout, "refused CAP_CHOWN") || strings.Count(r.stdout, "which the policy dropped") != 1 {
		t.Fatalf("explain %s does not name CAP_CHOWN alone as the dropped capability the container was refused:\n%s", query, r.stdout)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		t.Logf("explain %s: %s", query, line)
	}
	return r.stdout
}

// lrnEngLogHas checks the policy's log for a line holding want.
func lrnEngLogHas(t *testing.T, log, want string) {
	t.Helper()
	data, _ := os.ReadFile(log)
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, want) {
			t.Logf("log: %s", line)
			return
		}
	}
	t.Errorf("no line with %q in %s:\n%s", want, log, tailFile(log, 10))
}

// lrnEngWorked reports what the chown workload printed: true for OK,
// false for FAIL; neither fails the test.
func lrnEngWorked(t *testing.T, out string) bool {
	t.Helper()
	switch {
	case strings.Contains(out, "capshim-workload: OK chown"):
		return true
	case strings.Contains(out, "capshim-workload: FAIL chown"):
		return false
	}
	t.Fatalf("the workload printed neither OK nor FAIL:\n%s", out)
	return false
}

// lrnEngUnpinned checks that capshim's recorder is gone from bpffs once no
// container is watched: it unpins itself at the last harvest.
func lrnEngUnpinned(t *testing.T) {
	t.Helper()
	const pins = "/sys/fs/bpf/capshim"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(pins); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			ents, _ := os.ReadDir(pins)
			t.Errorf("%s still exists after every container was removed (%d entries)", pins, len(ents))
			return
		}
	}
}

// lrnEngRun runs one container with --rm and --cidfile through an
// engine's CLI (docker or podman) and returns what it printed and its id.
func lrnEngRun(t *testing.T, cli func(args ...string) cmdResult, args ...string) (out, id string) {
	t.Helper()
	cid := filepath.Join(t.TempDir(), "cid")
	argv := append([]string{"run", "--rm", "--network", "none", "--cidfile", cid}, args...)
	r := cli(argv...)
	data, _ := os.ReadFile(cid)
	id = strings.TrimSpace(string(data))
	if id == "" {
		t.Fatalf("no container id in %s: %v", cid, r)
	}
	if r.err != nil && !strings.Contains(r.stdout, "capshim-workload") {
		t.Fatalf("%v", r)
	}
	return r.stdout, id
}

// TestLearnEnginesDocker: Docker 20.10 passes no annotations, so a
// container asks to be learned with CAPSHIM_LEARN in its environment,
// which a rule with learn = true allows.
func TestLearnEnginesDocker(t *testing.T) {
	state := lrnEngState(t)
	log := filepath.Join(t.TempDir(), "capshim.log")
	ask := writePolicy(t, lrnEngPolicy(state, log, lrnEngRuleAsk))
	strict := writePolicy(t, lrnEngPolicy(state, log))
	// The policy of capshim-learned gets the learned rule once there is
	// one; capshim reads its policy on every call.
	learned := writePolicy(t, lrnEngPolicy(state, log))
	runtime := func(policy string) map[string]any {
		return map[string]any{"path": capshimBin, "runtimeArgs": []string{"--capshim-config=" + policy}}
	}
	e := dockerStart(t, map[string]any{"runtimes": map[string]any{
		"capshim":         runtime(ask),
		"capshim-strict":  runtime(strict),
		"capshim-learned": runtime(learned),
	}}, nil)
	run := func(t *testing.T, runtime string, env ...string) (string, string) {
		t.Helper()
		args := []string{"--runtime", runtime}
		for _, kv := range env {
			args = append(args, "-e", kv)
		}
		return lrnEngRun(t, e.docker, append(args, imageBusybox, "sh", "-c", lrnEngScript)...)
	}

	t.Run("learn on request", func(t *testing.T) {
		out, id := run(t, "capshim", "CAPSHIM_LEARN=web")
		if !lrnEngWorked(t, out) {
			t.Fatalf("the learned container could not chown:\n%s", out)
		}
		// Learned, it keeps what Docker granted.
		assertCaps(t, out, maskDocker)
		rule := lrnEngShow(t, state, "web", "CAP_CHOWN")
		// Docker says nothing about the container that a rule could
		// match on: the rule matches every container of the policy.
		if strings.Contains(rule, "[rule.match") {
			t.Errorf("a rule learned under Docker matches on something Docker did not set:\n%s", rule)
		}
		lrnEngLogHas(t, log, "container "+id+" learned into profile web")

		// The rule runs the workload with what it used alone.
		writeFile(t, learned, lrnEngPolicy(state, log, rule), 0o644)
		out, _ = run(t, "capshim-learned")
		if !lrnEngWorked(t, out) {
			t.Fatalf("the learned rule does not run the workload:\n%s\nrule:\n%s", out, rule)
		}
		assertCaps(t, out, maskChown)
	})

	t.Run("explain a refused chown", func(t *testing.T) {
		out, id := run(t, "capshim")
		if lrnEngWorked(t, out) {
			t.Fatalf("chown worked under the default policy:\n%s", out)
		}
		assertCaps(t, out, maskMinimal)
		// Docker's runc container id is its own container id.
		lrnEngExplain(t, state, id[:12])
		lrnEngLogHas(t, log, "container "+id+" was refused CAP_CHOWN")
	})

	t.Run("learn request without a permitting rule", func(t *testing.T) {
		out, id := run(t, "capshim-strict", "CAPSHIM_LEARN=x")
		if lrnEngWorked(t, out) {
			t.Fatalf("a tenant's learn request escaped the reduction:\n%s", out)
		}
		assertCaps(t, out, maskMinimal)
		lrnEngNoProfile(t, state, "x")
		lrnEngLogHas(t, log, "create "+id+`: learn request \"x\" ignored`)
	})

	lrnEngUnpinned(t)
}

// TestLearnEnginesPodman: Podman hands the runtime no environment, so the
// policy comes with --runtime-flag on every call of the podman command;
// the delete after the container exits comes from `podman container
// cleanup`, without it.
func TestLearnEnginesPodman(t *testing.T) {
	p := podmanSetup(t)
	state := lrnEngState(t)
	log := filepath.Join(t.TempDir(), "capshim.log")
	def := writePolicy(t, lrnEngPolicy(state, log))
	all := writePolicy(t, lrnEngPolicy(state, log, lrnEngRuleAll))
	run := func(t *testing.T, policy string, args ...string) (string, string) {
		t.Helper()
		cli := func(argv ...string) cmdResult {
			return p.podman("containers.conf", append([]string{"--runtime", capshimBin, "--runtime-flag", "capshim-config=" + policy}, argv...)...)
		}
		return lrnEngRun(t, cli, append(args, imageBusybox, "sh", "-c", lrnEngScript)...)
	}

	t.Run("explain a refused chown", func(t *testing.T) {
		out, id := run(t, def)
		if lrnEngWorked(t, out) {
			t.Fatalf("chown worked under the default policy:\n%s", out)
		}
		assertCaps(t, out, maskPodmanMinimal)
		lrnEngExplain(t, state, id[:12])
		lrnEngLogHas(t, log, "container "+id+" was refused CAP_CHOWN")
	})

	cases := []struct {
		name    string
		env     []string
		profile func(id string) string
	}{
		{name: "learn rule, profile named from the container id", profile: func(id string) string { return learn.Sanitize(id) }},
		// Podman puts -e into the spec's process.env, where capshim reads
		// the request.
		{name: "learn rule, profile named by CAPSHIM_LEARN", env: []string{"CAPSHIM_LEARN=pm-web"}, profile: func(string) string { return "pm-web" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, kv := range tc.env {
				args = append(args, "-e", kv)
			}
			out, id := run(t, all, args...)
			if !lrnEngWorked(t, out) {
				t.Fatalf("the learned container could not chown:\n%s", out)
			}
			assertCaps(t, out, maskPodman)
			lrnEngShow(t, state, tc.profile(id), "CAP_CHOWN")
		})
	}

	lrnEngUnpinned(t)
}

// lrnEngPod is one pod with one container running the chown workload.
type lrnEngPod struct {
	namespace     string
	container     string // the CRI container name
	podAnnotation map[string]string
}

// lrnEngRunPod runs the pod until its container exits, removes it through
// CRI as kubelet would, and returns what the container printed and its
// id. The pod's clean-up also runs when the test fails half-way.
func lrnEngRunPod(t *testing.T, c *criClient, p lrnEngPod) (out, ctrID string) {
	t.Helper()
	return runPodToExit(t, c, p.namespace, p.container, imageBusybox, p.podAnnotation, []string{"sh", "-c", lrnEngScript})
}

// TestLearnEnginesCRI: a rule learns every pod of the learn-* namespaces;
// the profile is named from the image and container name, and the rule
// capshim emits for it matches by the CRI image and container name, so it
// runs the same workload anywhere else with exactly what it needs.
func TestLearnEnginesCRI(t *testing.T) {
	requireContainerd(t)
	state := lrnEngState(t)
	policy := func(rules ...string) string {
		return fmt.Sprintf("state_dir = %q\n", state) + policyTOML(rules...)
	}
	pol := newLivePolicy(t, policy(lrnEngRuleNS))
	// The CRI plugin wants its default handler, runc, to exist.
	d := startContainerd(t, []criHandler{{name: "runc"}, {name: "capshim", binary: capshimBin, annotations: true}}, []string{"CAPSHIM_CONFIG=" + pol.path})
	d.importImages(t, "k8s.io")
	c := dialCRI(t, d)

	const workload = "chowner"
	profile := learn.ProfileName(map[string]string{"io.kubernetes.cri.image-name": imageBusybox, "io.kubernetes.cri.container-name": workload}, "")
	var rule string
	t.Run("learn by namespace", func(t *testing.T) {
		out, _ := lrnEngRunPod(t, c, lrnEngPod{namespace: "learn-1", container: workload})
		if !lrnEngWorked(t, out) {
			t.Fatalf("the learned container could not chown:\n%s", out)
		}
		assertCaps(t, out, maskDocker)
		list := lrnEngTool(state, "learn", "list")
		if list.err != nil || !strings.Contains(list.stdout, "\n"+profile+" ") {
			t.Fatalf("no profile %s:\n%v", profile, list)
		}
		for _, line := range strings.Split(strings.TrimSpace(list.stdout), "\n") {
			t.Logf("learn list: %s", line)
		}
		rule = lrnEngShow(t, state, profile, "CAP_CHOWN")
		// Any tag or digest of the image, and no other image.
		if !strings.Contains(rule, "[rule.match.annotations]\n") || !strings.Contains(rule, `"io.kubernetes.cri.image-name" = "`+learn.ImageName(imageBusybox)+`[:@]*"`) {
			t.Fatalf("the emitted rule does not match on the CRI image name:\n%s", rule)
		}
		// The pod's sandbox learned too, into the profile every sandbox
		// shares, and its rule matches sandboxes alone.
		sandbox := lrnEngShow(t, state, learn.SandboxProfile)
		if !strings.Contains(sandbox, `"io.kubernetes.cri.container-type" = "sandbox"`) {
			t.Errorf("the sandboxes' rule does not match on the container type:\n%s", sandbox)
		}
		if n := strings.Count(strings.TrimSpace(list.stdout), "\n"); n != 2 {
			t.Errorf("%d profiles after one pod, want the container's and the sandboxes':\n%s", n, list.stdout)
		}
	})
	if rule == "" {
		t.FailNow()
	}

	t.Run("the emitted rule runs the workload elsewhere", func(t *testing.T) {
		pol.set(t, policy(lrnEngRuleNS, rule))
		t.Cleanup(func() { pol.set(t, policy(lrnEngRuleNS)) })
		out, _ := lrnEngRunPod(t, c, lrnEngPod{namespace: "prod-1", container: workload})
		if !lrnEngWorked(t, out) {
			t.Fatalf("the emitted rule does not run the workload:\n%s\nrule:\n%s\ndecisions:\n%s", out, rule, pol.decisions(4))
		}
		// Only its rule matched there: it keeps what it needs, nothing else.
		assertCaps(t, out, maskChown)
	})

	t.Run("explain a refused chown by the container name", func(t *testing.T) {
		const name = "chown-denied"
		out, _ := lrnEngRunPod(t, c, lrnEngPod{namespace: "other-1", container: name})
		if lrnEngWorked(t, out) {
			t.Fatalf("chown worked under the default policy:\n%s", out)
		}
		assertCaps(t, out, maskMinimal)
		ex := lrnEngExplain(t, state, name)
		if !strings.Contains(ex, "name:      "+name+"\n") {
			t.Errorf("explain does not name the container %s:\n%s", name, ex)
		}
		lrnEngLogHas(t, pol.logPath, "was refused CAP_CHOWN")
	})

	t.Run("learn request without a permitting rule", func(t *testing.T) {
		out, ctrID := lrnEngRunPod(t, c, lrnEngPod{namespace: "other-2", container: "asks", podAnnotation: map[string]string{"capshim.io/learn": "sneaky"}})
		if lrnEngWorked(t, out) {
			t.Fatalf("a pod's learn request escaped the reduction:\n%s", out)
		}
		assertCaps(t, out, maskMinimal)
		lrnEngNoProfile(t, state, "sneaky")
		lrnEngLogHas(t, pol.logPath, "create "+ctrID+`: learn request \"sneaky\" ignored`)
	})

	c.removeAllPods(t)
	lrnEngUnpinned(t)
}
