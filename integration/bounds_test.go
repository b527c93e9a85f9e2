//go:build integration

package integration

// Requests far over capshim's bounds grant nothing, and what capshim logs
// about them stays short: it names a request's size, never its content.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRuncOversizedRequest starts real containers through the capshim
// binary with requests far over the bounds (4096 bytes, 64 names): such a
// request grants nothing, even when it starts with a capability a rule
// allows; under on_denied_request = "fail" the container does not start;
// and the runtime log, the decision log and stderr stay a few lines of a
// few kilobytes, naming the request's size, never its content.
func TestRuncOversizedRequest(t *testing.T) {
	requireRunc(t)
	mega := "CAP_CHOWN," + strings.Repeat("A", 1<<20)
	tests := []struct {
		name     string
		onDenied string
		bs       bundleSpec
		ok       bool   // the container runs
		want     string // in the runtime log
	}{
		{
			name: "1 MB annotation, drop", onDenied: "drop", ok: true,
			bs:   bundleSpec{annotations: map[string]string{"capshim.io/capabilities": mega}},
			want: `annotation \"capshim.io/capabilities\" refused: 1048586 bytes, over the limit of 4096 bytes; nothing in it is granted`,
		},
		{
			name: "1 MB podman annotation, fail", onDenied: "fail",
			bs:   bundleSpec{annotations: map[string]string{"io.containers.capabilities": mega}},
			want: `annotation \"io.containers.capabilities\" refused: 1048586 bytes`,
		},
		{
			// The kernel takes at most 128 KiB per environment string.
			name: "100 KB env, drop", onDenied: "drop", ok: true,
			bs:   bundleSpec{env: []string{"CAPSHIM_CAPABILITIES=" + mega[:100<<10]}},
			want: `env CAPSHIM_CAPABILITIES refused: 102400 bytes`,
		},
		{
			name: "65 names, fail", onDenied: "fail",
			bs:   bundleSpec{env: []string{"CAPSHIM_CAPABILITIES=CAP_CHOWN" + strings.Repeat(",chown", 64)}},
			want: `env CAPSHIM_CAPABILITIES refused: 65 names, over the limit of 64 names`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			decisions := filepath.Join(t.TempDir(), "decisions.jsonl")
			policy := writePolicy(t, strings.Replace(runcPolicy, `on_denied_request = "drop"`, `on_denied_request = "`+tc.onDenied+`"`, 1)+
				fmt.Sprintf("log = %q\n[[rule]]\nname = \"chown\"\ncapabilities = [\"CAP_CHOWN\"]\n", decisions))
			b := newBundle(t, tc.bs)
			res, log, _ := runBundle(t, b, policy)
			if tc.ok {
				if res.code != 0 {
					t.Fatalf("container failed:\n%s", res)
				}
				assertCaps(t, res.stdout, maskMinimal) // no CAP_CHOWN
			} else if res.code == 0 || strings.Contains(res.stdout, "CapBnd") {
				t.Fatalf("the container ran:\n%s", res)
			}
			runtimeLog := string(readFile(t, log))
			decisionLog := ""
			if data, err := os.ReadFile(decisions); err == nil {
				decisionLog = string(data)
			}
			t.Logf("runtime log %d bytes, decision log %d bytes, stderr %d bytes", len(runtimeLog), len(decisionLog), len(res.stderr))
			for what, out := range map[string]string{"runtime log": runtimeLog, "decision log": decisionLog, "stderr": res.stderr} {
				if len(out) > 4096 || strings.Count(out, "\n") > 2 {
					t.Errorf("%s: %d bytes, %d lines; want at most 4096 bytes in 2 lines:\n%.1000s", what, len(out), strings.Count(out, "\n"), out)
				}
				if strings.Contains(out, "AAAAAAAAAAAAAAAA") || strings.Contains(out, "chown,chown") {
					t.Errorf("%s echoes the request:\n%.1000s", what, out)
				}
			}
			if !strings.Contains(runtimeLog, tc.want) {
				t.Errorf("runtime log lacks %q:\n%s", tc.want, runtimeLog)
			}
			if tc.ok == (decisionLog == "") {
				t.Errorf("decision log = %q; want a line exactly when the container runs", decisionLog)
			}
		})
	}
}
