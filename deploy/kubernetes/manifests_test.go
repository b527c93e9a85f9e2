// Package kubernetes holds the Kubernetes manifests of capshim; its test
// parses every YAML document and checks the fields the install steps of
// README.md rely on.
package kubernetes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
	"gopkg.in/yaml.v3"

	"github.com/capshim/capshim/policy"
)

// doc is one YAML document of a manifest file.
type doc struct {
	file string
	idx  int
	raw  map[string]any
}

func (d doc) String() string { return fmt.Sprintf("%s (document %d)", d.file, d.idx+1) }

// loadDocs parses every YAML document of every *.yaml file here.
func loadDocs(t *testing.T) []doc {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	yml, _ := filepath.Glob("*.yml")
	if len(yml) > 0 {
		t.Errorf("use the .yaml extension: %v", yml)
	}
	slices.Sort(files)
	var docs []doc
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var m map[string]any
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: document %d: %v", f, i, err)
			}
			if m == nil {
				continue // empty document (e.g. a trailing ---)
			}
			docs = append(docs, doc{file: f, idx: i, raw: m})
		}
	}
	return docs
}

// get walks a path of map keys and list indexes (ints).
func get(v any, path ...any) (any, bool) {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[k]; !ok {
				return nil, false
			}
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil, false
			}
			v = l[k]
		}
	}
	return v, true
}

func str(v any, path ...any) string {
	x, _ := get(v, path...)
	s, _ := x.(string)
	return s
}

// strs is the strings of a list (other items are left out).
func strs(l []any) []string {
	var out []string
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func list(v any, path ...any) []any {
	x, _ := get(v, path...)
	l, _ := x.([]any)
	return l
}

func mapping(v any, path ...any) map[string]any {
	x, _ := get(v, path...)
	m, _ := x.(map[string]any)
	return m
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
var dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

// wantAPIVersion is the apiVersion each kind must use.
var wantAPIVersion = map[string]string{
	"RuntimeClass": "node.k8s.io/v1",
	"ConfigMap":    "v1",
	"DaemonSet":    "apps/v1",
	"Pod":          "v1",
	"Namespace":    "v1",
}

func TestEveryDocumentIsWellFormed(t *testing.T) {
	docs := loadDocs(t)
	if len(docs) == 0 {
		t.Fatal("no YAML documents found")
	}
	seen := map[string]string{}
	for _, d := range docs {
		kind := str(d.raw, "kind")
		want, ok := wantAPIVersion[kind]
		if !ok {
			t.Errorf("%s: unexpected kind %q", d, kind)
			continue
		}
		if got := str(d.raw, "apiVersion"); got != want {
			t.Errorf("%s: %s apiVersion = %q, want %q", d, kind, got, want)
		}
		name := str(d.raw, "metadata", "name")
		if !dnsSubdomain.MatchString(name) {
			t.Errorf("%s: %s metadata.name %q is not a DNS subdomain", d, kind, name)
		}
		ns := str(d.raw, "metadata", "namespace")
		if ns != "" && !dnsLabel.MatchString(ns) {
			t.Errorf("%s: metadata.namespace %q is not a DNS label", d, ns)
		}
		if (kind == "RuntimeClass" || kind == "Namespace") && ns != "" {
			t.Errorf("%s: %s is cluster-scoped but has namespace %q", d, kind, ns)
		}
		key := kind + "/" + ns + "/" + name
		if prev, dup := seen[key]; dup {
			t.Errorf("%s: %s defined twice (also in %s)", d, key, prev)
		}
		seen[key] = d.String()
	}
	for _, want := range []string{
		"RuntimeClass//capshim",
		"ConfigMap/kube-system/capshim-policy",
		"DaemonSet/kube-system/capshim-installer",
		"Pod/web-demo/capshim-demo",
		"Namespace//web-demo",
	} {
		if _, ok := seen[want]; !ok {
			t.Errorf("missing %s", want)
		}
	}
}

// find returns the one document of that kind and name.
func find(t *testing.T, docs []doc, kind, name string) doc {
	t.Helper()
	for _, d := range docs {
		if str(d.raw, "kind") == kind && str(d.raw, "metadata", "name") == name {
			return d
		}
	}
	t.Fatalf("no %s %q", kind, name)
	return doc{}
}

func TestRuntimeClass(t *testing.T) {
	d := find(t, loadDocs(t), "RuntimeClass", "capshim")
	if d.file != "runtimeclass.yaml" {
		t.Errorf("RuntimeClass capshim is in %s, want runtimeclass.yaml", d.file)
	}
	h := str(d.raw, "handler")
	if h != "capshim" {
		t.Errorf("handler = %q, want capshim (the containerd runtime name)", h)
	}
	if !dnsLabel.MatchString(h) {
		t.Errorf("handler %q is not a DNS label", h)
	}
}

// shimTOML returns the policy of the ConfigMap.
func shimTOML(t *testing.T) string {
	t.Helper()
	d := find(t, loadDocs(t), "ConfigMap", "capshim-policy")
	if d.file != "configmap.yaml" {
		t.Errorf("ConfigMap is in %s, want configmap.yaml", d.file)
	}
	if ns := str(d.raw, "metadata", "namespace"); ns != "kube-system" {
		t.Errorf("ConfigMap namespace = %q, want kube-system", ns)
	}
	data := mapping(d.raw, "data")
	if len(data) != 1 {
		t.Errorf("ConfigMap data has keys %v, want only shim.toml", keys(data))
	}
	s := str(d.raw, "data", "shim.toml")
	if s == "" {
		t.Fatal("ConfigMap has no data.shim.toml")
	}
	return s
}

func keys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

func TestConfigMapPolicy(t *testing.T) {
	src := shimTOML(t)

	// The shipped values, read independently of capshim's parser.
	var f struct {
		Runtime         string   `toml:"runtime"`
		Mode            string   `toml:"mode"`
		Default         []string `toml:"default"`
		Never           []string `toml:"never"`
		OnDeniedRequest string   `toml:"on_denied_request"`
		Log             *string  `toml:"log"`
		Rule            []struct {
			Name         string   `toml:"name"`
			Capabilities []string `toml:"capabilities"`
			Match        struct {
				Annotations map[string]string `toml:"annotations"`
			} `toml:"match"`
		} `toml:"rule"`
	}
	dec := toml.NewDecoder(strings.NewReader(src))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("shim.toml: %v", err)
	}
	tests := []struct {
		name string
		got  any
		want any
	}{
		{name: "runtime", got: f.Runtime, want: "/usr/bin/runc"},
		{name: "mode", got: f.Mode, want: "enforce"},
		{name: "default", got: strings.Join(f.Default, ","), want: "CAP_AUDIT_WRITE,CAP_KILL,CAP_NET_BIND_SERVICE"},
		{name: "never", got: strings.Join(f.Never, ","), want: "CAP_SYS_ADMIN,CAP_SYS_MODULE"},
		{name: "on_denied_request", got: f.OnDeniedRequest, want: "drop"},
		{name: "log is set", got: f.Log != nil, want: true},
		{name: "log", got: deref(f.Log), want: "/var/log/capshim/decisions.log"},
		{name: "one example rule", got: len(f.Rule), want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
			}
		})
	}
	for i, r := range f.Rule {
		if r.Name == "" || len(r.Capabilities) == 0 {
			t.Errorf("rule %d: needs name and capabilities: %+v", i, r)
		}
		for k := range r.Match.Annotations {
			if !strings.HasPrefix(k, "io.kubernetes.cri.") {
				t.Errorf("rule %q matches on %q, which the pod author can set; match io.kubernetes.cri.* keys", r.Name, k)
			}
		}
	}

	// capshim itself must accept it, with the same meaning.
	p, err := policy.Parse([]byte(src), "configmap.yaml:shim.toml")
	if err != nil {
		t.Fatalf("capshim rejects the shipped policy: %v", err)
	}
	if p.Mode != policy.Enforce || p.FailOnDenied || p.Runtime != "/usr/bin/runc" || len(p.Rules) != 1 {
		t.Errorf("parsed policy = %+v", p)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<unset>"
	}
	return *s
}

