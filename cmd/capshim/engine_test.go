package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/engine"
	"github.com/capshim/capshim/policy"
	"github.com/capshim/capshim/spec"
)

// TestLogEngineRequest: a capability Docker added beyond its default set
// (--cap-add) is a request: the runtime log and the decision log name it,
// its source and whether it was granted or denied, and the spec keeps it
// only when a rule allows it.
func TestLogEngineRequest(t *testing.T) {
	docker14 := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
		"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	tests := []struct {
		name      string
		rule      string // capabilities of the one rule
		policyTop string
		caps      []string
		masked    bool
		wantMsg   string // in the runtime log's message; "" for no engine part
		wantKept  bool   // CAP_NET_ADMIN stays in the spec
		wantError string
	}{
		{name: "denied", rule: "CAP_CHOWN", caps: append(docker14, "CAP_NET_ADMIN"), masked: true,
			wantMsg: "docker --cap-add asked for CAP_NET_ADMIN: denied CAP_NET_ADMIN (no matching rule allows it)"},
		{name: "granted", rule: "CAP_NET_ADMIN", caps: append(docker14, "CAP_NET_ADMIN"), masked: true,
			wantMsg: "docker --cap-add asked for CAP_NET_ADMIN: granted CAP_NET_ADMIN", wantKept: true},
		{name: "engine_requests off", rule: "CAP_NET_ADMIN", policyTop: "engine_requests = false\n", caps: append(docker14, "CAP_NET_ADMIN"), masked: true},
		{name: "privileged", rule: "CAP_NET_ADMIN", caps: append(docker14, "CAP_NET_ADMIN", "CAP_SYS_ADMIN")},
		{name: "denied and on_denied_request = fail", rule: "CAP_CHOWN", policyTop: "on_denied_request = \"fail\"\n", caps: append(docker14, "CAP_NET_ADMIN"), masked: true,
			wantError: "not allowed by any matching rule: CAP_NET_ADMIN (CAP_NET_ADMIN added by docker --cap-add)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bundle := filepath.Join(dir, "bundle")
			if err := os.Mkdir(bundle, 0o755); err != nil {
				t.Fatal(err)
			}
			cfg := config(nil, nil, tt.caps)
			if tt.masked {
				cfg["linux"] = map[string]any{"maskedPaths": []string{"/proc/kcore"}}
			}
			data, _ := json.Marshal(cfg)
			if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			logPath, decisions := filepath.Join(dir, "log.json"), filepath.Join(dir, "decisions.jsonl")
			pol, err := policy.Parse([]byte(tt.policyTop+"log = "+strconv.Quote(decisions)+"\n[[rule]]\nname = \"r\"\ncapabilities = [\""+tt.rule+"\"]\n"), "test.toml")
			if err != nil {
				t.Fatal(err)
			}
			pol.Explain = false
			// dockerd's runtime root ends in its containerd namespace.
			ra, err := parseRuntimeArgs([]string{"--root", filepath.Join(dir, "runtime-capshim", "moby"), "--log", logPath, "--log-format", "json",
				"create", "--bundle", bundle, "--pid-file", filepath.Join(dir, "pid"), "c1"})
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			_, err = reduce(ra, pol, newRuntimeLog(ra, &stderr), "/usr/bin/runc")
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("err %v, want %q in it", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var line struct {
				Msg           string   `json:"msg"`
				Engine        string   `json:"engine"`
				EngineRequest []string `json:"engine_request"`
				EngineFlag    string   `json:"engine_flag"`
				Denied        []string `json:"denied"`
			}
			rl, _ := os.ReadFile(logPath)
			if err := json.Unmarshal(rl, &line); err != nil {
				t.Fatalf("runtime log %q: %v", rl, err)
			}
			if tt.wantMsg == "" {
				if line.EngineRequest != nil || strings.Contains(line.Msg, "asked for") {
					t.Fatalf("the log names an engine request: %s", rl)
				}
			} else {
				if !strings.Contains(line.Msg, tt.wantMsg) {
					t.Fatalf("runtime log message %q, want %q in it", line.Msg, tt.wantMsg)
				}
				if line.Engine != "docker" || line.EngineFlag != "docker --cap-add" || !slices.Equal(line.EngineRequest, []string{"CAP_NET_ADMIN"}) {
					t.Fatalf("runtime log fields: %s", rl)
				}
				if denied := slices.Contains(line.Denied, "CAP_NET_ADMIN"); denied == tt.wantKept {
					t.Fatalf("denied %v, want CAP_NET_ADMIN denied: %v", line.Denied, !tt.wantKept)
				}
				dl, _ := os.ReadFile(decisions)
				if !bytes.Contains(dl, []byte(`"engine_request":["CAP_NET_ADMIN"]`)) || !bytes.Contains(dl, []byte(`"engine_flag":"docker --cap-add"`)) {
					t.Fatalf("decision log: %s", dl)
				}
			}
			out, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
			if kept := bytes.Contains(out, []byte("CAP_NET_ADMIN")); kept != tt.wantKept {
				t.Fatalf("CAP_NET_ADMIN kept %v, want %v: %s", kept, tt.wantKept, out)
			}
		})
	}
}

