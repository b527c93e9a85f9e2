//go:build integration

package integration

// crun behind capshim: capshim called with runc's command line directly
// (no engine) and a policy whose runtime is /usr/bin/crun.
//
// crun refuses cgroup "hybrid" hosts whose cgroup2 hierarchy at
// /sys/fs/cgroup/unified has controllers ("cgroups in hybrid mode not
// supported, drop all controllers from cgroupv2"; this VM has hugetlb
// there). The tests then run crun in a private mount namespace without that
// mount (see crunWrap), so crun sees cgroup v1 only; the host's mounts are
// untouched.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// crunDelete force-deletes a container (cleanup; errors are ignored:
// `run` removes the container itself when it exits).
func crunDelete(t *testing.T, stateRoot, id string) {
	t.Helper()
	argv := crunWrap(t, []string{"/usr/bin/crun", "--root", stateRoot, "delete", "--force", id})
	r := runCmd(cmdOpts{timeout: 30 * time.Second}, argv[0], argv[1:]...)
	if r.err != nil && !strings.Contains(r.stderr, "does not exist") && !strings.Contains(r.stderr, "No such file") {
		t.Logf("cleanup: %v", r)
	}
}

// TestCrun runs one container per case with `capshim ... run -b B ID`
// (crun control: the same bundle with crun itself).
func TestCrun(t *testing.T) {
	rootfs, stateRoot, policy := crunSetup(t)
	grep := []string{"grep", "Cap", "/proc/self/status"}
	cases := []struct {
		name        string
		shim        bool
		flag        bool // policy as --capshim-config=PATH instead of CAPSHIM_CONFIG
		env         []string
		annotations map[string]string
		want        uint64
	}{
		{name: "capshim", shim: true, want: maskMinimal},
		// Control: crun alone keeps Docker's 14 capabilities.
		{name: "crun control", want: maskDocker},
		// The CHOWN request is granted only by the test policy, so this
		// also shows the flag delivered it.
		{name: "capshim-config flag", shim: true, flag: true, annotations: map[string]string{"capshim.io/capabilities": "CAP_CHOWN"}, want: maskMinimal | maskChown},
		{name: "request by env", shim: true, env: []string{"CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskMinimal | maskChown},
		{name: "request by annotation", shim: true, annotations: map[string]string{"capshim.io/capabilities": "CAP_CHOWN"}, want: maskMinimal | maskChown},
		{name: "request denied", shim: true, annotations: map[string]string{"capshim.io/capabilities": "CAP_NET_RAW,CAP_SYS_ADMIN"}, want: maskMinimal},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bundle := rootfsBundle(t, rootfs, grep, tc.env, tc.annotations)
			id := fmt.Sprintf("capshim-crun-%d-%d", os.Getpid(), i)
			t.Cleanup(func() { crunDelete(t, stateRoot, id) })
			env := envWithout([]string{"CAPSHIM_"})
			var argv []string
			switch {
			case !tc.shim:
				argv = []string{"/usr/bin/crun"}
			case tc.flag:
				argv = []string{capshimBin, "--capshim-config=" + policy}
			default:
				argv = []string{capshimBin}
				env = append(env, "CAPSHIM_CONFIG="+policy)
			}
			logFile := filepath.Join(bundle, "log.json")
			argv = append(argv, "--root", stateRoot, "--log", logFile, "--log-format", "json", "run", "-b", bundle, id)
			w := crunWrap(t, argv)
			r := runCmd(cmdOpts{env: env}, w[0], w[1:]...)
			if r.err != nil {
				t.Fatalf("%v\nlog %s:\n%s", r, logFile, tailFile(logFile, 20))
			}
			t.Logf("%s: %v", strings.Join(argv, " "), r.took.Round(time.Millisecond))
			assertCaps(t, r.stdout, tc.want)
		})
	}
}

// TestCrunCreateStart splits the start into `capshim create` and `crun
// start`: `crun state` accepting the container shows capshim really handed
// over to crun (runc keeps a different state format), and the started
// process is reduced.
func TestCrunCreateStart(t *testing.T) {
	rootfs, stateRoot, policy := crunSetup(t)
	bundle := rootfsBundle(t, rootfs, []string{"grep", "Cap", "/proc/self/status"}, nil, nil)
	id := fmt.Sprintf("capshim-crun-cs-%d", os.Getpid())
	t.Cleanup(func() { crunDelete(t, stateRoot, id) })

	// The container inherits create's stdout and stderr and prints to
	// them after create returned: runCmd keeps the files in outDir.
	outDir := t.TempDir()
	logFile := filepath.Join(bundle, "log.json")
	argv := crunWrap(t, []string{capshimBin, "--capshim-config=" + policy, "--root", stateRoot,
		"--log", logFile, "--log-format", "json", "create", "--bundle", bundle, id})
	cr := runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"}), outDir: outDir}, argv[0], argv[1:]...)
	if cr.err != nil {
		t.Fatalf("%v\nlog:\n%s", cr, tailFile(logFile, 20))
	}
	t.Logf("capshim create: %v", cr.took.Round(time.Millisecond))

	crun := func(args ...string) cmdResult {
		argv := crunWrap(t, append([]string{"/usr/bin/crun", "--root", stateRoot}, args...))
		return runCmd(cmdOpts{timeout: 30 * time.Second}, argv[0], argv[1:]...)
	}
	r := crun("state", id)
	if r.err != nil {
		t.Fatalf("crun does not know the container capshim created: %v", r)
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Status != "created" {
		t.Fatalf("crun state: status %q (err %v), want created\n%s", st.Status, err, r.stdout)
	}

	if r := crun("start", id); r.err != nil {
		t.Fatalf("crun start: %v", r)
	}
	var status string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(cr.stdoutPath)
		if status = string(b); strings.Contains(status, "CapAmb") {
			break
		}
	}
	if !strings.Contains(status, "CapAmb") {
		t.Fatalf("no Cap lines from the started container within 20s; output so far:\n%s", status)
	}
	assertCaps(t, status, maskMinimal)
}

