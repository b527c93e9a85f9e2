//go:build integration

package integration

// run through capshim reduces the bundle's capability sets to the policy's
// target, however runc's command line names the bundle and the policy
// (-b, --bundle, --bundle=, the working directory; CAPSHIM_CONFIG,
// --capshim-config anywhere among the global flags, the built-in default).

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRuncRunReducesCaps(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy)

	tests := []struct {
		name   string
		inhAmb bool // 14 caps also in inheritable and ambient: those become in ∩ target too
		// argv builds capshim's arguments after the global runtime flags.
		argv  func(b, id string) []string
		inDir bool // run from inside the bundle directory
		// flag: policy through --capshim-config=P, inserted at index
		// flagAt of the global flags, instead of CAPSHIM_CONFIG.
		flag   bool
		flagAt int
		// builtin: no CAPSHIM_CONFIG, no flag: /etc/capshim/shim.toml or
		// the embedded default.
		builtin bool
		binary  string
		want    uint64
	}{
		{name: "short -b", argv: func(b, id string) []string { return []string{"run", "-b", b, id} }, want: maskMinimal},
		{name: "long --bundle B", argv: func(b, id string) []string { return []string{"run", "--bundle", b, id} }, want: maskMinimal},
		{name: "--bundle=B", argv: func(b, id string) []string { return []string{"run", "--bundle=" + b, id} }, want: maskMinimal},
		{name: "cwd bundle", inDir: true, argv: func(b, id string) []string { return []string{"run", id} }, want: maskMinimal},
		{name: "inheritable and ambient input", inhAmb: true, argv: func(b, id string) []string { return []string{"run", "-b", b, id} }, want: maskMinimal},
		{name: "--capshim-config first", flag: true, flagAt: 0, argv: func(b, id string) []string { return []string{"run", "--bundle", b, id} }, want: maskMinimal},
		{name: "--capshim-config among globals", flag: true, flagAt: 2, argv: func(b, id string) []string { return []string{"run", "--bundle", b, id} }, want: maskMinimal},
		{name: "embedded default policy", builtin: true, argv: func(b, id string) []string { return []string{"run", "--bundle", b, id} }, want: maskMinimal},
		// Control: the same bundle with plain runc keeps Docker's caps, so
		// the assertion can fail.
		{name: "control plain runc", binary: runcPath, argv: func(b, id string) []string { return []string{"run", "--bundle", b, id} }, want: maskDocker},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.builtin {
				if _, err := os.Stat("/etc/capshim/shim.toml"); err == nil {
					t.Skip("/etc/capshim/shim.toml exists: the embedded default is not in use")
				}
			}
			b := newBundle(t, bundleSpec{inhAmb: tc.inhAmb})
			root, id := runcRoot(t), containerID(t)
			runcCleanup(t, root, id)
			before := readFile(t, filepath.Join(b, "config.json"))
			log := filepath.Join(b, "log.json")

			bin, env := capshimBin, shimEnv(policy)
			args := globalArgs(root, log)
			if tc.flag || tc.builtin {
				env = shimEnv("")
			}
			if tc.flag {
				args = append(args[:tc.flagAt:tc.flagAt], append([]string{"--capshim-config=" + policy}, args[tc.flagAt:]...)...)
			}
			if tc.binary != "" {
				bin = tc.binary
			}
			args = append(args, tc.argv(b, id)...)
			dir := ""
			if tc.inDir {
				dir = b
			}
			res := runCmd(cmdOpts{env: env, dir: dir}, bin, args...)
			if res.code != 0 {
				t.Fatalf("container failed:\n%s", res)
			}
			if !strings.Contains(res.stdout, "CapBnd") {
				t.Fatalf("no Cap lines in container output:\n%s", res)
			}
			t.Logf("container output:\n%s", res.stdout)
			if tc.inhAmb {
				// out.S = in.S ∩ target for every set, so inheritable and
				// ambient keep the target's caps the input had there.
				assertAllSets(t, res.stdout, tc.want)
			} else {
				assertCaps(t, res.stdout, tc.want)
			}
			if t.Failed() {
				t.Logf("details:\n%s", res)
			}
			if runcExists(root, id) {
				t.Errorf("runc run left container %s behind", id)
			}
			if tc.binary == "" {
				// Enforce mode rewrote the bundle and logged its decision.
				if bytes.Equal(before, readFile(t, filepath.Join(b, "config.json"))) {
					t.Errorf("config.json unchanged in enforce mode")
				}
				if len(logMsgs(t, log, "info")) == 0 {
					t.Errorf("no info-level decision line in --log:\n%s", res)
				}
			}
		})
	}
}
