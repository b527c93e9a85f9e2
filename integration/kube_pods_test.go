//go:build integration

package integration

// Pods through a real kube-apiserver, scheduler and kubelet on containerd
// 1.6 and 2.x, with capshim installed by its DaemonSet and the shipped
// policy (configmap.yaml): what each container really got is read from
// its own /proc/self/status, through `kubectl logs` and `kubectl exec`,
// and from the pod's pause process.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestKube runs the Kubernetes tests on containerd 1.6 (from PATH).
func TestKube(t *testing.T) { runKubeSuite(t, "") }

// TestKubeContainerd2 runs them on containerd 2.x (CAPSHIM_CONTAINERD2,
// which make kube-deps builds), with the config version 3 it writes.
func TestKubeContainerd2(t *testing.T) {
	bin := os.Getenv("CAPSHIM_CONTAINERD2")
	if bin == "" {
		t.Skip("CAPSHIM_CONTAINERD2 does not name a containerd 2.x binary (make kube-deps builds one; make test sets it)")
	}
	runKubeSuite(t, bin)
}

func runKubeSuite(t *testing.T, containerdBin string) {
	start := time.Now()
	c := startControlPlane(t)
	c.startNode(t, containerdBin)
	if !t.Run("installer DaemonSet installs capshim", func(t *testing.T) { kubeInstall(t, c) }) {
		t.FailNow()
	}
	t.Run("pods", func(t *testing.T) { testKubePods(t, c) })
	t.Run("learn a namespace", func(t *testing.T) { testKubeLearn(t, c) })
	t.Run("installer uninstall and install by DaemonSet update", func(t *testing.T) { testKubeInstallerUpdates(t, c) })
	t.Logf("kube suite on %s: %v", c.node.describe(), time.Since(start).Round(time.Second))
}

func (n *kubeNode) describe() string {
	if n.two {
		return "containerd 2.x"
	}
	return "containerd 1.6"
}

// kubePod is one pod with one busybox container named main.
type kubePod struct {
	name, namespace string
	runtimeClass    string
	annotations     map[string]string
	command         string // run by sh -c
	sleep           bool   // keep running after the command
	add, drop       []string
	// restricted: the fields Pod Security "restricted" asks for (uid 1000,
	// RuntimeDefault seccomp, no privilege escalation, drop ALL).
	restricted bool
}

// kubePodManifest renders the pod as JSON, which kubectl apply takes.
func kubePodManifest(p kubePod) string {
	cmd := p.command
	if p.sleep {
		cmd += "; exec sleep 3600"
	}
	sc := map[string]any{}
	caps := map[string]any{}
	if p.add != nil {
		caps["add"] = p.add
	}
	if p.drop != nil {
		caps["drop"] = p.drop
	}
	pod := map[string]any{
		"automountServiceAccountToken":  false,
		"enableServiceLinks":            false,
		"restartPolicy":                 "Never",
		"terminationGracePeriodSeconds": 1,
	}
	if p.restricted {
		caps["drop"] = []string{"ALL"}
		sc["allowPrivilegeEscalation"] = false
		sc["runAsNonRoot"] = true
		sc["runAsUser"] = 1000
		sc["seccompProfile"] = map[string]string{"type": "RuntimeDefault"}
	}
	if len(caps) > 0 {
		sc["capabilities"] = caps
	}
	if p.runtimeClass != "" {
		pod["runtimeClassName"] = p.runtimeClass
	}
	pod["containers"] = []any{map[string]any{
		"name": "main", "image": imageBusybox, "imagePullPolicy": "Never",
		"command": []string{"sh", "-c", cmd}, "securityContext": sc,
	}}
	meta := map[string]any{"name": p.name, "namespace": p.namespace}
	if p.annotations != nil {
		meta["annotations"] = p.annotations
	}
	b, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod})
	return string(b)
}

var kubeNSSeq atomic.Int32

// kubeNamespace creates a namespace named prefix-N (or prefix itself when
// it ends in "!"), with labels, and waits for its service account.
func kubeNamespace(t *testing.T, c *kubeCluster, prefix string, labels map[string]string) string {
	t.Helper()
	name, exact := strings.CutSuffix(prefix, "!")
	if !exact {
		name = fmt.Sprintf("%s-%d", prefix, kubeNSSeq.Add(1))
	}
	b, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name, "labels": labels}})
	c.apply(t, string(b))
	c.waitServiceAccount(t, name)
	return name
}

