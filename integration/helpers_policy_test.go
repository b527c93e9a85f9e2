//go:build integration

package integration

// The policies the tests run under: the example policy on runc, the engine
// tests' policy with one CAP_CHOWN rule, a broken one, and a policy file
// that a test rewrites between cases while a running engine keeps handing
// its path to capshim.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writePolicy writes a capshim policy file into a fresh root-owned 0755
// directory and returns its path.
func writePolicy(t *testing.T, toml string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "shim.toml")
	writeFile(t, p, toml, 0o644)
	return p
}

// runcPolicy is the example policy with runc as the runtime.
const runcPolicy = `runtime = "/usr/bin/runc"
mode = "enforce"
default = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
never = ["CAP_SYS_ADMIN", "CAP_SYS_MODULE"]
on_denied_request = "drop"
`

// policyWithRuntime writes runcPolicy with runtime = rt.
func policyWithRuntime(t *testing.T, rt string) string {
	t.Helper()
	return writePolicy(t, strings.Replace(runcPolicy, `runtime = "/usr/bin/runc"`, fmt.Sprintf("runtime = %q", rt), 1))
}

// policyHeader is the common part of the test policies: Docker's three
// capabilities that capshim keeps by default (maskMinimal) and the
// capabilities no rule may grant. Append runtime, rules, etc.
const policyHeader = `mode = "enforce"
default = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
never = ["CAP_SYS_ADMIN", "CAP_SYS_MODULE"]
on_denied_request = "drop"
log = ""
`

// chownPolicy returns a policy for the runtime at runtimePath whose only rule
// lets any container ask for CAP_CHOWN. (A rule naming a `never`
// capability is a load error, so no rule lists CAP_SYS_ADMIN.)
func chownPolicy(runtimePath string) string {
	return fmt.Sprintf("runtime = %q\n", runtimePath) + policyHeader + `
[[rule]]
name = "chown-for-everyone"
capabilities = ["CAP_CHOWN"]
`
}

// brokenPolicy is a policy file with a TOML syntax error (unterminated
// string): capshim must refuse to start the container.
const brokenPolicy = "runtime = \"/usr/bin/runc\"\nmode = \"enforce\ndefault = [\n"

// policyTOML renders runcPolicy with the given [[rule]] tables (already
// rendered) and an empty log, which livePolicy.set points at its decision
// log.
func policyTOML(rules ...string) string {
	s := runcPolicy + "log = \"\"\n"
	for _, r := range rules {
		s += "\n" + r
	}
	return s
}

// ruleChown lets any container ask for CAP_CHOWN.
const ruleChown = `[[rule]]
name = "chown-anywhere"
capabilities = ["CAP_CHOWN"]
`

// livePolicy holds a policy file whose content a test can replace between
// cases: capshim reads it on every container start (env CAPSHIM_CONFIG).
// Its decisions go to a log next to it (log = "" is replaced).
type livePolicy struct {
	path    string
	logPath string
}

// newLivePolicy writes toml as a livePolicy in a fresh directory.
func newLivePolicy(t *testing.T, toml string) *livePolicy {
	t.Helper()
	p := &livePolicy{path: writePolicy(t, "")}
	p.logPath = filepath.Join(filepath.Dir(p.path), "decisions.log")
	p.set(t, toml)
	return p
}

// set replaces the policy atomically (write + rename in the same
// root-owned directory, mode 0644).
func (p *livePolicy) set(t *testing.T, toml string) {
	t.Helper()
	toml = strings.Replace(toml, "\nlog = \"\"\n", fmt.Sprintf("\nlog = %q\n", p.logPath), 1)
	tmp := p.path + ".new"
	writeFile(t, tmp, toml, 0o644)
	if err := os.Rename(tmp, p.path); err != nil {
		t.Fatal(err)
	}
}

// decisions returns the last n lines of capshim's decision log.
func (p *livePolicy) decisions(n int) string {
	data, _ := os.ReadFile(p.logPath)
	return lastLines(string(data), n)
}