func TestInstallerDaemonSet(t *testing.T) {
	d := find(t, loadDocs(t), "DaemonSet", "capshim-installer")
	if d.file != "installer-daemonset.yaml" {
		t.Errorf("DaemonSet is in %s, want installer-daemonset.yaml", d.file)
	}
	if ns := str(d.raw, "metadata", "namespace"); ns != "kube-system" {
		t.Errorf("namespace = %q, want kube-system", ns)
	}
	// selector must select the template's labels (apps/v1 requires it).
	sel := mapping(d.raw, "spec", "selector", "matchLabels")
	labels := mapping(d.raw, "spec", "template", "metadata", "labels")
	if len(sel) == 0 {
		t.Error("spec.selector.matchLabels is empty")
	}
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("selector %s=%v does not match template labels %v", k, v, labels)
		}
	}
	pod := mapping(d.raw, "spec", "template", "spec")
	if pod["hostPID"] != true {
		t.Error("template.spec.hostPID must be true (the default restart command enters pid 1's namespaces)")
	}
	if len(list(pod, "tolerations")) == 0 {
		t.Error("no tolerations: the installer must run on every node")
	}

	inits := list(pod, "initContainers")
	if len(inits) != 1 {
		t.Fatalf("want 1 init container, got %d", len(inits))
	}
	ic := inits[0]
	// privileged would ask runc for every capability, which fails where
	// root lacks one; the installer asks for the three it needs.
	if v, _ := get(ic, "securityContext", "privileged"); v == true {
		t.Error("init container must not be privileged")
	}
	if got := strings.Join(strs(list(ic, "securityContext", "capabilities", "add")), ","); got != "SYS_ADMIN,SYS_PTRACE,SYS_CHROOT" {
		t.Errorf("init container adds capabilities %s, want SYS_ADMIN,SYS_PTRACE,SYS_CHROOT", got)
	}
	if got := strings.Join(strs(list(ic, "securityContext", "capabilities", "drop")), ","); got != "ALL" {
		t.Errorf("init container drops %s, want ALL", got)
	}
	if got := strings.Join(strs(list(ic, "command")), " "); got != "/usr/local/bin/capshim-node-install" {
		t.Errorf("init container runs %q, want /usr/local/bin/capshim-node-install", got)
	}
	env := map[string]string{}
	for _, e := range list(ic, "env") {
		env[str(e, "name")] = str(e, "value")
	}
	for _, tc := range []struct{ name, value string }{
		{name: "CAPSHIM_ACTION", value: "install"},
		{name: "CAPSHIM_HOST_PREFIX", value: ""},
		{name: "CAPSHIM_RESTART_CMD", value: "nsenter -t 1 -m -u -i -n -p -- systemctl restart containerd"},
	} {
		if got, ok := env[tc.name]; !ok || got != tc.value {
			t.Errorf("init container env %s = %q (set: %v), want %q", tc.name, got, ok, tc.value)
		}
	}
	// The image is the one `make image` builds: its tag is VERSION.
	version, err := os.ReadFile(filepath.Join("..", "..", "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	wantImage := "ghcr.io/capshim/capshim-installer:" + strings.TrimSpace(string(version))
	ctrs := list(pod, "containers")
	if len(ctrs) != 1 {
		t.Errorf("want one main container, got %v", ctrs)
	}
	for _, c := range append(append([]any{}, inits...), ctrs...) {
		if got := str(c, "image"); got != wantImage {
			t.Errorf("container %s runs image %q, want %q (make image tags it with VERSION)", str(c, "name"), got, wantImage)
		}
	}
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "IMAGE_NAME := ghcr.io/capshim/capshim-installer:$(VERSION)") {
		t.Error("the Makefile does not name the image ghcr.io/capshim/capshim-installer:$(VERSION)")
	}

	// Every container has a name and an image; every mount has a volume.
	vols := map[string]any{}
	for _, v := range list(pod, "volumes") {
		vols[str(v, "name")] = v
	}
	for _, c := range append(append([]any{}, inits...), ctrs...) {
		if str(c, "name") == "" || str(c, "image") == "" {
			t.Errorf("container without name or image: %v", c)
		}
		for _, m := range list(c, "volumeMounts") {
			if _, ok := vols[str(m, "name")]; !ok {
				t.Errorf("container %s mounts undefined volume %q", str(c, "name"), str(m, "name"))
			}
			if !strings.HasPrefix(str(m, "mountPath"), "/") {
				t.Errorf("container %s: mountPath %q is not absolute", str(c, "name"), str(m, "mountPath"))
			}
		}
	}
	for _, tc := range []struct {
		name     string
		volume   string
		hostPath string
	}{
		{name: "binary directory", volume: "host-usr-local-bin", hostPath: "/usr/local/bin"},
		{name: "policy directory", volume: "host-etc-capshim", hostPath: "/etc/capshim"},
		{name: "containerd directory", volume: "host-etc-containerd", hostPath: "/etc/containerd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := str(vols[tc.volume], "hostPath", "path"); got != tc.hostPath {
				t.Errorf("volume %s hostPath = %q, want %q", tc.volume, got, tc.hostPath)
			}
		})
	}
	if got := str(vols["policy"], "configMap", "name"); got != "capshim-policy" {
		t.Errorf("policy volume uses ConfigMap %q, want capshim-policy", got)
	}
}

