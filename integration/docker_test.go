//go:build integration

package integration

// Docker 20.10 runs containers through capshim, registered with
// --add-runtime or in daemon.json; each container prints its own Cap*
// lines, and `docker exec` is reduced too.

import (
	"strings"
	"testing"
	"time"
)

// dockerExecCases starts a long-running container under runtime and checks
// what `docker exec` (plain and --privileged) gets inside it.
func dockerExecCases(t *testing.T, e *dockerEngine, runtime string) {
	t.Helper()
	name := "capshim-exec-" + strings.ReplaceAll(runtime, "/", "-")
	r := e.docker("run", "-d", "--name", name, "--network", "none", "--runtime", runtime, imageBusybox, "sleep", "300")
	if r.err != nil {
		t.Fatalf("%v\ndockerd log:\n%s", r, e.daemon.tail(20))
	}
	t.Cleanup(func() { e.docker("rm", "-f", name) })
	cases := []struct {
		name  string
		flags []string
		exact bool // the exec'd process gets exactly maskMinimal
	}{
		{name: "exec", exact: true},
		// Docker asks for every capability for a privileged exec (runc
		// alone fails here: "unable to apply caps: operation not
		// permitted", the VM's root lacks CAP_SYS_RESOURCE). capshim must
		// cut it down to the policy.
		{name: "exec --privileged", flags: []string{"--privileged"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"exec"}, tc.flags...)
			args = append(args, name, "grep", "Cap", "/proc/self/status")
			r := e.docker(args...)
			if r.err != nil {
				t.Fatalf("%v\ndockerd log:\n%s", r, e.daemon.tail(20))
			}
			t.Logf("%s: %v", r.cmdline, r.took.Round(time.Millisecond))
			if tc.exact {
				assertCaps(t, r.stdout, maskMinimal)
			} else {
				assertCapsAtMost(t, r.stdout, maskMinimal)
			}
		})
	}
}