// TestEngineRealSpecs: the specs and command lines Docker 20.10, Podman
// 4.3.1 and containerd 1.6's CRI wrote on this machine (spec/testdata/engines) tell the
// engine, and what their --cap-add asked for, under a policy whose rule
// allows CAP_NET_ADMIN.
func TestEngineRealSpecs(t *testing.T) {
	const dir = "../../spec/testdata/engines/"
	argv, err := os.ReadFile(dir + "argv.txt")
	if err != nil {
		t.Fatal(err)
	}
	roots := map[string]string{} // engine's first create: its --root
	for _, line := range strings.Split(string(argv), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] == "#" {
			continue
		}
		ra, err := parseRuntimeArgs(f)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		kind := "podman"
		switch {
		case strings.Contains(line, "/moby/"):
			kind = "docker"
		case strings.Contains(line, "/k8s.io/"):
			kind = "kubernetes"
		}
		if _, ok := roots[kind]; !ok && ra.command == "create" {
			roots[kind] = ra.root
		}
	}
	if roots["podman"] != "" || !strings.HasSuffix(roots["docker"], "/moby") {
		t.Fatalf("runtime roots %q: want dockerd's ending in /moby and none from podman", roots)
	}
	pol, err := policy.Parse([]byte("[[rule]]\nname = \"net\"\ncapabilities = [\"CAP_NET_ADMIN\"]\n"), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file       string
		engine     string
		fromEngine string
		target     string // the bounding set the runtime gets
	}{
		{file: "docker-default.json", engine: "docker", target: "CAP_KILL,CAP_NET_BIND_SERVICE,CAP_AUDIT_WRITE"},
		{file: "docker-cap-add-net-admin.json", engine: "docker", fromEngine: "CAP_NET_ADMIN", target: "CAP_KILL,CAP_NET_BIND_SERVICE,CAP_NET_ADMIN,CAP_AUDIT_WRITE"},
		{file: "docker-cap-drop-all-cap-add-net-admin.json", engine: "docker", fromEngine: "CAP_NET_ADMIN", target: "CAP_NET_ADMIN"},
		{file: "docker-privileged.json", engine: "docker", target: "CAP_KILL,CAP_NET_BIND_SERVICE,CAP_AUDIT_WRITE"},
		{file: "podman-default.json", engine: "podman", target: "CAP_KILL,CAP_NET_BIND_SERVICE"},
		{file: "podman-cap-add-net-admin.json", engine: "podman", fromEngine: "CAP_NET_ADMIN", target: "CAP_KILL,CAP_NET_BIND_SERVICE,CAP_NET_ADMIN"},
		{file: "podman-privileged.json", engine: "podman", target: "CAP_KILL,CAP_NET_BIND_SERVICE,CAP_AUDIT_WRITE"},
		// The CRI client set no masked paths (kubelet would): the spec
		// grants no CAP_SYS_ADMIN, so it is no privileged one.
		{file: "cri-cap-add-net-admin.json", engine: "kubernetes", fromEngine: "CAP_NET_ADMIN", target: "CAP_KILL,CAP_NET_BIND_SERVICE,CAP_NET_ADMIN,CAP_AUDIT_WRITE"},
		{file: "cri-privileged.json", engine: "kubernetes", target: "CAP_KILL,CAP_NET_BIND_SERVICE,CAP_AUDIT_WRITE"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(dir + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := spec.Parse(data, spec.Config)
			if err != nil {
				t.Fatal(err)
			}
			e := engine.Identify(doc.Annotations, roots[tt.engine])
			if e.String() != tt.engine {
				t.Fatalf("engine %v, want %s", e, tt.engine)
			}
			o, err := pol.Apply(doc, doc.Annotations, nil, e)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(o.Decision.FromEngine.Names(), ","); got != tt.fromEngine {
				t.Errorf("engine request %q, want %q", got, tt.fromEngine)
			}
			if got := o.Sets[spec.Bounding].String(); got != tt.target {
				t.Errorf("bounding %s, want %s", got, tt.target)
			}
		})
	}
	// An exec's process.json (Docker and the CRI copy the container's
	// process) asks for the added capability again: it gets it where the
	// container has it, and nothing where the container does not.
	for _, tt := range []struct{ create, exec, engine string }{
		{"docker-cap-add-net-admin.json", "docker-exec-cap-add-net-admin.process.json", "docker"},
		{"cri-cap-add-net-admin.json", "cri-exec-cap-add-net-admin.process.json", "kubernetes"},
	} {
		t.Run(tt.exec, func(t *testing.T) {
			read := func(file string, kind spec.Kind) *spec.Doc {
				data, err := os.ReadFile(dir + file)
				if err != nil {
					t.Fatal(err)
				}
				doc, err := spec.Parse(data, kind)
				if err != nil {
					t.Fatal(err)
				}
				return doc
			}
			c := read(tt.create, spec.Config)
			e := engine.Identify(c.Annotations, roots[tt.engine])
			for _, p := range []*policy.Policy{pol, policy.Builtin()} {
				created, err := p.Apply(c, c.Annotations, nil, e)
				if err != nil {
					t.Fatal(err)
				}
				x := read(tt.exec, spec.Process)
				o, err := p.Apply(x, c.Annotations, &created.Sets, e)
				if err != nil {
					t.Fatal(err)
				}
				if o.Sets[spec.Bounding] != created.Sets[spec.Bounding] {
					t.Errorf("%s: exec bounding %s, the container's %s", p.Source, o.Sets[spec.Bounding], created.Sets[spec.Bounding])
				}
				if has := o.Sets[spec.Bounding].Has(capability.NetAdmin); has != (p == pol) {
					t.Errorf("%s: exec holds CAP_NET_ADMIN: %v", p.Source, has)
				}
			}
		})
	}
}
