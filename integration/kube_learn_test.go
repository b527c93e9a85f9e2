//go:build integration

package integration

// Learning through Kubernetes: the policy (a ConfigMap update rolled out
// by the installer) learns every pod of the namespaces learn-*; a pod that
// needs CAP_CHOWN runs there and is deleted; `capshim learn show` emits a
// rule for its profile, matching the image; with that rule in the policy
// the same workload runs in another namespace with exactly CAP_CHOWN.

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capshim/capshim/learn"
)

func testKubeLearn(t *testing.T, c *kubeCluster) {
	shipped := c.node.policy(t)
	state := filepath.Join(c.node.root, "var", "lib", "capshim")
	// state_dir is a top-level key: it goes before the first table.
	policy := func(rules ...string) string {
		s := "state_dir = \"" + state + "\"\n" + shipped
		for _, r := range rules {
			s += "\n" + r
		}
		return s
	}
	kubeSetPolicy(t, c, policy(ruleLearnNamespace))
	t.Cleanup(func() { kubeSetPolicy(t, c, shipped) })

	ns := kubeNamespace(t, c, "learn", nil)
	out := c.podOutput(t, kubePod{name: "chowner", namespace: ns, runtimeClass: "capshim", command: chownScript})
	if !chownWorked(t, out) {
		t.Fatalf("the learned pod could not chown:\n%s", out)
	}
	// A learned container keeps what the engine granted.
	assertCaps(t, out, maskDocker)
	c.mustKubectl(t, "-n", ns, "delete", "pod", "chowner", "--wait=true", "--timeout=60s")
	// capshim merges the container's record into the profile at the
	// runtime's delete, which containerd runs when the container exits.
	profile := learn.ProfileName(map[string]string{"io.kubernetes.cri.image-name": imageBusybox, "io.kubernetes.cri.container-name": "main"}, "")
	var list cmdResult
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		list = stateTool(state, "learn", "list")
		if list.err == nil && strings.Contains(list.stdout, "\n"+profile+" ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no profile %s 30s after the pod was deleted:\n%v", profile, list)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(list.stdout), "\n") {
		t.Logf("learn list: %s", line)
	}
	rule := learnShow(t, state, profile, "CAP_CHOWN")
	if !strings.Contains(rule, `"io.kubernetes.cri.image-name" = "`+learn.ImageName(imageBusybox)+`[:@]*"`) {
		t.Fatalf("the emitted rule does not match on the image name:\n%s", rule)
	}

	kubeSetPolicy(t, c, policy(ruleLearnNamespace, rule))
	prod := kubeNamespace(t, c, "prod", nil)
	out = c.podOutput(t, kubePod{name: "chowner", namespace: prod, runtimeClass: "capshim", command: chownScript})
	if !chownWorked(t, out) {
		t.Fatalf("the emitted rule does not run the workload in namespace %s:\n%s\nrule:\n%s", prod, out, rule)
	}
	assertCaps(t, out, maskChown)
}
