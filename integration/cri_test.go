//go:build integration

package integration

// CRI tests: the private containerd of containerd_test.go with its CRI
// plugin, driven through the CRI gRPC API like kubelet does (no crictl):
// RunPodSandbox on the host network (no CNI), CreateContainer,
// StartContainer, then the container's log and the pause process's
// /proc/PID/status tell which capabilities they really got.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"gopkg.in/yaml.v3"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criClient is a CRI client of a private containerd.
type criClient struct {
	d    *containerdDaemon
	conn *grpc.ClientConn
	rt   cri.RuntimeServiceClient
	img  cri.ImageServiceClient
}

// dialCRI connects to the daemon's CRI service, waits until the CRI
// plugin is ready and arranges for every pod to be removed through CRI
// before the daemon is stopped.
func dialCRI(t *testing.T, d *containerdDaemon) *criClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c := &criClient{d: d, conn: conn, rt: cri.NewRuntimeServiceClient(conn), img: cri.NewImageServiceClient(conn)}
	d.beforeStop = append(d.beforeStop, func() {
		c.removeAllPods(t)
		conn.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := c.rt.Status(ctx, &cri.StatusRequest{})
		cancel()
		if err == nil && criRuntimeReady(st) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRI not ready after 30s: %v %v\n%s", err, st, d.logTail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func criRuntimeReady(st *cri.StatusResponse) bool {
	for _, c := range st.GetStatus().GetConditions() {
		if c.GetType() == cri.RuntimeReady {
			return c.GetStatus()
		}
	}
	return false
}

// removeAllPods stops and removes every container and pod sandbox of the
// daemon through CRI (releases shims, mounts and cgroups properly).
func (c *criClient) removeAllPods(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if cs, err := c.rt.ListContainers(ctx, &cri.ListContainersRequest{}); err == nil {
		for _, ctr := range cs.GetContainers() {
			_, _ = c.rt.StopContainer(ctx, &cri.StopContainerRequest{ContainerId: ctr.GetId(), Timeout: 0})
			if _, err := c.rt.RemoveContainer(ctx, &cri.RemoveContainerRequest{ContainerId: ctr.GetId()}); err != nil {
				t.Logf("removing container %s: %v", ctr.GetId(), err)
			}
		}
	}
	if ps, err := c.rt.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{}); err == nil {
		for _, p := range ps.GetItems() {
			_, _ = c.rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: p.GetId()})
			if _, err := c.rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
				t.Logf("removing pod %s: %v", p.GetId(), err)
			}
		}
	}
}

// criPod describes one pod with one container.
type criPod struct {
	handler       string
	namespace     string
	podAnnotation map[string]string
	ctrAnnotation map[string]string
}

// criPodResult is what a pod really got.
type criPodResult struct {
	podID, ctrID    string
	sandboxStatus   string // Cap* lines of /proc/<pause pid>/status
	containerStatus string // Cap* lines the container printed
	execStatus      string // Cap* lines of an ExecSync in the container
	specAnnotations map[string]string
}

var criPodSeq int

