//go:build integration

package integration

// Podman 4.3 runs containers through capshim given as --runtime PATH or
// named in containers.conf: the container's capabilities, requests through
// annotations and env, `podman exec --privileged` and a broken policy.
// helpers_podman_test.go tells how the policy reaches capshim there.

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestPodman runs containers through capshim under podman: the container's
// capabilities, requests through annotations and env, `podman exec
// --privileged` and a broken policy.
func TestPodman(t *testing.T) {
	p := podmanSetup(t)
	policy := writePolicy(t, chownPolicy("/usr/bin/runc"))
	broken := writePolicy(t, brokenPolicy)
	// A second containers.conf makes capshim podman's default runtime and
	// hands it the policy through conmon's environment.
	p.writeConf(t, "engine.conf", fmt.Sprintf(`[engine]
runtime = "capshim"
conmon_env_vars = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "CAPSHIM_CONFIG=%s"]
[engine.runtimes]
capshim = [%q]
`, policy, capshimBin))

	viaFlag := []string{"--runtime", capshimBin, "--runtime-flag", "capshim-config=" + policy}
	t.Run("run", func(t *testing.T) {
		cases := []struct {
			name   string
			conf   string   // containers.conf to use
			global []string // extra global flags (runtime selection)
			args   []string // between "run --rm --network none" and the image
			want   uint64
		}{
			{name: "runtime path and runtime-flag", conf: "containers.conf", global: viaFlag, want: maskPodmanMinimal},
			// Control: plain runc keeps Podman's 11 default capabilities.
			{name: "runc control", conf: "containers.conf", global: []string{"--runtime", "/usr/bin/runc"}, want: maskPodman},
			// The CHOWN request is granted only by the test policy (the
			// built-in default has no rule): the policy did arrive.
			{name: "containers.conf runtime and conmon_env_vars", conf: "engine.conf", args: []string{"--annotation", "capshim.io/capabilities=CAP_CHOWN"}, want: maskPodmanMinimal | maskChown},
			{name: "request by annotation", conf: "containers.conf", global: viaFlag, args: []string{"--annotation", "capshim.io/capabilities=CAP_CHOWN"}, want: maskPodmanMinimal | maskChown},
			{name: "request by env", conf: "containers.conf", global: viaFlag, args: []string{"-e", "CAPSHIM_CAPABILITIES=CAP_CHOWN"}, want: maskPodmanMinimal | maskChown},
			{name: "request after --cap-drop", conf: "containers.conf", global: viaFlag, args: []string{"--cap-drop", "CHOWN", "--annotation", "capshim.io/capabilities=CAP_CHOWN"}, want: maskPodmanMinimal},
			// NET_RAW is added by podman (--cap-add) but allowed by no rule.
			{name: "request denied", conf: "containers.conf", global: viaFlag, args: []string{"--cap-add", "NET_RAW", "--annotation", "capshim.io/capabilities=CAP_NET_RAW"}, want: maskPodmanMinimal},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				args := append(append([]string{}, tc.global...), "run", "--rm", "--network", "none")
				args = append(args, tc.args...)
				args = append(args, imageBusybox, "grep", "Cap", "/proc/self/status")
				r := p.podman(tc.conf, args...)
				if r.err != nil {
					t.Fatalf("%v", r)
				}
				t.Logf("%s: %v", r.cmdline, r.took.Round(time.Millisecond))
				assertCaps(t, r.stdout, tc.want)
			})
		}
	})

	t.Run("exec", func(t *testing.T) {
		cases := []struct {
			name   string
			global []string
			flags  []string
			check  func(t *testing.T, status string)
		}{
			{name: "capshim exec", global: viaFlag, check: func(t *testing.T, s string) { assertCaps(t, s, maskPodmanMinimal) }},
			// A privileged exec asks for every capability, AUDIT_WRITE
			// included: capshim keeps at most its default set.
			{name: "capshim exec --privileged", global: viaFlag, flags: []string{"--privileged"}, check: func(t *testing.T, s string) { assertCapsAtMost(t, s, maskMinimal) }},
			// Control: under plain runc a privileged exec gets every
			// capability the host has, far beyond the container's own set.
			{name: "runc control exec --privileged", global: []string{"--runtime", "/usr/bin/runc"}, flags: []string{"--privileged"}, check: func(t *testing.T, s string) {
				if got := capLines(t, s)["CapBnd"]; got&maskSysAdmin == 0 {
					t.Errorf("control: privileged exec under runc has CapBnd %016x without CAP_SYS_ADMIN; the capshim case proves nothing\n%s", got, s)
				}
			}},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				name := fmt.Sprintf("capshim-exec-%d", i)
				run := append(append([]string{}, tc.global...), "run", "-d", "--name", name, "--network", "none", imageBusybox, "sleep", "300")
				if r := p.podman("containers.conf", run...); r.err != nil {
					t.Fatalf("%v", r)
				}
				defer func() {
					rm := append(append([]string{}, tc.global...), "rm", "--force", "--time", "0", name)
					if r := p.podman("containers.conf", rm...); r.err != nil {
						t.Errorf("%v", r)
					}
				}()
				ex := append(append([]string{}, tc.global...), "exec")
				ex = append(ex, tc.flags...)
				ex = append(ex, name, "grep", "Cap", "/proc/self/status")
				r := p.podman("containers.conf", ex...)
				if r.err != nil {
					t.Fatalf("%v", r)
				}
				t.Logf("%s: %v", r.cmdline, r.took.Round(time.Millisecond))
				tc.check(t, r.stdout)
			})
		}
	})

	// Every container above was removed by podman; the runtime must have
	// deleted its state too (see podmanCheckRuntimeState).
	defer t.Run("runtime state removed", func(t *testing.T) {
		podmanCheckRuntimeState(t, p.dir)
	})

	t.Run("broken policy", func(t *testing.T) {
		r := p.podman("containers.conf", "--runtime", capshimBin, "--runtime-flag", "capshim-config="+broken,
			"run", "--rm", "--network", "none", imageBusybox, "grep", "Cap", "/proc/self/status")
		if r.err == nil {
			t.Fatalf("podman run with a broken policy succeeded; capshim must fail closed\n%v", r)
		}
		t.Logf("%s failed as expected in %v:\n%s", r.cmdline, r.took.Round(time.Millisecond), r.stderr)
		if strings.Contains(r.stdout, "CapBnd") {
			t.Errorf("the container ran although the policy is broken:\n%s", r.stdout)
		}
		if !strings.Contains(r.stderr, "capshim:") {
			t.Errorf("podman's error does not carry capshim's message (want %q in it):\n%s", "capshim:", r.stderr)
		}
		if !containsAny(r.stderr, broken, "toml", "parse", "syntax") {
			t.Errorf("podman's error does not say why (want the policy path %s or the TOML error):\n%s", broken, r.stderr)
		}
	})
}
