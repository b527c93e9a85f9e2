//go:build integration

package integration

// The one node of the kube tests: a private containerd (1.6 from PATH, or
// the 2.x binary CAPSHIM_CONTAINERD2 names) on its own stock config, a CNI
// plugin that keeps every pod's traffic inside the pod, and a kubelet
// named 127.0.0.1 listening on loopback.
//
// The node's "root" is a directory of the daemon: NODE/usr/local/bin,
// NODE/etc/capshim and NODE/etc/containerd/config.toml are where the
// installer DaemonSet puts capshim and registers it, as it would under /
// on a real node; containerd gets CAPSHIM_CONFIG=NODE/etc/capshim/shim.toml
// so that capshim reads the policy the installer wrote. The test plays
// systemd: the installer's restart command asks for a restart by creating
// a file, and the test restarts this containerd.
//
// The kubelet sets host sysctls when it starts (vm.overcommit_memory,
// kernel.panic, kernel.panic_on_oops, kernel.keys.*): they are saved
// before it starts and put back when it stops, by the shell that runs it
// (which also does so when the test binary dies) and by the test's
// clean-up.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kubeNodeName is the node's name and its InternalIP, as
// hack/local-up-cluster.sh names a node (--node-ip 127.0.0.1 is refused).
const kubeNodeName = "127.0.0.1"

// kubeSysctls are the settings the kubelet changes at its start.
var kubeSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// kubeNode is the running node.
type kubeNode struct {
	ctd     *containerdDaemon
	two     bool     // containerd 2.x
	root    string   // the node's root (NODE above)
	env     []string // containerd's extra environment
	ctr     string   // ctr binary of the same containerd version
	cri     *criClient
	config  string // NODE/etc/containerd/config.toml
	kubelet *daemonProc
	sandbox string // the sandbox image the stock config names
}

