//go:build integration

package integration

// Helpers of the tests that learn and explain through real engines
// (Docker, Podman, containerd's CRI, the kubelet) and of the decision log
// report: the chown workload, policies that learn, and capshim's learn and
// explain commands run on a test's own state directory.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capshim/capshim/trace/pinned"
)

// chownScript chowns a file in the container's own root file system and
// prints whether it could, then the container's Cap* lines.
var chownScript = workloadCheck("chown", "touch /tmp/f && chown 1000 /tmp/f") + "; grep Cap /proc/self/status"

// engineLearnPolicy is a policy for runc with capshim's default target, its
// profiles and records in stateDir, its decisions and warnings in log.
func engineLearnPolicy(stateDir, log string, rules ...string) string {
	s := fmt.Sprintf(`runtime = "/usr/bin/runc"
mode = "enforce"
default = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
never = ["CAP_SYS_ADMIN", "CAP_SYS_MODULE"]
on_denied_request = "drop"
state_dir = %q
log = %q
`, stateDir, log)
	for _, r := range rules {
		s += "\n" + r
	}
	return s
}

const (
	ruleLearnOnAsk = `[[rule]]
name = "may-ask-to-learn"
learn = true
`
	ruleLearnAll = `[[rule]]
name = "learn-everything"
mode = "learn"
`
	ruleLearnNamespace = `[[rule]]
name = "learn-namespaces"
mode = "learn"
[rule.match.annotations]
"io.kubernetes.cri.sandbox-namespace" = "learn-*"
`
)

// newStateDir makes a state directory for a test's policies.
func newStateDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "state")
}

// stateTool runs one of capshim's commands (learn, explain) on stateDir,
// from the test's bin directory as an administrator would.
func stateTool(stateDir string, args ...string) cmdResult {
	return runCmd(cmdOpts{timeout: time.Minute, env: envWithout([]string{"CAPSHIM_"})}, capshimBin, append(args, "--state-dir", stateDir)...)
}

// keepLine is the line of an emitted rule that keeps exactly caps.
func keepLine(caps ...string) string {
	q := make([]string, len(caps))
	for i, c := range caps {
		q[i] = fmt.Sprintf("%q", c)
	}
	return "keep = [" + strings.Join(q, ", ") + "]\n"
}

// learnShow is `capshim learn show name`, which must succeed and keep
// exactly caps.
func learnShow(t *testing.T, stateDir, name string, caps ...string) string {
	t.Helper()
	r := stateTool(stateDir, "learn", "show", name)
	if r.err != nil {
		list := stateTool(stateDir, "learn", "list")
		t.Fatalf("%v\nlearn list:\n%s", r, list.stdout)
	}
	if !strings.Contains(r.stdout, keepLine(caps...)) {
		t.Fatalf("profile %s does not keep exactly %v:\n%s", name, caps, r.stdout)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		t.Logf("learn show %s: %s", name, line)
	}
	return r.stdout
}

// requireNoProfile checks that no profile name was made.
func requireNoProfile(t *testing.T, stateDir, name string) {
	t.Helper()
	if r := stateTool(stateDir, "learn", "show", name); r.err == nil {
		t.Errorf("a learn request no rule allows made profile %s:\n%s", name, r.stdout)
	}
}

// explainRefusedChown is `capshim explain query`, which must find the container
// and say that it was refused the dropped CAP_CHOWN. It returns the text.
func explainRefusedChown(t *testing.T, stateDir, query string) string {
	t.Helper()
	r := stateTool(stateDir, "explain", query)
	if r.err != nil {
		t.Fatalf("%v", r)
	}
	if !strings.Contains(r.stdout, "refused CAP_CHOWN") || strings.Count(r.stdout, "which the policy dropped") != 1 {
		t.Fatalf("explain %s does not name CAP_CHOWN alone as the dropped capability the container was refused:\n%s", query, r.stdout)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		t.Logf("explain %s: %s", query, line)
	}
	return r.stdout
}

// requireLogLine checks the policy's log for a line holding want.
func requireLogLine(t *testing.T, log, want string) {
	t.Helper()
	data, _ := os.ReadFile(log)
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, want) {
			t.Logf("log: %s", line)
			return
		}
	}
	t.Errorf("no line with %q in %s:\n%s", want, log, tailFile(log, 10))
}

// chownWorked reports what the chown workload printed: true for OK,
// false for FAIL; neither fails the test.
func chownWorked(t *testing.T, out string) bool {
	t.Helper()
	switch {
	case strings.Contains(out, "capshim-workload: OK chown"):
		return true
	case strings.Contains(out, "capshim-workload: FAIL chown"):
		return false
	}
	t.Fatalf("the workload printed neither OK nor FAIL:\n%s", out)
	return false
}

// requireRecorderUnpinned checks that capshim's recorder is gone from bpffs once no
// container is watched: it unpins itself at the last harvest.
func requireRecorderUnpinned(t *testing.T) {
	t.Helper()
	const pins = pinned.DefaultDir
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(pins); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			ents, _ := os.ReadDir(pins)
			t.Errorf("%s still exists after every container was removed (%d entries)", pins, len(ents))
			return
		}
	}
}

// runEngineContainer runs one container with --rm and --cidfile through an
// engine's CLI (docker or podman) and returns what it printed and its id.
func runEngineContainer(t *testing.T, cli func(args ...string) cmdResult, args ...string) (out, id string) {
	t.Helper()
	cid := filepath.Join(t.TempDir(), "cid")
	argv := append([]string{"run", "--rm", "--network", "none", "--cidfile", cid}, args...)
	r := cli(argv...)
	data, _ := os.ReadFile(cid)
	id = strings.TrimSpace(string(data))
	if id == "" {
		t.Fatalf("no container id in %s: %v", cid, r)
	}
	if r.err != nil && !strings.Contains(r.stdout, "capshim-workload") {
		t.Fatalf("%v", r)
	}
	return r.stdout, id
}
