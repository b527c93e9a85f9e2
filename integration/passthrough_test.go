//go:build integration

package integration

// Commands that carry no capabilities (state, kill, delete) reach runc
// even with a broken policy, with a warning, while create still fails
// closed; a policy naming an untrusted runtime is not worked around.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHardPassThroughBrokenPolicy(t *testing.T) {
	requireRunc(t)
	good := writePolicy(t, runcPolicy)
	broken := []struct {
		name   string
		policy func(t *testing.T) string
	}{
		{name: "syntax error", policy: func(t *testing.T) string { return writePolicy(t, runcPolicy+"[[rule]\nname = \n") }},
		{name: "missing", policy: func(t *testing.T) string { return filepath.Join(newDir(t, 0o755), "absent.toml") }},
		{name: "directory", policy: func(t *testing.T) string {
			p := filepath.Join(newDir(t, 0o755), "shim.toml")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{name: "mode 0666", policy: func(t *testing.T) string {
			p := writePolicy(t, runcPolicy)
			if err := os.Chmod(p, 0o666); err != nil {
				t.Fatal(err)
			}
			return p
		}},
	}
	for _, bp := range broken {
		t.Run(bp.name, func(t *testing.T) {
			policy := bp.policy(t)
			env := shimEnv(policy)
			root := runcRoot(t)
			side := t.TempDir()

			// A container that does not exist: runc answers.
			for _, c := range []struct {
				name string
				args []string
			}{
				{name: "state", args: []string{"state", "nosuch"}},
				{name: "kill", args: []string{"kill", "nosuch", "KILL"}},
				{name: "delete", args: []string{"delete", "nosuch"}},
			} {
				t.Run(c.name+" nosuch", func(t *testing.T) {
					log := filepath.Join(side, c.name+".log.json")
					res := requireExited(t, runCmd(cmdOpts{env: env}, capshimBin, append(globalArgs(root, log), c.args...)...))
					defer func() {
						if t.Failed() {
							t.Logf("policy %s\ndetails:\n%s", policy, res)
						}
					}()
					if res.code == 0 {
						t.Errorf("exit 0 for a container that does not exist")
					}
					runcErr := false
					for _, m := range logMsgs(t, log, "error") {
						if strings.HasPrefix(m, "capshim:") {
							t.Errorf("capshim refused a pass-through command: %q", m)
						}
						runcErr = runcErr || strings.Contains(m, "container does not exist")
					}
					if !runcErr && !strings.Contains(res.stderr, "container does not exist") {
						t.Errorf(`runc's "container does not exist" is neither in --log nor on stderr: the command did not reach runc`)
					}
					checkWarning(t, log, c.args[0])
				})
			}

			// A live container started with a good policy can still be
			// inspected, stopped and removed.
			t.Run("live container", func(t *testing.T) {
				b := newBundle(t, bundleSpec{args: []string{"sleep", "1000"}})
				id := containerID(t)
				runcCleanup(t, root, id)
				startLog := filepath.Join(side, "live-start.log.json")
				res := runCmd(cmdOpts{env: shimEnv(good)}, capshimBin, append(globalArgs(root, startLog), "run", "--detach", "--bundle", b, id)...)
				if res.code != 0 {
					t.Fatalf("starting the container with the good policy failed:\n%s", res)
				}
				runcWaitStatus(t, root, id, "running")
				log := filepath.Join(side, "live.log.json")
				shim := func(args ...string) cmdResult {
					t.Helper()
					return runCmd(cmdOpts{env: env}, capshimBin, append(globalArgs(root, log), args...)...)
				}
				if res := shim("state", id); res.code != 0 || !strings.Contains(res.stdout, `"status": "running"`) {
					t.Errorf("state with a broken policy: want runc's JSON with status running:\n%s", res)
				}
				if res := shim("kill", id, "KILL"); res.code != 0 {
					t.Fatalf("kill with a broken policy failed:\n%s", res)
				}
				runcWaitStatus(t, root, id, "stopped")
				if res := shim("delete", id); res.code != 0 {
					t.Fatalf("delete with a broken policy failed:\n%s", res)
				}
				if runcExists(root, id) {
					t.Errorf("container %s still exists after delete", id)
				}
				for _, w := range []string{"state", "kill", "delete"} {
					checkWarning(t, log, w)
				}
				// create still fails closed with the same policy.
				b2 := newBundle(t, bundleSpec{})
				id2 := containerID(t)
				runcCleanup(t, root, id2)
				clog := filepath.Join(side, "create.log.json")
				res = requireExited(t, runCmd(cmdOpts{env: env}, capshimBin, append(globalArgs(root, clog), "create", "--bundle", b2, id2)...))
				if res.code == 0 || runcExists(root, id2) {
					t.Errorf("create with the broken policy was not refused:\n%s", res)
				}
				checkErrorLog(t, clog, "json")
			})
		})
	}
}

// TestHardPassThroughUntrustedRuntime: a policy that loads but names a
// runtime others could change is not a broken policy that capshim works
// around: capshim never execs a binary it does not trust, so even state,
// kill and delete are refused (with a capshim error line), and runc on PATH
// is not silently used instead.
func TestHardPassThroughUntrustedRuntime(t *testing.T) {
	requireRunc(t)
	rt := runtimeCopy(t, 0o777, 0, 0o755)
	policy := policyWithRuntime(t, rt)
	root, side := runcRoot(t), t.TempDir()
	for _, args := range [][]string{{"state", "nosuch"}, {"kill", "nosuch", "KILL"}, {"delete", "nosuch"}} {
		t.Run(args[0], func(t *testing.T) {
			log := filepath.Join(side, args[0]+".log.json")
			res := requireExited(t, runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(globalArgs(root, log), args...)...))
			if res.code == 0 {
				t.Errorf("exit 0 through an untrusted runtime")
			}
			msg := checkErrorLog(t, log, "json")
			if miss, ok := containsAll(msg, "untrusted runtime", rt); msg != "" && !ok {
				t.Errorf("error message does not name the problem (no %q): %q", miss, msg)
			}
			for _, m := range logMsgs(t, log, "error") {
				if strings.Contains(m, "container does not exist") {
					t.Errorf("the untrusted runtime (or another runc) ran: %q", m)
				}
			}
			if t.Failed() {
				t.Logf("details:\n%s", res)
			}
		})
	}
}

// checkWarning checks the --log file has a warning line from capshim
// that names the pass-through command.
func checkWarning(t *testing.T, log, command string) {
	t.Helper()
	for _, m := range logMsgs(t, log, "warning") {
		if strings.HasPrefix(m, "capshim:") && strings.Contains(m, command+" carries no capabilities") {
			return
		}
	}
	data, _ := os.ReadFile(log)
	t.Errorf("--log has no capshim warning line for %s:\n%s", command, data)
}
