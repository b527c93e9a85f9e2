//go:build integration

package integration

// Pods through the CRI plugin of a private containerd, with a capshim
// runtime handler, a handler whose capshim picks its policy by the name it
// is called as, and a plain runc handler as control.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ruleChownWeb lets the pods of the namespaces web-* ask for CAP_CHOWN.
const ruleChownWeb = `[[rule]]
name = "chown-for-web"
capabilities = ["CAP_CHOWN"]
[rule.match.annotations]
"io.kubernetes.cri.sandbox-namespace" = "web-*"
`

// TestCRI runs pods through one private containerd whose CRI plugin has a
// capshim runtime handler and a plain runc handler as control.
func TestCRI(t *testing.T) {
	testCRI(t, "")
}

// TestCRIContainerd2 runs the same pods through containerd 2.x
// (CAPSHIM_CONTAINERD2, which make test builds), on the same version 2
// config, which containerd 2.x migrates as it reads it, and with its own
// runc shim first on the daemon's PATH.
func TestCRIContainerd2(t *testing.T) {
	bin := os.Getenv("CAPSHIM_CONTAINERD2")
	if bin == "" {
		t.Skip("CAPSHIM_CONTAINERD2 does not name a containerd 2.x binary (make kube-deps builds one; make test sets it)")
	}
	testCRI(t, bin)
}

// serverVersion2 matches ctr version's answer from a containerd 2.x.
var serverVersion2 = regexp.MustCompile(`Server:\s*\n\s*Version:\s+v?2\.`)

// testCRI is TestCRI on the containerd binary bin ("" = containerd on PATH).
func testCRI(t *testing.T, bin string) {
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
	env := []string{"CAPSHIM_CONFIG=" + pol.path, "CAPSHIM_CONFIG_DIR=" + cfgDir}
	if bin != "" {
		env = append(env, "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
	}
	d := newContainerd(t)
	d.bin = bin
	writeFile(t, d.cfgPath, containerdConfig(d.dir, d.sock, handlers), 0o644)
	d.launch(t, env)
	if bin != "" {
		// The daemon that answers is the 2.x one, not a containerd on PATH.
		out, err := d.ctr(context.Background(), "default", "version")
		if err != nil || !serverVersion2.MatchString(out) {
			t.Fatalf("ctr version against %s: %v\n%s", bin, err, out)
		}
	}
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
	// capabilities, so only create, run, restore and exec are refused.
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