// podOutput runs the pod to its end and returns its log.
func (c *kubeCluster) podOutput(t *testing.T, p kubePod) string {
	t.Helper()
	c.apply(t, kubePodManifest(p))
	deadline := time.Now().Add(2 * time.Minute)
	for {
		phase := c.kubectl("-n", p.namespace, "get", "pod", p.name, "-o", "jsonpath={.status.phase}").stdout
		if phase == "Succeeded" {
			break
		}
		if phase == "Failed" || time.Now().After(deadline) {
			t.Fatalf("pod %s/%s is %q:\n%s", p.namespace, p.name, phase, c.describe(p.namespace, p.name))
		}
		time.Sleep(300 * time.Millisecond)
	}
	return c.mustKubectl(t, "-n", p.namespace, "logs", p.name)
}

// podRunning starts a pod that prints, then sleeps, and returns its log
// once the Cap lines are in it.
func (c *kubeCluster) podRunning(t *testing.T, manifest, ns, name string) string {
	t.Helper()
	c.apply(t, manifest)
	if r := c.kubectl("-n", ns, "wait", "--for=condition=Ready", "pod/"+name, "--timeout=120s"); r.err != nil {
		t.Fatalf("%v\n%s", r, c.describe(ns, name))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := c.kubectl("-n", ns, "logs", name).stdout
		if strings.Contains(out, "CapAmb") || time.Now().After(deadline) {
			return out
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *kubeCluster) describe(ns, name string) string {
	return c.kubectl("-n", ns, "describe", "pod", name).stdout
}

// waitEvent waits for an event of reason about the pod and returns its
// message.
func (c *kubeCluster) waitEvent(t *testing.T, ns, pod, reason string) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := c.kubectl("-n", ns, "get", "events", "--field-selector", "involvedObject.name="+pod+",reason="+reason, "-o", "jsonpath={.items[*].message}")
		if r.err == nil && strings.TrimSpace(r.stdout) != "" {
			return r.stdout
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for pod %s/%s:\n%s", reason, ns, pod, c.describe(ns, pod))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// sandboxStatus returns the Cap lines of the pause process of a running
// pod, found through CRI by the pod's labels.
func (c *kubeCluster) sandboxStatus(t *testing.T, ns, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt := c.node.cri.rt
	ps, err := rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{
		State:         &cri.PodSandboxStateValue{State: cri.PodSandboxState_SANDBOX_READY},
		LabelSelector: map[string]string{"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": ns},
	}})
	if err != nil || len(ps.GetItems()) != 1 {
		t.Fatalf("the sandbox of pod %s/%s: %v %v", ns, name, err, ps.GetItems())
	}
	st, err := rt.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: ps.GetItems()[0].GetId(), Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["info"]), &info); err != nil || info.Pid <= 0 {
		t.Fatalf("no pid of the sandbox of %s/%s (%v)", ns, name, err)
	}
	status := string(readFile(t, fmt.Sprintf("/proc/%d/status", info.Pid)))
	var b strings.Builder
	for _, line := range strings.Split(status, "\n") {
		if strings.HasPrefix(line, "Cap") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func testKubePods(t *testing.T, c *kubeCluster) {
	const capCmd = "grep Cap /proc/self/status"
	req := map[string]string{"capshim.io/capabilities": "CAP_CHOWN"}

	// example-pod.yaml as shipped, on the test's busybox image.
	web := kubeNamespace(t, c, "web-demo!", nil)
	example := string(readFile(t, filepath.Join("..", "deploy", "kubernetes", "example-pod.yaml")))
	if strings.Count(example, "image: busybox:1.36\n") != 1 {
		t.Fatalf("example-pod.yaml does not run busybox:1.36 once")
	}
	example = strings.Replace(example, "image: busybox:1.36\n", "image: "+imageBusybox+"\n      imagePullPolicy: Never\n", 1)
	other := kubeNamespace(t, c, "other", nil)

	t.Run("RuntimeClass capshim in web-demo: the policy's sets and CAP_CHOWN asked for", func(t *testing.T) {
		out := c.podRunning(t, example, web, "capshim-demo")
		t.Logf("kubectl -n %s logs capshim-demo:\n%s", web, out)
		assertCaps(t, out, maskMinimal|maskChown)
		sb := c.sandboxStatus(t, web, "capshim-demo")
		t.Logf("pause process of capshim-demo:\n%s", sb)
		assertCaps(t, sb, maskMinimal|maskChown)

		// An exec never gets more than the container it enters.
		ex := c.mustKubectl(t, "-n", web, "exec", "capshim-demo", "--", "grep", "Cap", "/proc/self/status")
		t.Logf("kubectl exec capshim-demo -- grep Cap /proc/self/status:\n%s", ex)
		assertCaps(t, ex, maskMinimal|maskChown)
	})
	t.Run("RuntimeClass capshim elsewhere: the request is dropped", func(t *testing.T) {
		out := c.podRunning(t, kubePodManifest(kubePod{name: "asks", namespace: other, runtimeClass: "capshim", annotations: req, command: capCmd, sleep: true}), other, "asks")
		assertCaps(t, out, maskMinimal)
		assertCaps(t, c.sandboxStatus(t, other, "asks"), maskMinimal)
		ex := c.mustKubectl(t, "-n", other, "exec", "asks", "--", "grep", "Cap", "/proc/self/status")
		assertCaps(t, ex, maskMinimal)
	})
	t.Run("a pod annotation with a CRI key does not forge the namespace", func(t *testing.T) {
		forged := map[string]string{"capshim.io/capabilities": "CAP_CHOWN", "io.kubernetes.cri.sandbox-namespace": web}
		out := c.podOutput(t, kubePod{name: "forger", namespace: other, runtimeClass: "capshim", annotations: forged, command: capCmd})
		assertCaps(t, out, maskMinimal)
	})
	t.Run("no RuntimeClass: containerd's defaults", func(t *testing.T) {
		out := c.podRunning(t, kubePodManifest(kubePod{name: "plain", namespace: other, annotations: req, command: capCmd, sleep: true}), other, "plain")
		assertCaps(t, out, maskDocker)
		assertCaps(t, c.sandboxStatus(t, other, "plain"), maskDocker)
	})
	t.Run("securityContext drop ALL", func(t *testing.T) {
		out := c.podOutput(t, kubePod{name: "drop-all", namespace: web, runtimeClass: "capshim", annotations: req, command: capCmd, drop: []string{"ALL"}})
		assertAllSets(t, out, 0)
	})
	// securityContext.capabilities.add is a request like the annotation:
	// granted where a rule allows it, dropped elsewhere. CAP_NET_ADMIN is
	// not among containerd's defaults, so only the add asks for it.
	t.Run("securityContext add is a request the policy decides", func(t *testing.T) {
		shipped := c.node.policy(t)
		kubeSetPolicy(t, c, shipped+`
[[rule]]
name = "web-may-net-admin"
capabilities = ["CAP_NET_ADMIN"]
[rule.match.annotations]
"io.kubernetes.cri.sandbox-namespace" = "web-*"
`)
		t.Cleanup(func() { kubeSetPolicy(t, c, shipped) })
		const maskNetAdmin = 1 << 12
		out := c.podOutput(t, kubePod{name: "add-net-admin", namespace: web, runtimeClass: "capshim", command: capCmd, add: []string{"NET_ADMIN"}})
		assertCaps(t, out, maskMinimal|maskNetAdmin)
		out = c.podOutput(t, kubePod{name: "add-net-admin", namespace: other, runtimeClass: "capshim", command: capCmd, add: []string{"NET_ADMIN"}})
		assertCaps(t, out, maskMinimal)
		out = c.podOutput(t, kubePod{name: "add-sys-admin", namespace: web, runtimeClass: "capshim", command: capCmd, add: []string{"SYS_ADMIN"}})
		assertCaps(t, out, maskMinimal)
	})
	t.Run("Pod Security restricted namespace", func(t *testing.T) {
		ns := kubeNamespace(t, c, "restricted", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
		out := c.podOutput(t, kubePod{name: "restricted", namespace: ns, runtimeClass: "capshim", command: capCmd, restricted: true, add: []string{"NET_BIND_SERVICE"}})
		got := capLines(t, out)
		if got["CapBnd"] != 1<<10 || got["CapPrm"] != 0 || got["CapEff"] != 0 || got["CapInh"] != 0 || got["CapAmb"] != 0 {
			t.Errorf("restricted pod (uid 1000, drop ALL, add NET_BIND_SERVICE): want only CapBnd 0000000000000400:\n%s", out)
		}
		f := filepath.Join(c.dir, "root-pod.json")
		writeFile(t, f, kubePodManifest(kubePod{name: "root", namespace: ns, runtimeClass: "capshim", command: capCmd}), 0o644)
		if r := c.kubectl("apply", "-f", f); r.err == nil || !strings.Contains(r.stderr, "violates PodSecurity") {
			t.Errorf("a root pod was not refused in the restricted namespace:\n%v", r)
		}
	})
}
