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
	"path/filepath"
	"strings"
	"testing"

	"github.com/capshim/capshim/learn"
)

// TestLearnEnginesDocker: Docker 20.10 passes no annotations, so a
// container asks to be learned with CAPSHIM_LEARN in its environment,
// which a rule with learn = true allows.
func TestLearnEnginesDocker(t *testing.T) {
	state := newStateDir(t)
	log := filepath.Join(t.TempDir(), "capshim.log")
	ask := writePolicy(t, engineLearnPolicy(state, log, ruleLearnOnAsk))
	strict := writePolicy(t, engineLearnPolicy(state, log))
	// The policy of capshim-learned gets the learned rule once there is
	// one; capshim reads its policy on every call.
	learned := writePolicy(t, engineLearnPolicy(state, log))
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
		return runEngineContainer(t, e.docker, append(args, imageBusybox, "sh", "-c", chownScript)...)
	}

	t.Run("learn on request", func(t *testing.T) {
		out, id := run(t, "capshim", "CAPSHIM_LEARN=web")
		if !chownWorked(t, out) {
			t.Fatalf("the learned container could not chown:\n%s", out)
		}
		// Learned, it keeps what Docker granted.
		assertCaps(t, out, maskDocker)
		rule := learnShow(t, state, "web", "CAP_CHOWN")
		// Docker says nothing about the container that a rule could
		// match on: the rule matches every container of the policy.
		if strings.Contains(rule, "[rule.match") {
			t.Errorf("a rule learned under Docker matches on something Docker did not set:\n%s", rule)
		}
		requireLogLine(t, log, "container "+id+" learned into profile web")

		// The rule runs the workload with what it used alone.
		writeFile(t, learned, engineLearnPolicy(state, log, rule), 0o644)
		out, _ = run(t, "capshim-learned")
		if !chownWorked(t, out) {
			t.Fatalf("the learned rule does not run the workload:\n%s\nrule:\n%s", out, rule)
		}
		assertCaps(t, out, maskChown)
	})

	t.Run("explain a refused chown", func(t *testing.T) {
		out, id := run(t, "capshim")
		if chownWorked(t, out) {
			t.Fatalf("chown worked under the default policy:\n%s", out)
		}
		assertCaps(t, out, maskMinimal)
		// Docker's runc container id is its own container id.
		explainRefusedChown(t, state, id[:12])
		requireLogLine(t, log, "container "+id+" was refused CAP_CHOWN")
	})

	t.Run("learn request without a permitting rule", func(t *testing.T) {
		out, id := run(t, "capshim-strict", "CAPSHIM_LEARN=x")
		if chownWorked(t, out) {
			t.Fatalf("a tenant's learn request escaped the reduction:\n%s", out)
		}
		assertCaps(t, out, maskMinimal)
		requireNoProfile(t, state, "x")
		requireLogLine(t, log, "create "+id+`: learn request \"x\" ignored`)
	})

	requireRecorderUnpinned(t)
}

// TestLearnEnginesPodman: Podman hands the runtime no environment, so the
// policy comes with --runtime-flag on every call of the podman command;
// the delete after the container exits comes from `podman container
// cleanup`, without it.
func TestLearnEnginesPodman(t *testing.T) {
	p := podmanSetup(t)
	state := newStateDir(t)
	log := filepath.Join(t.TempDir(), "capshim.log")
	def := writePolicy(t, engineLearnPolicy(state, log))
	all := writePolicy(t, engineLearnPolicy(state, log, ruleLearnAll))
	run := func(t *testing.T, policy string, args ...string) (string, string) {
		t.Helper()
		cli := func(argv ...string) cmdResult {
			return p.podman("containers.conf", append([]string{"--runtime", capshimBin, "--runtime-flag", "capshim-config=" + policy}, argv...)...)
		}
		return runEngineContainer(t, cli, append(args, imageBusybox, "sh", "-c", chownScript)...)
	}

	t.Run("explain a refused chown", func(t *testing.T) {
		out, id := run(t, def)
		if chownWorked(t, out) {
			t.Fatalf("chown worked under the default policy:\n%s", out)
		}
		assertCaps(t, out, maskPodmanMinimal)
		explainRefusedChown(t, state, id[:12])
		requireLogLine(t, log, "container "+id+" was refused CAP_CHOWN")
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
			if !chownWorked(t, out) {
				t.Fatalf("the learned container could not chown:\n%s", out)
			}
			assertCaps(t, out, maskPodman)
			learnShow(t, state, tc.profile(id), "CAP_CHOWN")
		})
	}

	requireRecorderUnpinned(t)
}

// chownPod is one pod with one container running the chown workload.
type chownPod struct {
	namespace     string
	container     string // the CRI container name
	podAnnotation map[string]string
}

