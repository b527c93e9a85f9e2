//go:build integration

package integration

// The policy `capshim install` writes is the one the registered runtime
// reads: docker passes --policy to capshim (runtimeArgs), and a container
// started by the real dockerd on that daemon.json gets that policy's
// decision; podman and containerd, which hand a runtime neither arguments
// nor environment, refuse a policy elsewhere, and the way README gives
// Podman users (--runtime-flag capshim-config=FILE with the installed
// runtime) does reach the container. `capshim status` reads the configs
// install wrote and says the same.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// maskKill is CAP_KILL alone.
const maskKill = 1 << 5

// ipKillOnlyPolicy keeps only CAP_KILL by default and lets any container
// ask for CAP_CHOWN: a decision neither the built-in policy nor any other
// test policy gives, so a container with exactly these sets read this file.
const ipKillOnlyPolicy = `mode = "enforce"
default = ["CAP_KILL"]
never = ["CAP_SYS_ADMIN", "CAP_SYS_MODULE"]

[[rule]]
name = "chown"
capabilities = ["CAP_CHOWN"]
`

// ipStatus runs capshim status with args and returns its result.
func ipStatus(t *testing.T, args ...string) cmdResult {
	t.Helper()
	r := runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"})}, capshimBin, append([]string{"status"}, args...)...)
	t.Logf("%s (exit %d):\n%s%s", r.cmdline, r.code, r.stdout, r.stderr)
	return r
}

// TestInstallPolicyDocker: capshim install docker --policy F (no
// --config) makes dockerd pass F to capshim; the real dockerd, with no
// CAPSHIM_ variable in its environment, starts containers with F's
// decision; status reports F as the policy of that runtime.
func TestInstallPolicyDocker(t *testing.T) {
	requireRoot(t)
	for _, b := range []string{"dockerd", "docker", "containerd", "containerd-shim-runc-v2"} {
		requireBinary(t, b)
	}
	dir := shortTempDir(t, "capshim-ipd-")
	t.Cleanup(func() { killLeftovers(t, dir) })
	cfg := filepath.Join(dir, "daemon.json")
	js, err := json.MarshalIndent(map[string]any{"deprecated-key-path": filepath.Join(dir, "key.json")}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg, string(js)+"\n", 0o644)
	pol := writePolicy(t, ipKillOnlyPolicy)

	r := capshimInstall(t, "docker", "--file", cfg, "--policy", pol)
	if !strings.Contains(r.stdout, "policy: "+pol+" exists: kept as it is") {
		t.Errorf("install does not say it keeps %s:\n%s", pol, r.stdout)
	}
	m := readDaemonJSON(t, cfg)
	rts, _ := m["runtimes"].(map[string]any)
	want := map[string]any{"path": capshimBin, "runtimeArgs": []any{"--capshim-config=" + pol}}
	if !reflect.DeepEqual(rts["capshim"], want) {
		t.Fatalf("runtimes.capshim = %#v, want %#v", rts["capshim"], want)
	}

	st := ipStatus(t, "--engine", "docker", "--docker", cfg)
	if st.code != 0 || !strings.Contains(st.stdout, "    policy: "+pol+" (named on the command line): ok (loads, trusted): mode enforce, default CAP_KILL,") {
		t.Errorf("status does not report %s as the loading policy of runtime capshim (exit %d)", pol, st.code)
	}

	e := dockerLaunch(t, dir, cfg, nil)
	start := time.Now()
	dockerRunCases(t, e, []dockerRunCase{
		{name: "no request: the policy's default", args: []string{"--runtime", "capshim"}, want: maskKill},
		{name: "request the policy allows", args: []string{"--runtime", "capshim", "-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskKill | maskChown},
		// Control: the daemon's default runtime is still runc.
		{name: "runc control", want: maskDocker},
	})
	t.Logf("docker runs took %v", time.Since(start).Round(time.Millisecond))
}

// TestInstallPolicyPodman: capshim install podman --policy F is refused,
// naming the alternatives, and changes nothing; with the runtime
// installed (--no-policy), podman --runtime capshim --runtime-flag
// capshim-config=F runs the container with F's decision.
func TestInstallPolicyPodman(t *testing.T) {
	p := podmanSetup(t)
	const conf = "installed.conf"
	p.writeConf(t, conf, "")
	file := filepath.Join(p.dir, conf)
	before := readFile(t, file)
	pol := writePolicy(t, ipKillOnlyPolicy)
	elsewhere := filepath.Join(p.dir, "elsewhere.toml")

	r := runCmd(cmdOpts{env: envWithout([]string{"CAPSHIM_"})}, capshimBin, "install", "podman", "--file", file, "--policy", elsewhere)
	if r.code != 2 || !strings.Contains(r.stderr, "the capshim it runs reads /etc/capshim/shim.toml, never this file; nothing was changed") ||
		!strings.Contains(r.stderr, "podman --runtime capshim --runtime-flag capshim-config="+elsewhere) {
		t.Errorf("install podman --policy elsewhere: want exit 2 naming the alternatives:\n%v", r)
	}
	if string(readFile(t, file)) != string(before) {
		t.Errorf("the refused install changed %s", file)
	}
	if _, err := os.Lstat(elsewhere); err == nil {
		t.Errorf("the refused install wrote %s", elsewhere)
	}
	if _, err := os.Lstat(file + ".capshim-backup"); err == nil {
		t.Errorf("the refused install wrote a backup")
	}

	installFresh(t, file, "", "podman", "--file", file, "--no-policy")
	st := ipStatus(t, "--engine", "podman", "--podman", file)
	if !strings.Contains(st.stdout, "  runtime capshim: "+capshimBin+"\n") {
		t.Errorf("status does not list the runtime capshim install registered")
	}

	grep := []string{imageBusybox, "grep", "Cap", "/proc/self/status"}
	cases := []struct {
		name string
		args []string
		want uint64
	}{
		{name: "runtime-flag names the policy", args: []string{"--runtime", "capshim", "--runtime-flag", "capshim-config=" + pol}, want: maskKill},
		{name: "runtime-flag and a request", args: []string{"--runtime", "capshim", "--runtime-flag", "capshim-config=" + pol, "--annotation", "capshim.io/capabilities=CAP_CHOWN"}, want: maskKill | maskChown},
		// Control: without the flag the installed runtime reads
		// /etc/capshim/shim.toml, which the policy above is not.
		{name: "runc control", args: []string{"--runtime", runcPath}, want: maskPodman},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"run", "--rm", "--network", "none"}, tc.args...), grep...)
			r := p.podman(conf, args...)
			if r.err != nil {
				t.Fatalf("%v", r)
			}
			t.Logf("%s: %v", r.cmdline, r.took.Round(time.Millisecond))
			assertCaps(t, r.stdout, tc.want)
		})
	}
}