// TestCrunConfigFlag: with crun's --config, capshim reduces the file crun
// really opens. crun reads "config.json" inside the bundle, and any other
// name relative to the directory it was started in, so the working
// directory and the bundle both hold a decoy of the same name with Docker's
// 14 capabilities; only the file crun reads may be changed, and the
// container must be reduced.
func TestCrunConfigFlag(t *testing.T) {
	rootfs, stateRoot, policy := crunSetup(t)
	grep := []string{"grep", "Cap", "/proc/self/status"}
	cases := []struct {
		name   string
		flag   func(cwd, bundle string) []string
		reads  func(cwd, bundle string) string // the file crun opens
		decoys func(cwd, bundle string) []string
	}{
		{
			name:   "relative name",
			flag:   func(_, _ string) []string { return []string{"--config", "alt.json"} },
			reads:  func(cwd, _ string) string { return filepath.Join(cwd, "alt.json") },
			decoys: func(_, b string) []string { return []string{filepath.Join(b, "alt.json")} },
		},
		{
			name:   "short flag, relative name",
			flag:   func(_, _ string) []string { return []string{"-f", "alt.json"} },
			reads:  func(cwd, _ string) string { return filepath.Join(cwd, "alt.json") },
			decoys: func(_, b string) []string { return []string{filepath.Join(b, "alt.json")} },
		},
		{
			name:   "config.json named",
			flag:   func(_, _ string) []string { return []string{"--config", "config.json"} },
			reads:  func(_, b string) string { return filepath.Join(b, "config.json") },
			decoys: func(cwd, _ string) []string { return []string{filepath.Join(cwd, "config.json")} },
		},
		{
			name:   "dot config.json",
			flag:   func(_, _ string) []string { return []string{"--config=./config.json"} },
			reads:  func(cwd, _ string) string { return filepath.Join(cwd, "config.json") },
			decoys: func(_, b string) []string { return []string{filepath.Join(b, "config.json")} },
		},
		{
			name:   "absolute",
			flag:   func(cwd, _ string) []string { return []string{"--config", filepath.Join(cwd, "alt.json")} },
			reads:  func(cwd, _ string) string { return filepath.Join(cwd, "alt.json") },
			decoys: func(_, b string) []string { return []string{filepath.Join(b, "alt.json")} },
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := rootfsBundle(t, rootfs, grep, nil, nil)
			spec, err := os.ReadFile(filepath.Join(src, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			cwd, bundle := t.TempDir(), t.TempDir()
			for _, p := range append(tc.decoys(cwd, bundle), tc.reads(cwd, bundle)) {
				writeFile(t, p, string(spec), 0o644)
			}
			id := fmt.Sprintf("capshim-crun-cfg-%d-%d", os.Getpid(), i)
			t.Cleanup(func() { crunDelete(t, stateRoot, id) })
			logFile := filepath.Join(t.TempDir(), "log.json")
			argv := []string{capshimBin, "--capshim-config=" + policy, "--root", stateRoot, "--log", logFile, "--log-format", "json", "run", "-b", bundle}
			argv = append(append(argv, tc.flag(cwd, bundle)...), id)
			argv = crunWrap(t, argv)
			r := runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"}), dir: cwd}, argv[0], argv[1:]...)
			if r.err != nil {
				t.Fatalf("%v\nlog:\n%s", r, tailFile(logFile, 10))
			}
			assertCaps(t, r.stdout, maskMinimal)
			for _, d := range tc.decoys(cwd, bundle) {
				if b, _ := os.ReadFile(d); string(b) != string(spec) {
					t.Errorf("capshim changed %s, which crun does not read", d)
				}
			}
			if b, _ := os.ReadFile(tc.reads(cwd, bundle)); string(b) == string(spec) {
				t.Errorf("capshim left %s, the file crun reads, as it was", tc.reads(cwd, bundle))
			}
		})
	}
}