// runChownPod runs the pod until its container exits, removes it through
// CRI as kubelet would, and returns what the container printed and its
// id. The pod's clean-up also runs when the test fails half-way.
func runChownPod(t *testing.T, c *criClient, p chownPod) (out, ctrID string) {
	t.Helper()
	return runPodToExit(t, c, p.namespace, p.container, imageBusybox, p.podAnnotation, []string{"sh", "-c", chownScript})
}

// TestLearnEnginesCRI: a rule learns every pod of the learn-* namespaces;
// the profile is named from the image and container name, and the rule
// capshim emits for it matches by the CRI image and container name, so it
// runs the same workload anywhere else with exactly what it needs.
func TestLearnEnginesCRI(t *testing.T) {
	requireContainerd(t)
	state := newStateDir(t)
	policy := func(rules ...string) string {
		return fmt.Sprintf("state_dir = %q\n", state) + policyTOML(rules...)
	}
	pol := newLivePolicy(t, policy(ruleLearnNamespace))
	// The CRI plugin wants its default handler, runc, to exist.
	d := startContainerd(t, []criHandler{{name: "runc"}, {name: "capshim", binary: capshimBin, annotations: true}}, []string{"CAPSHIM_CONFIG=" + pol.path})
	d.importImages(t, "k8s.io")
	c := dialCRI(t, d)

	const workload = "chowner"
	profile := learn.ProfileName(map[string]string{"io.kubernetes.cri.image-name": imageBusybox, "io.kubernetes.cri.container-name": workload}, "")
	var rule string
	t.Run("learn by namespace", func(t *testing.T) {
		out, _ := runChownPod(t, c, chownPod{namespace: "learn-1", container: workload})
		if !chownWorked(t, out) {
			t.Fatalf("the learned container could not chown:\n%s", out)
		}
		assertCaps(t, out, maskDocker)
		list := stateTool(state, "learn", "list")
		if list.err != nil || !strings.Contains(list.stdout, "\n"+profile+" ") {
			t.Fatalf("no profile %s:\n%v", profile, list)
		}
		for _, line := range strings.Split(strings.TrimSpace(list.stdout), "\n") {
			t.Logf("learn list: %s", line)
		}
		rule = learnShow(t, state, profile, "CAP_CHOWN")
		// Any tag or digest of the image, and no other image.
		if !strings.Contains(rule, "[rule.match.annotations]\n") || !strings.Contains(rule, `"io.kubernetes.cri.image-name" = "`+learn.ImageName(imageBusybox)+`[:@]*"`) {
			t.Fatalf("the emitted rule does not match on the CRI image name:\n%s", rule)
		}
		// The pod's sandbox learned too, into the profile every sandbox
		// shares, and its rule matches sandboxes alone.
		sandbox := learnShow(t, state, learn.SandboxProfile)
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
		pol.set(t, policy(ruleLearnNamespace, rule))
		t.Cleanup(func() { pol.set(t, policy(ruleLearnNamespace)) })
		out, _ := runChownPod(t, c, chownPod{namespace: "prod-1", container: workload})
		if !chownWorked(t, out) {
			t.Fatalf("the emitted rule does not run the workload:\n%s\nrule:\n%s\ndecisions:\n%s", out, rule, pol.decisions(4))
		}
		// Only its rule matched there: it keeps what it needs, nothing else.
		assertCaps(t, out, maskChown)
	})

	t.Run("explain a refused chown by the container name", func(t *testing.T) {
		const name = "chown-denied"
		out, _ := runChownPod(t, c, chownPod{namespace: "other-1", container: name})
		if chownWorked(t, out) {
			t.Fatalf("chown worked under the default policy:\n%s", out)
		}
		assertCaps(t, out, maskMinimal)
		ex := explainRefusedChown(t, state, name)
		if !strings.Contains(ex, "name:      "+name+"\n") {
			t.Errorf("explain does not name the container %s:\n%s", name, ex)
		}
		requireLogLine(t, pol.logPath, "was refused CAP_CHOWN")
	})

	t.Run("learn request without a permitting rule", func(t *testing.T) {
		out, ctrID := runChownPod(t, c, chownPod{namespace: "other-2", container: "asks", podAnnotation: map[string]string{"capshim.io/learn": "sneaky"}})
		if chownWorked(t, out) {
			t.Fatalf("a pod's learn request escaped the reduction:\n%s", out)
		}
		assertCaps(t, out, maskMinimal)
		requireNoProfile(t, state, "sneaky")
		requireLogLine(t, pol.logPath, "create "+ctrID+`: learn request \"sneaky\" ignored`)
	})

	c.removeAllPods(t)
	requireRecorderUnpinned(t)
}
