//go:build integration

package integration

// The CRI plugin of a private containerd driven through the CRI gRPC API
// like kubelet does (no crictl): RunPodSandbox on the host network (no
// CNI), CreateContainer, StartContainer and ExecSync; then the container's
// log, the exec's output and the pause process's /proc/PID/status tell
// which capabilities they really got.

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
	// ctrSecurity is the container's security context as a pod spec's
	// securityContext gives it (capabilities.add, privileged); privileged
	// makes the sandbox privileged too, as kubelet does.
	ctrSecurity *cri.LinuxContainerSecurityContext
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
				Privileged:       p.ctrSecurity.GetPrivileged(),
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
			Linux:       &cri.LinuxContainerConfig{SecurityContext: p.ctrSecurity},
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

// runPodToExit runs one pod whose container runs image with command, waits for
// the container to exit, removes the pod through CRI as kubelet would,
// and returns what the container printed and its id.
func runPodToExit(t *testing.T, c *criClient, namespace, container, image string, annotations map[string]string, command []string) (out, ctrID string) {
	t.Helper()
	criPodSeq++
	name := fmt.Sprintf("capshim-exit-pod-%d", criPodSeq)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logDir := filepath.Join(c.d.dir, "logs", name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	podCfg := &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: fmt.Sprintf("uid-exit-%d-%d", os.Getpid(), criPodSeq)},
		LogDirectory: logDir,
		Annotations:  annotations,
		Linux: &cri.LinuxPodSandboxConfig{
			CgroupParent: c.d.cgParent,
			// No CNI here: the pod uses the node's network, as in the
			// other CRI tests; the workloads listen on 127.0.0.1 only.
			SecurityContext: &cri.LinuxSandboxSecurityContext{NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE}},
		},
	}
	rp, err := c.rt.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: podCfg, RuntimeHandler: "capshim"})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v\n%s", err, c.d.logTail(20))
	}
	podID := rp.GetPodSandboxId()
	remove := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := c.rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: podID}); err != nil && status.Code(err) != codes.NotFound {
			return err
		}
		if _, err := c.rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil && status.Code(err) != codes.NotFound {
			return err
		}
		return nil
	}
	t.Cleanup(func() {
		if err := remove(); err != nil {
			t.Errorf("removing pod %s: %v", name, err)
		}
	})
	cc, err := c.rt.CreateContainer(ctx, &cri.CreateContainerRequest{
		PodSandboxId: podID,
		Config: &cri.ContainerConfig{
			Metadata: &cri.ContainerMetadata{Name: container},
			Image:    &cri.ImageSpec{Image: image},
			Command:  command,
			LogPath:  container + ".log",
			Linux:    &cri.LinuxContainerConfig{},
		},
		SandboxConfig: podCfg,
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v\n%s", err, c.d.logTail(20))
	}
	ctrID = cc.GetContainerId()
	if _, err := c.rt.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: ctrID}); err != nil {
		t.Fatalf("StartContainer: %v\n%s", err, c.d.logTail(20))
	}
	for {
		st, err := c.rt.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: ctrID})
		if err == nil && st.GetStatus().GetState() == cri.ContainerState_CONTAINER_EXITED {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("container %s did not exit: %v %v", ctrID, err, st.GetStatus())
		}
		time.Sleep(100 * time.Millisecond)
	}
	out = readCRILog(filepath.Join(logDir, container+".log"))
	if err := remove(); err != nil {
		t.Fatalf("removing pod %s: %v", name, err)
	}
	return out, ctrID
}