// startNode starts containerd (containerdBin "" = 1.6 from PATH) and the
// kubelet, and waits until the node is Ready.
func (c *kubeCluster) startNode(t *testing.T, containerdBin string) *kubeNode {
	t.Helper()
	start := time.Now()
	// containerd creates /run/containerd whatever its state directory is
	// (the shims' sockets, runc's state), and its CNI library caches
	// results in /var/lib/cni; each is put away again when it was not
	// there. Registered before the daemon, so that it runs after the
	// daemon's teardown has emptied them.
	for _, dir := range []string{"/run/containerd", "/var/lib/cni"} {
		if _, err := os.Lstat(dir); err != nil {
			t.Cleanup(func() { pruneEmptyDirs(dir) })
		}
	}
	d := newConfigDaemon(t, containerdBin)
	n := &kubeNode{ctd: d, two: containerdBin != "", root: filepath.Join(d.dir, "node"), ctr: "ctr"}
	c.node = n
	// var/lib is there as on any node: capshim creates its state
	// directory, not the directories above it.
	for _, sub := range []string{"usr/local/bin", "etc/capshim", "etc/containerd", "var/lib", "var/log/capshim"} {
		if err := os.MkdirAll(filepath.Join(n.root, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n.config = filepath.Join(n.root, "etc", "containerd", "config.toml")
	n.env = []string{"CAPSHIM_CONFIG=" + filepath.Join(n.root, "etc", "capshim", "shim.toml")}
	bin := "containerd"
	if n.two {
		bin = containerdBin
		// containerd 2.x with its own runc shim and ctr.
		dir := filepath.Dir(containerdBin)
		n.env = append(n.env, "PATH="+dir+":"+os.Getenv("PATH"))
		n.ctr = filepath.Join(dir, "ctr")
	}

	// The stock config, with the two changes this machine needs: root may
	// lack CAP_SYS_RESOURCE (a sandbox's oom_score_adj -998 would kill
	// runc's init), and the pods' network namespaces go below the daemon's
	// state directory instead of /var/run/netns. privateConfig points the
	// CNI, opt and NRI paths at the daemon's directory.
	out, err := exec.Command(bin, "config", "default").Output()
	if err != nil {
		t.Fatalf("%s config default: %v", bin, err)
	}
	stock := string(out)
	for _, kv := range []string{"restrict_oom_score_adj", "netns_mounts_under_state_dir"} {
		re := regexp.MustCompile(`(?m)^(\s*` + kv + ` = )false$`)
		if !re.MatchString(stock) {
			t.Fatalf("%s config default has no %s = false:\n%s", bin, kv, stock)
		}
		stock = re.ReplaceAllString(stock, "${1}true")
	}
	m := regexp.MustCompile(`(?m)^\s*(?:sandbox_image|sandbox) = ["']([^"']+)["']$`).FindStringSubmatch(stock)
	if m == nil {
		t.Fatalf("%s config default names no sandbox image:\n%s", bin, stock)
	}
	n.sandbox = m[1]
	writeFile(t, n.config, privateConfig(t, d, stock, n.two), 0o644)
	// containerd reads DIR/config.toml (which the clean-up of stale
	// daemons looks for), a link to the node's file that the installer
	// replaces.
	if err := os.Symlink(n.config, d.cfgPath); err != nil {
		t.Fatal(err)
	}
	n.installCNI(t)
	d.launch(t, n.env)
	n.importImages(t)
	n.cri = dialCRI(t, d)
	n.startKubelet(t, c)
	c.waitNodeReady(t, n, start)
	return n
}

// installCNI puts the test's CNI plugin (as capshim-podnet and as the
// loopback plugin containerd always runs) and its network config where
// the daemon's config points.
func (n *kubeNode) installCNI(t *testing.T) {
	t.Helper()
	script := readFile(t, filepath.Join("kube", "cni-podnet.sh"))
	for _, name := range []string{"capshim-podnet", "loopback"} {
		writeFile(t, filepath.Join(n.ctd.dir, "cni", "bin", name), string(script), 0o755)
	}
	writeFile(t, filepath.Join(n.ctd.dir, "cni", "net.d", "10-capshim-podnet.conf"),
		`{"cniVersion":"0.4.0","name":"capshim-podnet","type":"capshim-podnet"}`+"\n", 0o644)
}

// nodeCtr runs the node's ctr in namespace k8s.io.
func (n *kubeNode) nodeCtr(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.ctr, append([]string{"--address", n.ctd.sock, "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s\ncontainerd log:\n%s", strings.Join(args, " "), err, out, n.ctd.logTail(20))
	}
	return string(out)
}

// importImages imports busybox, the pause image under the sandbox image's
// name, and the installer image `make image` built (CAPSHIM_INSTALLER_IMAGE).
func (n *kubeNode) importImages(t *testing.T) {
	t.Helper()
	archive := filepath.Join(n.ctd.dir, "images.tar")
	buildImageArchive(t, archive)
	n.nodeCtr(t, "images", "import", archive)
	n.nodeCtr(t, "images", "tag", "--force", imagePause, n.sandbox)
	if img := os.Getenv("CAPSHIM_INSTALLER_IMAGE"); img != "" {
		n.nodeCtr(t, "images", "import", img)
	}
}

// restart stops containerd by its pid and starts it again on the same
// files, as systemctl restart containerd would; the containers keep
// running.
func (n *kubeNode) restart(t *testing.T) {
	t.Helper()
	n.ctd.stop(t)
	n.ctd.exited = make(chan struct{})
	n.ctd.launch(t, n.env)
}

// serveRestart waits for the installer's restart request (the file
// NODE/etc/containerd/restart-requested), restarts containerd and then
// removes the file, which ends the installer's restart command.
func (n *kubeNode) serveRestart(t *testing.T, timeout time.Duration) {
	t.Helper()
	req := filepath.Join(n.root, "etc", "containerd", "restart-requested")
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(req); err == nil {
			t.Logf("the installer asked for a restart of containerd")
			n.restart(t)
			if err := os.Remove(req); err != nil {
				t.Fatal(err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no restart request (%s) within %v", req, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kubeLogLine is the decision log setting of the shipped policy.
var kubeLogLine = regexp.MustCompile(`(?m)^(\s*)log = ".*"$`)

// policy is the shipped policy (configmap.yaml) for this node: its
// decision log below the node's root, the one value a test node changes.
func (n *kubeNode) policy(t *testing.T) string {
	t.Helper()
	shipped, _ := shippedPolicy(t)
	return n.localLog(t, shipped)
}

// configMap is configmap.yaml with the node's decision log.
func (n *kubeNode) configMap(t *testing.T) string {
	t.Helper()
	return n.localLog(t, string(readFile(t, filepath.Join("..", "deploy", "kubernetes", "configmap.yaml"))))
}

func (n *kubeNode) localLog(t *testing.T, s string) string {
	t.Helper()
	if c := len(kubeLogLine.FindAllString(s, -1)); c != 1 {
		t.Fatalf("the shipped policy sets log %d times, want once", c)
	}
	return kubeLogLine.ReplaceAllString(s, `${1}log = "`+filepath.Join(n.root, "var", "log", "capshim", "decisions.log")+`"`)
}

// startKubelet starts the kubelet on the node's containerd with the
// sysctls it changes saved first.
func (n *kubeNode) startKubelet(t *testing.T, c *kubeCluster) {
	t.Helper()
	dir := filepath.Join(n.ctd.dir, "kubelet")
	logs := filepath.Join(n.ctd.dir, "pod-logs")
	for _, d := range []string{dir, logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The kubelet's cgroup root must exist in every hierarchy; the
	// containerd clean-up removes it with everything below it.
	n.makeCgroupRoot(t)

	saved := map[string]string{}
	var restore strings.Builder
	for _, k := range kubeSysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if err != nil {
			t.Fatalf("reading sysctl %s: %v", k, err)
		}
		saved[k] = strings.TrimSpace(string(v))
		fmt.Fprintf(&restore, "echo %s >/proc/sys/%s; ", saved[k], k)
	}
	_, logDirErr := os.Lstat("/var/log/containers")
	// The kubelet's device manager listens on a fixed path whatever its
	// root directory; where there was no /var/lib/kubelet before, all of
	// it is the test's and goes again.
	_, kubeletDirErr := os.Lstat("/var/lib/kubelet")
	t.Cleanup(func() {
		if kubeletDirErr != nil {
			sock := "/var/lib/kubelet/device-plugins/kubelet.sock"
			if fi, err := os.Lstat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
				_ = os.Remove(sock)
			}
			pruneEmptyDirs("/var/lib/kubelet")
		}
		for _, k := range kubeSysctls {
			cur, _ := os.ReadFile(filepath.Join("/proc/sys", k))
			if strings.TrimSpace(string(cur)) != saved[k] {
				if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(saved[k]), 0o644); err != nil {
					t.Errorf("restoring sysctl %s to %s: %v", k, saved[k], err)
				}
				t.Errorf("sysctl %s was %s after the kubelet stopped, want %s (restored now)", k, strings.TrimSpace(string(cur)), saved[k])
			}
		}
		removeContainerLogLinks(t, logs)
		if logDirErr != nil {
			_ = syscall.Rmdir("/var/log/containers") // only when empty
		}
	})

	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzPort: 0
cgroupDriver: cgroupfs
cgroupRoot: %s
failSwapOn: false
failCgroupV1: false
oomScoreAdj: 0
podLogsDir: %s
containerRuntimeEndpoint: unix://%s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %s}
authorization: {mode: AlwaysAllow}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
serializeImagePulls: false
resolvConf: /etc/resolv.conf
`, freePort(t), n.ctd.cgParent, logs, n.ctd.sock, c.pki.file("ca.crt")), 0o644)
	kcfg := c.pki.kubeconfig(t, filepath.Join(dir, "kubelet.kubeconfig"), c.apiURL, "kubelet")
	script := "restore() { " + restore.String() + `}
"$@" & pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid; restore; exit 0' TERM INT
wait $pid
restore`
	n.kubelet = startDaemon(t, filepath.Join(c.dir, "kubelet.log"), os.Environ(), "/bin/sh", "-c", script, "kubelet",
		filepath.Join(c.bin, "kubelet"), "--config", cfg, "--kubeconfig", kcfg,
		"--root-dir", dir, "--cert-dir", filepath.Join(dir, "pki"), "--hostname-override", kubeNodeName, "--v", "1")
}

// makeCgroupRoot creates the daemon's cgroup parent in every hierarchy,
// with the cpus and memory nodes of the root in cpuset.
func (n *kubeNode) makeCgroupRoot(t *testing.T) {
	t.Helper()
	tops, _ := filepath.Glob("/sys/fs/cgroup/*")
	tops = append(tops, "/sys/fs/cgroup")
	for _, top := range tops {
		var st syscall.Statfs_t
		if syscall.Statfs(top, &st) != nil || (st.Type != 0x27e0eb && st.Type != 0x63677270) { // cgroup, cgroup2
			continue
		}
		p := filepath.Join(top, n.ctd.cgParent)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatalf("creating cgroup %s: %v", p, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(top, f)); err == nil {
				_ = os.WriteFile(filepath.Join(p, f), v, 0o644)
			}
		}
	}
}

// waitNodeReady waits until the node reports Ready.
func (c *kubeCluster) waitNodeReady(t *testing.T, n *kubeNode, start time.Time) {
	t.Helper()
	var r cmdResult
	for time.Since(start) < 2*time.Minute {
		if n.kubelet.exited() {
			t.Fatalf("kubelet exited:\n%s", n.kubelet.tail(40))
		}
		r = c.kubectl("get", "node", kubeNodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if r.err == nil && r.stdout == "True" {
			t.Logf("node %s Ready in %v", kubeNodeName, time.Since(start).Round(time.Millisecond))
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("node not Ready after 2m:\n%v\nkubelet log:\n%s", r, n.kubelet.tail(40))
}

// removeContainerLogLinks removes the links the kubelet made in
// /var/log/containers (a fixed host path) to the pod logs below logs.
func removeContainerLogLinks(t *testing.T, logs string) {
	ents, _ := os.ReadDir("/var/log/containers")
	for _, e := range ents {
		p := filepath.Join("/var/log/containers", e.Name())
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, logs+"/") {
			if err := os.Remove(p); err != nil {
				t.Errorf("removing %s: %v", p, err)
			}
		}
	}
}

// pruneEmptyDirs removes dir and the directories below it that are empty,
// deepest first; anything with a file in it stays.
func pruneEmptyDirs(dir string) {
	for _, d := range dirsDeepestFirst(dir) {
		_ = syscall.Rmdir(d)
	}
}