// run starts the pod and its container, returns what they got, and removes
// both through CRI when the (sub)test ends. Only a failing RunPodSandbox is
// returned as an error; any other failure ends the test.
func (c *criClient) run(t *testing.T, p criPod) (criPodResult, error) {
	t.Helper()
	criPodSeq++
	name := fmt.Sprintf("capshim-pod-%d", criPodSeq)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	logDir := filepath.Join(c.d.dir, "logs", name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	podCfg := &cri.PodSandboxConfig{
		Metadata: &cri.PodSandboxMetadata{
			Name:      name,
			Namespace: p.namespace,
			Uid:       fmt.Sprintf("uid-%d-%d", os.Getpid(), criPodSeq),
		},
		LogDirectory: logDir,
		Annotations:  p.podAnnotation,
		Labels:       map[string]string{"app": "capshim-it"},
		Linux: &cri.LinuxPodSandboxConfig{
			CgroupParent: c.d.cgParent,
			SecurityContext: &cri.LinuxSandboxSecurityContext{
				NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE},
			},
		},
	}
	start := time.Now()
	rp, err := c.rt.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: podCfg, RuntimeHandler: p.handler})
	if err != nil {
		return criPodResult{}, fmt.Errorf("RunPodSandbox(handler %s): %w", p.handler, err)
	}
	podID := rp.GetPodSandboxId()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// A test may have removed the pod already (NotFound).
		if _, err := c.rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: podID}); err != nil && status.Code(err) != codes.NotFound {
			t.Errorf("StopPodSandbox: %v", err)
		}
		if _, err := c.rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil && status.Code(err) != codes.NotFound {
			t.Errorf("RemovePodSandbox: %v", err)
		}
	})

	res := criPodResult{podID: podID}
	ps, err := c.rt.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: podID, Verbose: true})
	if err != nil {
		t.Fatalf("PodSandboxStatus: %v", err)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(ps.GetInfo()["info"]), &info); err != nil || info.Pid <= 0 {
		t.Fatalf("no sandbox pid in PodSandboxStatus info (%v): %q", err, ps.GetInfo()["info"])
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", info.Pid))
	if err != nil {
		t.Fatalf("reading status of pause process: %v", err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(line, "Cap") {
			res.sandboxStatus += line + "\n"
		}
	}

	cc, err := c.rt.CreateContainer(ctx, &cri.CreateContainerRequest{
		PodSandboxId: podID,
		Config: &cri.ContainerConfig{
			Metadata:    &cri.ContainerMetadata{Name: "main"},
			Image:       &cri.ImageSpec{Image: imageBusybox},
			Command:     []string{"sh", "-c", "grep Cap /proc/self/status; sleep 30"},
			LogPath:     "main.log",
			Annotations: p.ctrAnnotation,
			Linux:       &cri.LinuxContainerConfig{},
		},
		SandboxConfig: podCfg,
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v\ncontainerd log:\n%s", err, c.d.logTail(20))
	}
	ctrID := cc.GetContainerId()
	res.ctrID = ctrID
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, _ = c.rt.StopContainer(ctx, &cri.StopContainerRequest{ContainerId: ctrID, Timeout: 0})
		if _, err := c.rt.RemoveContainer(ctx, &cri.RemoveContainerRequest{ContainerId: ctrID}); err != nil {
			t.Errorf("RemoveContainer: %v", err)
		}
	})
	if cs, err := c.rt.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: ctrID, Verbose: true}); err == nil {
		var ci struct {
			RuntimeSpec struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"runtimeSpec"`
		}
		if json.Unmarshal([]byte(cs.GetInfo()["info"]), &ci) == nil {
			res.specAnnotations = ci.RuntimeSpec.Annotations
		}
	}
	if _, err := c.rt.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: ctrID}); err != nil {
		t.Fatalf("StartContainer: %v\ncontainerd log:\n%s", err, c.d.logTail(20))
	}
	logPath := filepath.Join(logDir, "main.log")
	for {
		res.containerStatus = readCRILog(logPath)
		if strings.Contains(res.containerStatus, "CapAmb") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no Cap lines in %s: %q", logPath, res.containerStatus)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// exec gets its capabilities from containerd's copy of the spec, which
	// capshim never saw: it must reduce the exec's process.json too.
	ex, err := c.rt.ExecSync(ctx, &cri.ExecSyncRequest{ContainerId: ctrID, Cmd: []string{"grep", "Cap", "/proc/self/status"}, Timeout: 20})
	if err != nil || ex.GetExitCode() != 0 {
		t.Fatalf("ExecSync: %v (exit %d): %s%s", err, ex.GetExitCode(), ex.GetStdout(), ex.GetStderr())
	}
	res.execStatus = string(ex.GetStdout())
	t.Logf("pod %s (handler %s, namespace %s) ready in %v", name, p.handler, p.namespace, time.Since(start).Round(time.Millisecond))
	return res, nil
}

// readCRILog returns the messages of a CRI container log file
// ("<time> <stream> <P|F> <msg>" lines), one per line.
func readCRILog(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.SplitN(line, " ", 4)
		if len(f) < 4 {
			continue
		}
		b.WriteString(f[3])
		if f[2] == "F" {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// TestCRI runs pods through one private containerd whose CRI plugin has a
// capshim runtime handler and a plain runc handler as control.
func TestCRI(t *testing.T) {
	requireContainerd(t)
	pol := newLivePolicy(t, policyTOML())

	// A second handler with its own policy, chosen by the name capshim is
	// called as: the handler's binary is a link named capshim-web, which
	// reads capshim-web.toml in $CAPSHIM_CONFIG_DIR (default /etc/capshim;
	// a directory of the test here, given to containerd's environment).
	// The name wins over $CAPSHIM_CONFIG, which the daemon also has.
	webPol := newLivePolicy(t, policyTOML(ruleChown))
	cfgDir := t.TempDir()
	binDir := t.TempDir()
	for _, d := range []string{cfgDir, binDir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(webPol.path, filepath.Join(cfgDir, "capshim-web.toml")); err != nil {
		t.Fatal(err)
	}
	webBin := filepath.Join(binDir, "capshim-web")
	if err := os.Symlink(capshimBin, webBin); err != nil {
		t.Fatal(err)
	}

	// A handler whose capshim is called by a name with no policy file in
	// that directory: it must refuse the pod (fail closed), naming the
	// file, and not fall back to $CAPSHIM_CONFIG.
	byName := fmt.Sprintf("capshim-ctdname-%d", os.Getpid())
	byNamePolicy := filepath.Join(cfgDir, byName+".toml")
	byNameBin := filepath.Join(binDir, byName)
	if err := os.Symlink(capshimBin, byNameBin); err != nil {
		t.Fatal(err)
	}

	handlers := []criHandler{
		{name: "runc"},
		{name: "capshim", binary: capshimBin, annotations: true},
		{name: "capshim-web", binary: webBin, annotations: true},
		{name: "capshim-by-name", binary: byNameBin, annotations: true},
	}
	d := startContainerd(t, handlers, []string{"CAPSHIM_CONFIG=" + pol.path, "CAPSHIM_CONFIG_DIR=" + cfgDir})
	d.importImages(t, "k8s.io")
	c := dialCRI(t, d)

	req := func(caps string) map[string]string { return map[string]string{"capshim.io/capabilities": caps} }
	shipped, shippedReq := shippedPolicy(t)
	tests := []struct {
		name          string
		policy        string
		pod           criPod
		wantSandbox   uint64
		wantContainer uint64   // also for an exec in the container
		wantErr       []string // RunPodSandbox must fail with these in its error
		skip          string   // reason to skip, "" = run
	}{
		{
			name:          "control: runc handler keeps containerd defaults",
			policy:        policyTOML(ruleChown),
			pod:           criPod{handler: "runc", namespace: "other", podAnnotation: req("CAP_CHOWN")},
			wantSandbox:   maskDocker,
			wantContainer: maskDocker,
		},
		{
			name:          "default policy reduces sandbox and container",
			policy:        policyTOML(),
			pod:           criPod{handler: "capshim", namespace: "other"},
			wantSandbox:   maskMinimal,
			wantContainer: maskMinimal,
		},
		{
			name:          "pod annotation request without rule is dropped",
			policy:        policyTOML(),
			pod:           criPod{handler: "capshim", namespace: "other", podAnnotation: req("CAP_CHOWN")},
			wantSandbox:   maskMinimal,
			wantContainer: maskMinimal,
		},
		{
			// Pod annotations go into the sandbox's config.json too.
			name:          "pod annotation request allowed by rule",
			policy:        policyTOML(ruleChown),
			pod:           criPod{handler: "capshim", namespace: "other", podAnnotation: req("CAP_CHOWN")},
			wantSandbox:   maskMinimal | maskChown,
			wantContainer: maskMinimal | maskChown,
		},
		{
			name:          "container annotation request allowed by rule",
			policy:        policyTOML(ruleChown),
			pod:           criPod{handler: "capshim", namespace: "other", ctrAnnotation: req("CAP_CHOWN")},
			wantSandbox:   maskMinimal,
			wantContainer: maskMinimal | maskChown,
		},
		{
			name:          "podman annotation io.containers.capabilities is a request",
			policy:        policyTOML(ruleChown),
			pod:           criPod{handler: "capshim", namespace: "other", podAnnotation: map[string]string{"io.containers.capabilities": "CHOWN"}},
			wantSandbox:   maskMinimal | maskChown,
			wantContainer: maskMinimal | maskChown,
		},
		{
			name:          "namespace rule grants in web-a",
			policy:        policyTOML(ruleChownWeb),
			pod:           criPod{handler: "capshim", namespace: "web-a", podAnnotation: req("CAP_CHOWN")},
			wantSandbox:   maskMinimal | maskChown,
			wantContainer: maskMinimal | maskChown,
		},
		{
			name:          "namespace rule does not grant in other",
			policy:        policyTOML(ruleChownWeb),
			pod:           criPod{handler: "capshim", namespace: "other", podAnnotation: req("CAP_CHOWN")},
			wantSandbox:   maskMinimal,
			wantContainer: maskMinimal,
		},
		{
			// The requester cannot forge the namespace key: CRI overwrites it.
			name:   "forged namespace annotation does not match the rule",
			policy: policyTOML(ruleChownWeb),
			pod: criPod{handler: "capshim", namespace: "other",
				podAnnotation: map[string]string{"capshim.io/capabilities": "CAP_CHOWN", "io.kubernetes.cri.sandbox-namespace": "web-x"},
				ctrAnnotation: map[string]string{"io.kubernetes.cri.sandbox-namespace": "web-x"}},
			wantSandbox:   maskMinimal,
			wantContainer: maskMinimal,
		},
		{
			// deploy/kubernetes: the ConfigMap's policy and example-pod.yaml's
			// request give what the README promises.
			name:          "shipped policy and example pod in web-demo",
			policy:        shipped,
			pod:           criPod{handler: "capshim", namespace: "web-demo", podAnnotation: shippedReq},
			wantSandbox:   maskMinimal | maskChown,
			wantContainer: maskMinimal | maskChown,
		},
		{
			name:          "shipped policy and example pod in another namespace",
			policy:        shipped,
			pod:           criPod{handler: "capshim", namespace: "default", podAnnotation: shippedReq},
			wantSandbox:   maskMinimal,
			wantContainer: maskMinimal,
		},
		{
			// Same request as "pod annotation request without rule is dropped",
			// but the handler capshim-web has a policy with a CHOWN rule.
			name:          "second handler uses its own policy",
			policy:        policyTOML(),
			pod:           criPod{handler: "capshim-web", namespace: "other", podAnnotation: req("CAP_CHOWN")},
			wantSandbox:   maskMinimal | maskChown,
			wantContainer: maskMinimal | maskChown,
		},
		{
			name:    "policy chosen by the name capshim is called as (missing: pod refused)",
			policy:  policyTOML(),
			pod:     criPod{handler: "capshim-by-name", namespace: "other"},
			wantErr: []string{"OCI runtime create failed", "capshim:", byNamePolicy},
			skip:    skipIfExists(byNamePolicy),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			pol.set(t, tc.policy)
			got, err := c.run(t, tc.pod)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("pod started, want it refused")
				}
				t.Logf("refused as expected: %v", err)
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q: %v", w, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\ncontainerd log:\n%s\ncapshim decisions:\n%s", err, d.logTail(20), pol.decisions(2))
			}
			t.Run("sandbox", func(t *testing.T) { assertCaps(t, got.sandboxStatus, tc.wantSandbox) })
			t.Run("container", func(t *testing.T) { assertCaps(t, got.containerStatus, tc.wantContainer) })
			t.Run("exec", func(t *testing.T) { assertCaps(t, got.execStatus, tc.wantContainer) })
			if t.Failed() {
				t.Logf("container config.json annotations: %v\ncapshim decisions:\n%s", got.specAnnotations, pol.decisions(3))
			}
		})
	}

	// A broken policy must stop new containers (fail closed) but not the
	// stopping and removal of running ones: kill, delete and state carry no
	// capabilities (design: only create/run/restore/exec are refused).
	t.Run("unusable policy does not block stopping a running pod", func(t *testing.T) {
		pol.set(t, policyTOML())
		got, err := c.run(t, criPod{handler: "capshim", namespace: "other"})
		if err != nil {
			t.Fatal(err)
		}
		// Runs before the pod clean-up registered by run.
		t.Cleanup(func() { pol.set(t, policyTOML()) })
		pol.set(t, strings.Replace(policyTOML(), `mode = "enforce"`, `mode = "bogus"`, 1))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := c.rt.StopContainer(ctx, &cri.StopContainerRequest{ContainerId: got.ctrID, Timeout: 0}); err != nil {
			t.Errorf("StopContainer with a broken policy: %v", err)
		}
		if _, err := c.rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: got.podID}); err != nil {
			t.Errorf("StopPodSandbox with a broken policy: %v", err)
		}
		if _, err := c.rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: got.podID}); err != nil {
			t.Errorf("RemovePodSandbox with a broken policy: %v", err)
		}
	})
}

// shippedPolicy returns the policy of deploy/kubernetes/configmap.yaml
// and the annotations of the pod in deploy/kubernetes/example-pod.yaml.
func shippedPolicy(t *testing.T) (string, map[string]string) {
	t.Helper()
	docs := func(file string) []map[string]any {
		data, err := os.ReadFile(filepath.Join("..", "deploy", "kubernetes", file))
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				break
			}
			out = append(out, m)
		}
		return out
	}
	var policy string
	for _, m := range docs("configmap.yaml") {
		if data, ok := m["data"].(map[string]any); ok {
			policy, _ = data["shim.toml"].(string)
		}
	}
	ann := map[string]string{}
	for _, m := range docs("example-pod.yaml") {
		if m["kind"] != "Pod" {
			continue
		}
		md, _ := m["metadata"].(map[string]any)
		a, _ := md["annotations"].(map[string]any)
		for k, v := range a {
			ann[k], _ = v.(string)
		}
	}
	if policy == "" || ann["capshim.io/capabilities"] == "" {
		t.Fatalf("no shim.toml in configmap.yaml or no request in example-pod.yaml")
	}
	return policy, ann
}

// skipIfExists returns a skip reason when path exists.
func skipIfExists(path string) string {
	if _, err := os.Lstat(path); err == nil {
		return path + " exists on this host; not testing the missing-policy case"
	}
	return ""
}
