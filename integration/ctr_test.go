//go:build integration

package integration

// `ctr run --runc-binary capshim` on a private containerd: the capabilities
// the container process really has under each policy, and a broken policy
// that refuses new containers but does not block kill and delete.

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// ruleNetAdmin lets any container ask for CAP_NET_ADMIN and CAP_CHOWN.
const ruleNetAdmin = `[[rule]]
name = "net-admin-anywhere"
capabilities = ["CAP_NET_ADMIN", "CAP_CHOWN"]
`

// TestCtrRun runs `ctr run` through capshim (--runc-binary) and reads the
// capabilities the container process really has.
func TestCtrRun(t *testing.T) {
	requireContainerd(t)
	pol := newLivePolicy(t, policyTOML())
	d := startContainerd(t, nil, []string{"CAPSHIM_CONFIG=" + pol.path})
	const ns = "capshim-it-ctr"
	d.importImages(t, ns)

	tests := []struct {
		name       string
		policy     string
		runcBinary string // "" = plain runc (control)
		annotation string // capshim.io/capabilities value, "" = none
		want       uint64
		wantErr    []string // ctr run must fail with all of these in its output
	}{
		{
			name:       "control: plain runc keeps containerd defaults",
			policy:     policyTOML(ruleChown),
			annotation: "CAP_CHOWN",
			want:       maskDocker,
		},
		{
			name:       "no request: default target",
			policy:     policyTOML(ruleChown),
			runcBinary: capshimBin,
			want:       maskMinimal,
		},
		{
			name:       "request without rule is dropped",
			policy:     policyTOML(),
			runcBinary: capshimBin,
			annotation: "CAP_CHOWN",
			want:       maskMinimal,
		},
		{
			name:       "request allowed by rule is granted",
			policy:     policyTOML(ruleChown),
			runcBinary: capshimBin,
			annotation: "CAP_CHOWN",
			want:       maskMinimal | maskChown,
		},
		{
			name:       "request in lower case without prefix",
			policy:     policyTOML(ruleChown),
			runcBinary: capshimBin,
			annotation: "chown",
			want:       maskMinimal | maskChown,
		},
		{
			// NET_ADMIN is allowed but containerd did not grant it: never escalate.
			name:       "allowed capability outside the engine's set is not added",
			policy:     policyTOML(ruleNetAdmin),
			runcBinary: capshimBin,
			annotation: "CAP_NET_ADMIN,CAP_CHOWN",
			want:       maskMinimal | maskChown,
		},
		{
			name:       "audit mode changes nothing",
			policy:     strings.Replace(policyTOML(), `mode = "enforce"`, `mode = "audit"`, 1),
			runcBinary: capshimBin,
			annotation: "CAP_CHOWN",
			want:       maskDocker,
		},
		{
			name:       "denied request with on_denied_request=fail refuses the container",
			policy:     strings.Replace(policyTOML(), `on_denied_request = "drop"`, `on_denied_request = "fail"`, 1),
			runcBinary: capshimBin,
			annotation: "CAP_CHOWN",
			wantErr:    []string{"OCI runtime create failed", "capshim:", "CAP_CHOWN"},
		},
		{
			// Fail closed: the error reaches the user through containerd.
			name:       "unusable policy refuses the container",
			policy:     strings.Replace(policyTOML(), `mode = "enforce"`, `mode = "bogus"`, 1),
			runcBinary: capshimBin,
			wantErr:    []string{"OCI runtime create failed", "capshim:", "bogus"},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol.set(t, tc.policy)
			id := fmt.Sprintf("capshim-ctr-%d-%d", os.Getpid(), i)
			args := append([]string{"run", "--rm"}, d.ctrRunFlags(id)...)
			if tc.runcBinary != "" {
				args = append(args, "--runc-binary", tc.runcBinary)
			}
			if tc.annotation != "" {
				args = append(args, "--annotation", "capshim.io/capabilities="+tc.annotation)
			}
			args = append(args, imageBusybox, id, "grep", "Cap", "/proc/self/status")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			t.Cleanup(func() { d.ctrRemove(ns, id) }) // only matters when `run --rm` failed half-way
			start := time.Now()
			out, err := d.ctr(ctx, ns, args...)
			t.Logf("ctr run took %v", time.Since(start).Round(time.Millisecond))
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("ctr run succeeded, want failure; output:\n%s", out)
				}
				t.Logf("refused as expected: %s", strings.TrimSpace(out))
				for _, w := range tc.wantErr {
					if !strings.Contains(out, w) {
						t.Errorf("ctr run output lacks %q:\n%s", w, out)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\ncontainerd log:\n%s\ncapshim decisions:\n%s", err, d.logTail(15), pol.decisions(5))
			}
			assertCaps(t, out, tc.want)
			if t.Failed() {
				t.Logf("capshim decision: %s", pol.decisions(1))
			}
		})
	}

	// Fail closed applies to create/run/restore/exec only: with a broken
	// policy a running container must still be killed and deleted.
	t.Run("unusable policy does not block kill and delete", func(t *testing.T) {
		pol.set(t, policyTOML())
		id := fmt.Sprintf("capshim-ctr-%d-kill", os.Getpid())
		t.Cleanup(func() { d.ctrRemove(ns, id) })
		t.Cleanup(func() { pol.set(t, policyTOML()) }) // runs first
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		args := append([]string{"run", "--detach"}, d.ctrRunFlags(id)...)
		args = append(args, "--runc-binary", capshimBin, imageBusybox, id, "sleep", "300")
		if _, err := d.ctr(ctx, ns, args...); err != nil {
			t.Fatal(err)
		}
		pol.set(t, strings.Replace(policyTOML(), `mode = "enforce"`, `mode = "bogus"`, 1))
		if _, err := d.ctr(ctx, ns, "tasks", "kill", "--signal", "SIGKILL", id); err != nil {
			t.Fatalf("kill with a broken policy: %v", err)
		}
		var err error
		for i := 0; i < 50; i++ { // the task needs a moment to be reaped
			if _, err = d.ctr(ctx, ns, "tasks", "delete", id); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("delete with a broken policy: %v", err)
		}
	})
}
