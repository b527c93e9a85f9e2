//go:build integration

package integration

// Requests for capabilities through the process environment
// (CAPSHIM_CAPABILITIES) and the capshim.io/capabilities annotation: a
// matching rule grants them, nothing beyond what the engine gave is added,
// and a rule that names a capability of never is a load error.

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestRuncRequests(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy+`
[[rule]]
name = "chown-for-all"
capabilities = ["CAP_CHOWN"]

[[rule]]
name = "net-team"
capabilities = ["CAP_NET_RAW"]
[rule.match.annotations]
"team.example.com/name" = "net-*"
`)
	tests := []struct {
		name string
		bs   bundleSpec
		want uint64
	}{
		{name: "env CHOWN granted",
			bs:   bundleSpec{env: []string{"CAPSHIM_CAPABILITIES=CAP_CHOWN"}},
			want: maskMinimal | maskChown},
		{name: "env lower case without prefix",
			bs:   bundleSpec{env: []string{"CAPSHIM_CAPABILITIES=chown"}},
			want: maskMinimal | maskChown},
		// SYS_ADMIN is in the input and requested, but in never (and so
		// in no rule).
		{name: "env SYS_ADMIN never",
			bs:   bundleSpec{extraCaps: []string{"CAP_SYS_ADMIN"}, env: []string{"CAPSHIM_CAPABILITIES=CAP_SYS_ADMIN"}},
			want: maskMinimal},
		{name: "env SYS_ADMIN and CHOWN",
			bs:   bundleSpec{extraCaps: []string{"CAP_SYS_ADMIN"}, env: []string{"CAPSHIM_CAPABILITIES=CAP_SYS_ADMIN,CAP_CHOWN"}},
			want: maskMinimal | maskChown},
		// NET_RAW is in the input but no matching rule allows it.
		{name: "env NET_RAW not allowed",
			bs:   bundleSpec{env: []string{"CAPSHIM_CAPABILITIES=CAP_NET_RAW"}},
			want: maskMinimal},
		{name: "annotation CHOWN granted",
			bs:   bundleSpec{annotations: map[string]string{"capshim.io/capabilities": "CAP_CHOWN"}},
			want: maskMinimal | maskChown},
		{name: "annotation SYS_ADMIN never",
			bs:   bundleSpec{extraCaps: []string{"CAP_SYS_ADMIN"}, annotations: map[string]string{"capshim.io/capabilities": "CAP_SYS_ADMIN"}},
			want: maskMinimal},
		{name: "annotation glob matches",
			bs: bundleSpec{annotations: map[string]string{
				"capshim.io/capabilities": "CAP_NET_RAW",
				"team.example.com/name":   "net-ops",
			}},
			want: maskMinimal | maskNetRaw},
		{name: "annotation glob does not match",
			bs: bundleSpec{annotations: map[string]string{
				"capshim.io/capabilities": "CAP_NET_RAW",
				"team.example.com/name":   "web",
			}},
			want: maskMinimal},
		{name: "annotation rule without its annotation",
			bs:   bundleSpec{annotations: map[string]string{"capshim.io/capabilities": "CAP_NET_RAW,CAP_CHOWN"}},
			want: maskMinimal | maskChown},
		{name: "no request",
			bs:   bundleSpec{},
			want: maskMinimal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, tc.bs)
			res, _, _ := runBundle(t, b, policy)
			if res.code != 0 {
				t.Fatalf("container failed:\n%s", res)
			}
			assertCaps(t, res.stdout, tc.want)
			if t.Failed() {
				t.Logf("details:\n%s", res)
			}
		})
	}
}

// TestRuncRuleListsNeverCap: a rule that lists a capability of never
// (SYS_ADMIN) is a load error, so capshim fails closed: nothing starts,
// config.json is unchanged, and the --log line names the rule and never.
func TestRuncRuleListsNeverCap(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy+`
[[rule]]
name = "admin"
capabilities = ["CAP_CHOWN", "CAP_SYS_ADMIN"]
`)
	b := newBundle(t, bundleSpec{extraCaps: []string{"CAP_SYS_ADMIN"}, env: []string{"CAPSHIM_CAPABILITIES=CAP_SYS_ADMIN,CAP_CHOWN"}})
	before := readFile(t, filepath.Join(b, "config.json"))
	res, log, _ := runBundle(t, b, policy)
	if res.code == 0 {
		t.Fatalf("capshim started a container under a policy whose rule lists a never capability:\n%s", res)
	}
	if strings.Contains(res.stdout, "CapBnd") {
		t.Errorf("the container ran although capshim failed")
	}
	if !bytes.Equal(before, readFile(t, filepath.Join(b, "config.json"))) {
		t.Errorf("config.json changed")
	}
	msg := checkErrorLog(t, log, "json")
	for _, want := range []string{`"admin"`, "CAP_SYS_ADMIN", "never"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error line %q does not name %s", msg, want)
		}
	}
}

// TestRuncRequestNoEscalation: a granted request for a capability the
// engine did not give is not added.
func TestRuncRequestNoEscalation(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy+`
[[rule]]
name = "time"
capabilities = ["CAP_SYS_TIME"]
`)
	b := newBundle(t, bundleSpec{env: []string{"CAPSHIM_CAPABILITIES=CAP_SYS_TIME"}})
	root, id := runcRoot(t), containerID(t)
	runcCleanup(t, root, id)
	res := runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(globalArgs(root, filepath.Join(b, "log.json")), "run", "--bundle", b, id)...)
	if res.code != 0 {
		t.Fatalf("container failed:\n%s", res)
	}
	assertCaps(t, res.stdout, maskMinimal)
	if t.Failed() {
		t.Logf("details:\n%s", res)
	}
}