// TestDockerAddRuntime registers capshim with `dockerd --add-runtime
// capshim=PATH`; that form takes no arguments, so the policy reaches capshim
// through CAPSHIM_CONFIG in dockerd's environment (dockerd -> containerd ->
// containerd-shim-runc-v2 -> runtime all inherit it).
func TestDockerAddRuntime(t *testing.T) {
	policy := writePolicy(t, chownPolicy("/usr/bin/runc"))
	e := dockerStart(t, nil, []string{"CAPSHIM_CONFIG=" + policy}, "--add-runtime", "capshim="+capshimBin)

	t.Run("run", func(t *testing.T) {
		dockerRunCases(t, e, []dockerRunCase{
			{name: "capshim", args: []string{"--runtime", "capshim"}, want: maskMinimal},
			// Control: the same container under plain runc keeps Docker's
			// 14 capabilities, so the test can see a missing reduction.
			{name: "runc control", args: []string{"--runtime", "runc"}, want: maskDocker},
			{name: "request allowed by a rule", args: []string{"--runtime", "capshim", "-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskMinimal | maskChown},
			{name: "request in lower case without prefix", args: []string{"--runtime", "capshim", "-e", "CAPSHIM_CAPABILITIES=chown"}, want: maskMinimal | maskChown},
			// Never escalate: Docker did not grant CHOWN, so asking for
			// it (allowed by the rule) must not add it.
			{name: "request after --cap-drop", args: []string{"--runtime", "capshim", "--cap-drop", "CHOWN", "-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskMinimal},
			// NET_RAW is granted by Docker but allowed by no rule.
			{name: "request denied", args: []string{"--runtime", "capshim", "-e", "CAPSHIM_CAPABILITIES=CAP_NET_RAW"}, want: maskMinimal},
			// SYS_ADMIN is granted by Docker (--cap-add) and asked for,
			// but it is in `never`: only the allowed CHOWN is kept.
			{name: "request for a never capability", args: []string{"--runtime", "capshim", "--cap-add", "SYS_ADMIN", "-e", "CAPSHIM_CAPABILITIES=CAP_SYS_ADMIN,CAP_CHOWN"}, want: maskMinimal | maskChown},
		})
	})
	t.Run("running container", func(t *testing.T) {
		dockerExecCases(t, e, "capshim")
	})
}

// TestDockerDaemonJSON registers capshim in daemon.json (runtimes with
// runtimeArgs ["--capshim-config=..."]) and makes it the default runtime.
// More entries point at an audit-mode policy, a strict policy
// (on_denied_request = "fail") and a broken one. dockerd gets no
// CAPSHIM_CONFIG. (dockerd 20.10 runs a runtime with runtimeArgs through a
// generated wrapper script, <data-root>/runtimes/<name>.)
func TestDockerDaemonJSON(t *testing.T) {
	good := writePolicy(t, chownPolicy("/usr/bin/runc"))
	audit := writePolicy(t, strings.Replace(chownPolicy("/usr/bin/runc"), `mode = "enforce"`, `mode = "audit"`, 1))
	strict := writePolicy(t, strings.Replace(chownPolicy("/usr/bin/runc"), `on_denied_request = "drop"`, `on_denied_request = "fail"`, 1))
	broken := writePolicy(t, brokenPolicy)
	runtime := func(policy string) map[string]any {
		return map[string]any{"path": capshimBin, "runtimeArgs": []string{"--capshim-config=" + policy}}
	}
	cfg := map[string]any{
		"default-runtime": "capshim",
		"runtimes": map[string]any{
			"capshim":        runtime(good),
			"capshim-audit":  runtime(audit),
			"capshim-strict": runtime(strict),
			"capshim-broken": runtime(broken),
		},
	}
	e := dockerStart(t, cfg, nil)

	t.Run("run", func(t *testing.T) {
		dockerRunCases(t, e, []dockerRunCase{
			{name: "default runtime", want: maskMinimal},
			{name: "explicit runtime", args: []string{"--runtime", "capshim"}, want: maskMinimal},
			{name: "runc control", args: []string{"--runtime", "runc"}, want: maskDocker},
			{name: "request allowed by a rule", args: []string{"-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskMinimal | maskChown},
			{name: "request after --cap-drop", args: []string{"--cap-drop", "CHOWN", "-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskMinimal},
			// Audit mode logs what it would drop and changes nothing.
			{name: "audit mode", args: []string{"--runtime", "capshim-audit"}, want: maskDocker},
			// A granted request passes a strict policy.
			{name: "strict policy, allowed request", args: []string{"--runtime", "capshim-strict", "-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskMinimal | maskChown},
		})
	})
	t.Run("running container", func(t *testing.T) {
		dockerExecCases(t, e, "capshim")
	})
	t.Run("refused", func(t *testing.T) {
		cases := []struct {
			name    string
			args    []string // between "run --rm --network none" and the image
			reasons []string // the error must name one of these (case-insensitive)
		}{
			{name: "broken policy", args: []string{"--runtime", "capshim-broken"}, reasons: []string{broken, "toml", "parse", "syntax"}},
			{name: "denied request with on_denied_request=fail", args: []string{"--runtime", "capshim-strict", "-e", "CAPSHIM_CAPABILITIES=CAP_NET_RAW"}, reasons: []string{"NET_RAW"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				args := append([]string{"run", "--rm", "--network", "none"}, tc.args...)
				r := e.docker(append(args, imageBusybox, "grep", "Cap", "/proc/self/status")...)
				if r.err == nil {
					t.Fatalf("docker run succeeded; capshim must refuse to start the container\n%v", r)
				}
				t.Logf("%s failed as expected in %v:\n%s", r.cmdline, r.took.Round(time.Millisecond), r.stderr)
				if strings.Contains(r.stdout, "CapBnd") {
					t.Errorf("the container ran although capshim refused it:\n%s", r.stdout)
				}
				if !strings.Contains(r.stderr, "OCI runtime create failed: capshim:") {
					t.Errorf("docker run's error does not carry capshim's message (want %q in it):\n%s", "OCI runtime create failed: capshim:", r.stderr)
				}
				if !containsAny(r.stderr, tc.reasons...) {
					t.Errorf("docker run's error does not say why (want one of %q in it):\n%s", tc.reasons, r.stderr)
				}
			})
		}
	})
}
