//go:build integration

package integration

// capshim fails closed in front of runc: a broken policy, a broken
// config.json, or a request the policy denies under on_denied_request =
// "fail" starts nothing and changes nothing, and capshim says why in the
// runtime log (JSON or text, as asked) and on stderr.

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRuncFailClosed(t *testing.T) {
	requireRunc(t)
	good := writePolicy(t, runcPolicy)
	cases := []struct {
		name string
		// policy returns the policy path for this case.
		policy func(t *testing.T) string
		// spoil damages the bundle; it returns false when config.json is
		// gone (nothing to compare).
		spoil func(t *testing.T, b string) bool
		// names are substrings one of which the error message must hold
		// (case-insensitive) to name the problem.
		names []string
		// format is the --log-format.
		format string
	}{
		{name: "policy syntax error",
			policy: func(t *testing.T) string { return writePolicy(t, runcPolicy+"[[rule]\nname = \n") },
			names:  []string{"polic", "shim.toml", "toml"}},
		{name: "policy unknown key",
			policy: func(t *testing.T) string { return writePolicy(t, runcPolicy+"frobnicate = true\n") },
			names:  []string{"frobnicate"}},
		{name: "policy unknown capability",
			policy: func(t *testing.T) string {
				return writePolicy(t, strings.Replace(runcPolicy, `"CAP_KILL"`, `"CAP_BOGUS"`, 1))
			},
			names: []string{"CAP_BOGUS", "bogus"}},
		{name: "policy missing",
			policy: func(t *testing.T) string { return filepath.Join(t.TempDir(), "absent.toml") },
			names:  []string{"absent.toml", "polic"}},
		{name: "config.json missing",
			spoil: func(t *testing.T, b string) bool {
				if err := os.Remove(filepath.Join(b, "config.json")); err != nil {
					t.Fatal(err)
				}
				return false
			},
			names: []string{"config.json"}},
		{name: "config.json truncated",
			spoil: func(t *testing.T, b string) bool {
				p := filepath.Join(b, "config.json")
				data := readFile(t, p)
				writeFile(t, p, string(data[:len(data)/2]), 0o644)
				return true
			},
			names: []string{"config.json"}},
		{name: "config.json not an object",
			spoil: func(t *testing.T, b string) bool {
				writeFile(t, filepath.Join(b, "config.json"), `["not","a","spec"]`, 0o644)
				return true
			},
			names: []string{"config.json"}},
		{name: "text log format policy syntax error", format: "text",
			policy: func(t *testing.T) string { return writePolicy(t, "runtime = \n") },
			names:  []string{"polic", "shim.toml", "toml"}},
		{name: "text log format truncated config", format: "text",
			spoil: func(t *testing.T, b string) bool {
				p := filepath.Join(b, "config.json")
				data := readFile(t, p)
				writeFile(t, p, string(data[:len(data)/2]), 0o644)
				return true
			},
			names: []string{"config.json"}},
	}
	for _, tc := range cases {
		for _, cmdWord := range []string{"run", "create"} {
			t.Run(tc.name+"/"+cmdWord, func(t *testing.T) {
				// The container would leave a marker in its rootfs if it ran.
				b := newBundle(t, bundleSpec{args: []string{"sh", "-c", "echo ran > /ran-marker"}})
				root, id := runcRoot(t), containerID(t)
				runcCleanup(t, root, id)
				policy := good
				if tc.policy != nil {
					policy = tc.policy(t)
				}
				hasConfig := true
				if tc.spoil != nil {
					hasConfig = tc.spoil(t, b)
				}
				var before []byte
				if hasConfig {
					before = readFile(t, filepath.Join(b, "config.json"))
				}
				format := tc.format
				if format == "" {
					format = "json"
				}
				log := filepath.Join(b, "log.json")
				args := []string{"--root", root, "--log", log, "--log-format", format, cmdWord, "--bundle", b}
				if cmdWord == "create" {
					args = append(args, "--pid-file", filepath.Join(b, "init.pid"))
				}
				res := requireExited(t, runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(args, id)...))

				if res.code == 0 {
					t.Errorf("capshim %s exited 0, want non-zero", cmdWord)
				}
				if runcExists(root, id) {
					t.Errorf("container %s exists after a failed %s", id, cmdWord)
				}
				if _, err := os.Stat(filepath.Join(b, "rootfs", "ran-marker")); err == nil {
					t.Errorf("the container ran")
				}
				if hasConfig {
					if after, err := os.ReadFile(filepath.Join(b, "config.json")); err != nil {
						t.Errorf("config.json: %v", err)
					} else if !bytes.Equal(before, after) {
						t.Errorf("config.json changed:\nbefore: %s\nafter:  %s", before, after)
					}
				} else if _, err := os.Stat(filepath.Join(b, "config.json")); err == nil {
					t.Errorf("capshim created a config.json")
				}
				msg := checkErrorLog(t, log, format)
				if msg != "" && !containsAny(msg, tc.names...) {
					t.Errorf("error message %q names none of %q", msg, tc.names)
				}
				if !strings.Contains(res.stderr, "capshim:") {
					t.Errorf("stderr does not carry capshim's message")
				} else if format == "json" && msg != "" && !strings.Contains(res.stderr, msg) {
					t.Errorf("stderr does not carry the logged message %q", msg)
				}
				if t.Failed() {
					t.Logf("details:\n%s", res)
				}
			})
		}
	}
}

// TestRuncDeniedRequestFail: with on_denied_request = "fail" a request the
// policy does not grant fails the start (fail closed, like the errors).
func TestRuncDeniedRequestFail(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, strings.Replace(runcPolicy, `on_denied_request = "drop"`, `on_denied_request = "fail"`, 1))
	for _, tc := range []struct {
		name string
		bs   bundleSpec
		ok   bool
	}{
		{name: "denied env request", bs: bundleSpec{env: []string{"CAPSHIM_CAPABILITIES=CAP_NET_RAW"}}},
		{name: "denied annotation request", bs: bundleSpec{annotations: map[string]string{"capshim.io/capabilities": "CAP_SYS_ADMIN"}}},
		{name: "no request", ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBundle(t, tc.bs)
			before := readFile(t, filepath.Join(b, "config.json"))
			res, log, _ := runBundle(t, b, policy)
			if tc.ok {
				if res.code != 0 {
					t.Fatalf("container failed:\n%s", res)
				}
				assertCaps(t, res.stdout, maskMinimal)
				return
			}
			if res.code == 0 {
				t.Errorf("capshim run exited 0 for a denied request with on_denied_request = fail")
			}
			if strings.Contains(res.stdout, "CapBnd") {
				t.Errorf("the container ran")
			}
			if !bytes.Equal(before, readFile(t, filepath.Join(b, "config.json"))) {
				t.Errorf("config.json changed")
			}
			checkErrorLog(t, log, "json")
			if t.Failed() {
				t.Logf("details:\n%s", res)
			}
		})
	}
}
