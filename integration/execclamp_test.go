//go:build integration

package integration

// A process started with exec never gets more than the container it
// enters, whatever the exec asks for, and it is decided with the
// annotations the container was created with. Run on real runc and crun.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// clampPolicy lets every container ask for CAP_CHOWN and containers whose
// "team" annotation starts with "web" ask for CAP_NET_RAW.
func clampPolicy(runtime string) string {
	return chownPolicy(runtime) + `
[[rule]]
name = "team-web"
capabilities = ["CAP_NET_RAW"]
[rule.match.annotations]
"team" = "web*"
`
}

// clampStart starts a detached `sleep` container through capshim and
// returns its bundle and log.
func clampStart(t *testing.T, rt ociRuntime, rootfs, stateRoot, policy, id string, env []string, annotations map[string]string) (bundle, logFile string) {
	t.Helper()
	bundle = rootfsBundle(t, rootfs, []string{"sleep", "120"}, env, annotations)
	logFile = filepath.Join(t.TempDir(), "log.json")
	t.Cleanup(func() { deleteContainer(t, rt, stateRoot, id) })
	argv := rt.wrap(t, []string{capshimBin, "--capshim-config=" + policy, "--root", stateRoot,
		"--log", logFile, "--log-format", "json", "run", "-d", "-b", bundle, id})
	if r := runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"})}, argv[0], argv[1:]...); r.err != nil {
		t.Fatalf("%v\nlog:\n%s", r, tailFile(logFile, 10))
	}
	return bundle, logFile
}

// clampExec runs `capshim exec` with the given exec flags and returns the
// Cap lines the process printed.
func clampExec(t *testing.T, rt ociRuntime, stateRoot, policy, logFile, id string, flags ...string) cmdResult {
	t.Helper()
	argv := []string{capshimBin, "--capshim-config=" + policy, "--root", stateRoot, "--log", logFile, "--log-format", "json", "exec"}
	argv = append(append(argv, flags...), id)
	if !slices.Contains(flags, "--process") {
		argv = append(argv, "grep", "Cap", "/proc/self/status")
	}
	argv = rt.wrap(t, argv)
	return runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"})}, argv[0], argv[1:]...)
}

// clampProcess writes a process.json that asks for Docker's 14
// capabilities in every set and for CAP_CHOWN and CAP_NET_RAW by env.
func clampProcess(t *testing.T) string {
	t.Helper()
	caps, _ := json.Marshal(dockerCaps)
	p := filepath.Join(t.TempDir(), "process.json")
	writeFile(t, p, fmt.Sprintf(`{"args":["grep","Cap","/proc/self/status"],"env":["PATH=/bin","CAPSHIM_CAPABILITIES=CAP_CHOWN,CAP_NET_RAW"],"cwd":"/","user":{"uid":0,"gid":0},
"capabilities":{"bounding":%s,"effective":%s,"permitted":%s,"inheritable":%s,"ambient":%s}}`, caps, caps, caps, caps, caps), 0o644)
	return p
}

