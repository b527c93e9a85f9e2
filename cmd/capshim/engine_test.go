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

	"github.com/capshim/capshim/policy"
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