func TestExamplePod(t *testing.T) {
	d := find(t, loadDocs(t), "Pod", "capshim-demo")
	if d.file != "example-pod.yaml" {
		t.Errorf("Pod is in %s, want example-pod.yaml", d.file)
	}
	if rc := str(d.raw, "spec", "runtimeClassName"); rc != "capshim" {
		t.Errorf("runtimeClassName = %q, want capshim", rc)
	}
	req := str(d.raw, "metadata", "annotations", "capshim.io/capabilities")
	if req == "" {
		t.Fatal("no capshim.io/capabilities annotation")
	}
	// The example asks for what the example policy allows in its namespace.
	p, err := policy.Parse([]byte(shimTOML(t)), "configmap.yaml:shim.toml")
	if err != nil {
		t.Fatal(err)
	}
	ns := str(d.raw, "metadata", "namespace")
	granted := false
	for _, r := range p.Rules {
		if r.Matches(map[string]string{"io.kubernetes.cri.sandbox-namespace": ns}) {
			granted = true
		}
	}
	if !granted {
		t.Errorf("no rule of the example policy matches namespace %q of the example pod", ns)
	}
	ctrs := list(d.raw, "spec", "containers")
	if len(ctrs) == 0 {
		t.Fatal("no containers")
	}
	for _, c := range ctrs {
		if str(c, "name") == "" || str(c, "image") == "" {
			t.Errorf("container without name or image: %v", c)
		}
	}
}

func TestReadmeNamesEveryManifest(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		if !bytes.Contains(readme, []byte(f)) {
			t.Errorf("README.md does not mention %s", f)
		}
	}
}