// clampExecRules returns the rules of the last exec decision in the log.
func clampExecRules(t *testing.T, logFile string) []string {
	t.Helper()
	f, err := os.Open(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rules []string
	found := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Command string   `json:"command"`
			Rules   []string `json:"rules"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Command == "exec" {
			rules, found = e.Rules, true
		}
	}
	if !found {
		t.Fatalf("no exec decision in %s:\n%s", logFile, tailFile(logFile, 10))
	}
	return rules
}

func TestExecClamp(t *testing.T) {
	rootfs, stateRoot, _ := crunSetup(t)
	for _, rt := range ociRuntimes(t) {
		t.Run(rt.name, func(t *testing.T) {
			policy := writePolicy(t, clampPolicy(rt.path))

			// A container that asked for nothing has the minimal set; an
			// exec that asks for everything gets no more.
			plain := fmt.Sprintf("capshim-clamp-%d-%s-plain", os.Getpid(), rt.name)
			_, log := clampStart(t, rt, rootfs, stateRoot, policy, plain, nil, nil)
			r := clampExec(t, rt, stateRoot, policy, log, plain, "--process", clampProcess(t))
			if r.err != nil {
				t.Fatalf("%v\nlog:\n%s", r, tailFile(log, 5))
			}
			assertCaps(t, r.stdout, maskMinimal)
			r = clampExec(t, rt, stateRoot, policy, log, plain, "--cap", "CAP_CHOWN")
			if r.err != nil {
				t.Fatalf("%v\nlog:\n%s", r, tailFile(log, 5))
			}
			if got := capLines(t, r.stdout); got["CapBnd"]&maskChown != 0 || got["CapEff"]&maskChown != 0 {
				t.Fatalf("exec --cap CAP_CHOWN into a container without it got it:\n%s", r.stdout)
			}

			// A container granted CAP_CHOWN at create keeps it in exec.
			chown := fmt.Sprintf("capshim-clamp-%d-%s-chown", os.Getpid(), rt.name)
			_, log = clampStart(t, rt, rootfs, stateRoot, policy, chown, nil, map[string]string{"capshim.io/capabilities": "CAP_CHOWN"})
			r = clampExec(t, rt, stateRoot, policy, log, chown, "--process", clampProcess(t))
			if r.err != nil {
				t.Fatalf("%v\nlog:\n%s", r, tailFile(log, 5))
			}
			got := capLines(t, r.stdout)
			if got["CapBnd"] != maskMinimal|maskChown || got["CapEff"] != maskMinimal|maskChown || got["CapInh"] != 0 || got["CapAmb"] != 0 {
				t.Fatalf("exec into a CAP_CHOWN container:\n%s\nwant bounding/effective %016x and nothing inheritable or ambient",
					r.stdout, uint64(maskMinimal|maskChown))
			}

			// An annotation key holding "=" matched no rule at create; exec
			// must see the same key, not a "team" annotation made by
			// splitting runc's label at its first "=".
			eq := fmt.Sprintf("capshim-clamp-%d-%s-eq", os.Getpid(), rt.name)
			bundle, log := clampStart(t, rt, rootfs, stateRoot, policy, eq, nil, map[string]string{"team=web": "1", "capshim.io/capabilities": "CAP_NET_RAW"})
			r = clampExec(t, rt, stateRoot, policy, log, eq, "--process", clampProcess(t))
			if r.err != nil {
				t.Fatalf("%v\nlog:\n%s", r, tailFile(log, 5))
			}
			assertCaps(t, r.stdout, maskMinimal)
			if rules := clampExecRules(t, log); slices.Contains(rules, "team-web") {
				t.Fatalf("exec matched rule team-web, which create did not: rules %q", rules)
			}
			if rt.name == "runc" {
				// runc's labels alone cannot say which "=" ends the key;
				// without the bundle's config.json capshim refuses.
				if err := os.Remove(filepath.Join(bundle, "config.json")); err != nil {
					t.Fatal(err)
				}
				r = clampExec(t, rt, stateRoot, policy, log, eq, "--process", clampProcess(t))
				if r.err == nil || strings.Contains(r.stdout, "CapBnd") {
					t.Fatalf("exec ran although the annotations could not be read: %v", r)
				}
				if tail := tailFile(log, 3); !strings.Contains(tail, "cannot be read with certainty") {
					t.Fatalf("the log does not say why:\n%s", tail)
				}
			}

			// exec into a container that does not exist is refused by
			// capshim itself.
			r = clampExec(t, rt, stateRoot, policy, log, "capshim-clamp-missing", "--process", clampProcess(t))
			if r.err == nil {
				t.Fatalf("exec into a missing container succeeded: %v", r)
			}
			if tail := tailFile(log, 3); !strings.Contains(tail, "is it running") {
				t.Fatalf("the log does not say why:\n%s", tail)
			}
		})
	}
}
