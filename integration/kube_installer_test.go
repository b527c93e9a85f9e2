//go:build integration

package integration

// The installer DaemonSet of deploy/kubernetes run for real: the
// controller-manager creates its pod, the kubelet runs it from the image
// `make image` built, and its init container installs capshim into the
// node's directories and registers the handler in containerd's config,
// then asks for the restart of containerd. The manifest applied is the
// shipped one with only the values marked "node:" changed (the node's
// directories and the restart command); policy updates, uninstall and
// reinstall are DaemonSet updates, as a user makes them.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// kubeRestartCmd is the installer's restart command on the test node. Like
// systemctl restart it returns once containerd is back: it asks by
// creating a file and waits until the test, having restarted containerd,
// removes it. An init container that exited while containerd was down
// would lose its exit status and run again.
const kubeRestartCmd = "touch /host/etc/containerd/restart-requested && while [ -e /host/etc/containerd/restart-requested ]; do sleep 1; done"

// kubeInstallerManifest is installer-daemonset.yaml for the test node:
// its hostPaths below the node's root, CAPSHIM_HOST_PREFIX that root, the
// restart command a request file, and CAPSHIM_ACTION action.
func kubeInstallerManifest(t *testing.T, n *kubeNode, action string) string {
	t.Helper()
	m := string(readFile(t, filepath.Join("..", "deploy", "kubernetes", "installer-daemonset.yaml")))
	if want := os.Getenv("CAPSHIM_INSTALLER_IMAGE_NAME"); want != "" && !strings.Contains(m, "image: "+want+"\n") {
		t.Fatalf("installer-daemonset.yaml does not run %s, the image make image built", want)
	}
	for _, r := range []struct{ old, new string }{
		{"path: /usr/local/bin\n", "path: " + n.root + "/usr/local/bin\n"},
		{"path: /etc/capshim\n", "path: " + n.root + "/etc/capshim\n"},
		{"path: /etc/containerd\n", "path: " + n.root + "/etc/containerd\n"},
		{"- name: CAPSHIM_HOST_PREFIX\n              value: \"\"\n", "- name: CAPSHIM_HOST_PREFIX\n              value: \"" + n.root + "\"\n"},
		{"value: \"nsenter -t 1 -m -u -i -n -p -- systemctl restart containerd\"\n", "value: \"" + kubeRestartCmd + "\"\n"},
		{"- name: CAPSHIM_ACTION\n              value: \"install\"\n", "- name: CAPSHIM_ACTION\n              value: \"" + action + "\"\n"},
	} {
		if strings.Count(m, r.old) != 1 {
			t.Fatalf("installer-daemonset.yaml has %q %d times, want once: the test changes exactly the node's values", r.old, strings.Count(m, r.old))
		}
		m = strings.Replace(m, r.old, r.new, 1)
	}
	return m
}

// kubeInstall applies the shipped policy, RuntimeClass and the installer,
// serves the installer's restart request and waits for the rollout; then
// the node's containerd has the handler capshim.
func kubeInstall(t *testing.T, c *kubeCluster) {
	t.Helper()
	n := c.node
	if os.Getenv("CAPSHIM_INSTALLER_IMAGE") == "" {
		t.Fatal("CAPSHIM_INSTALLER_IMAGE does not name the installer image archive (make image writes it; make test sets it)")
	}
	stock := readFile(t, n.config)
	deploy := filepath.Join("..", "deploy", "kubernetes")
	c.mustKubectl(t, "apply", "-f", filepath.Join(deploy, "runtimeclass.yaml"))
	c.apply(t, n.configMap(t))
	c.apply(t, kubeInstallerManifest(t, n, "install"))
	n.serveRestart(t, 2*time.Minute)
	c.rollout(t)
	logs := c.mustKubectl(t, "-n", "kube-system", "logs", "ds/capshim-installer", "-c", "install")
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		t.Logf("installer: %s", line)
	}
	for _, want := range []string{"registered capshim in /host/etc/containerd/config.toml", "containerd config changed, restarting containerd"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the installer's log does not say %q", want)
		}
	}
	for _, b := range []string{"capshim", "capshim-tools", "capshim-trace"} {
		fi, err := os.Stat(filepath.Join(n.root, "usr", "local", "bin", b))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s not installed 0755 on the node: %v %v", b, fi, err)
		}
	}
	wantPolicy := n.policy(t)
	if got := string(readFile(t, filepath.Join(n.root, "etc", "capshim", "shim.toml"))); got != wantPolicy {
		t.Errorf("the node's policy is not the ConfigMap's shim.toml:\n%s", got)
	}
	if got := readFile(t, n.config+".capshim-backup"); string(got) != string(stock) {
		t.Errorf("config.toml.capshim-backup is not the stock config")
	}
	if !strings.Contains(string(readFile(t, n.config)), fmt.Sprintf("BinaryName = %q", filepath.Join(n.root, "usr", "local", "bin", "capshim"))) {
		t.Errorf("the handler's BinaryName is not the node's capshim:\n%s", readFile(t, n.config))
	}
	if got := n.runtimeHandlers(t); !slices.Contains(got, "capshim") || !slices.Contains(got, "runc") {
		t.Fatalf("containerd's CRI runtimes after the install: %v, want capshim and runc", got)
	}
}

// rollout waits until the installer DaemonSet is rolled out.
func (c *kubeCluster) rollout(t *testing.T) {
	t.Helper()
	if r := c.kubectl("-n", "kube-system", "rollout", "status", "ds/capshim-installer", "--timeout=120s"); r.err != nil {
		pods := c.kubectl("-n", "kube-system", "describe", "pods", "-l", "app.kubernetes.io/component=installer")
		t.Fatalf("%v\n%s\nkubelet log:\n%s", r, pods.stdout, c.node.kubelet.tail(30))
	}
}

// runtimeHandlers lists the CRI runtimes containerd has loaded.
func (n *kubeNode) runtimeHandlers(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var st *cri.StatusResponse
	var err error
	for {
		if st, err = n.cri.rt.Status(ctx, &cri.StatusRequest{Verbose: true}); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("CRI status: %v", err)
	}
	var info struct {
		Containerd struct {
			Runtimes map[string]any `json:"runtimes"`
		} `json:"containerd"`
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["config"]), &info); err != nil {
		t.Fatalf("CRI status config: %v", err)
	}
	var names []string
	for k := range info.Containerd.Runtimes {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// kubeSetPolicy applies a ConfigMap capshim-policy with shim.toml policy and
// restarts the installer, which copies it to the node, as the README's
// "Updating the policy" says; it waits until the node has it.
func kubeSetPolicy(t *testing.T, c *kubeCluster, policy string) {
	t.Helper()
	cm := map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "capshim-policy", "namespace": "kube-system"},
		"data":     map[string]string{"shim.toml": policy},
	}
	b, err := json.Marshal(cm)
	if err != nil {
		t.Fatal(err)
	}
	c.apply(t, string(b))
	c.mustKubectl(t, "-n", "kube-system", "rollout", "restart", "ds/capshim-installer")
	c.rollout(t)
	path := filepath.Join(c.node.root, "etc", "capshim", "shim.toml")
	if got := string(readFile(t, path)); got != policy {
		t.Fatalf("after the rollout the node's policy is not the new one:\n%s", got)
	}
}

// testKubeInstallerUpdates: uninstall and install again by updating the
// DaemonSet; in between a pod of the RuntimeClass cannot start.
func testKubeInstallerUpdates(t *testing.T, c *kubeCluster) {
	n := c.node
	installed := readFile(t, n.config)
	backup := readFile(t, n.config+".capshim-backup")
	c.apply(t, kubeInstallerManifest(t, n, "uninstall"))
	n.serveRestart(t, 2*time.Minute)
	c.rollout(t)
	if got := readFile(t, n.config); string(got) != string(backup) {
		t.Errorf("after the uninstall the config is not the stock one again:\n%s", got)
	}
	if got := n.runtimeHandlers(t); slices.Contains(got, "capshim") {
		t.Errorf("containerd still has the handler capshim after the uninstall: %v", got)
	}
	for _, b := range []string{"capshim", "capshim-tools", "capshim-trace"} {
		if _, err := os.Stat(filepath.Join(n.root, "usr", "local", "bin", b)); err != nil {
			t.Errorf("uninstall removed %s, which running containers may need: %v", b, err)
		}
	}
	ns := kubeNamespace(t, c, "uninstalled", nil)
	c.apply(t, kubePodManifest(kubePod{name: "no-handler", namespace: ns, runtimeClass: "capshim", command: "grep Cap /proc/self/status"}))
	ev := c.waitEvent(t, ns, "no-handler", "FailedCreatePodSandBox")
	if !strings.Contains(ev, `no runtime for "capshim" is configured`) {
		t.Errorf("a capshim pod after the uninstall fails otherwise than for want of the handler: %s", ev)
	}
	t.Logf("a capshim pod after the uninstall: %s", ev)
	c.mustKubectl(t, "-n", ns, "delete", "pod", "no-handler", "--wait=true", "--timeout=60s")

	c.apply(t, kubeInstallerManifest(t, n, "install"))
	n.serveRestart(t, 2*time.Minute)
	c.rollout(t)
	if got := readFile(t, n.config); string(got) != string(installed) {
		t.Errorf("installing again does not give the same config:\n%s", got)
	}
	out := c.podOutput(t, kubePod{name: "reinstalled", namespace: ns, runtimeClass: "capshim", command: "grep Cap /proc/self/status"})
	assertCaps(t, out, maskMinimal)
}
