//go:build integration

package integration

// README "Podman" followed as written, with `capshim install podman` doing
// the registration on a containers.conf under the test's temp dir
// (--file), which podman then reads through CONTAINERS_CONF; /etc is never
// touched.

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// podmanRunCase is one podman command line and the capabilities its
// container must get.
type podmanRunCase struct {
	name string
	args []string // podman arguments before the image
	want uint64
}

// TestReadmePodman follows README "Podman": capshim install podman on a
// containers.conf holding the test podman's settings, then `podman run
// --rm --runtime capshim --network none ...`, and --set-default. Podman
// and conmon hand the runtime no environment, so capshim reads
// /etc/capshim/shim.toml, or its built-in default where there is none (as
// here); install would refuse a --policy elsewhere, so it writes none
// (--no-policy). install_policy_test.go shows a policy of one's own
// reaching the installed runtime with --runtime-flag.
func TestReadmePodman(t *testing.T) {
	began := time.Now()
	p := podmanSetup(t)
	const conf = "readme.conf"
	p.writeConf(t, conf, "")
	file := filepath.Join(p.dir, conf)
	grep := []string{imageBusybox, "grep", "Cap", "/proc/self/status"}

	steps := []struct {
		name    string
		install []string
		runs    []podmanRunCase
	}{
		{
			name: "install podman",
			runs: []podmanRunCase{
				// README: podman run --rm --runtime capshim --network none busybox grep Cap /proc/self/status
				{name: "README podman run --runtime capshim", args: []string{"run", "--rm", "--runtime", "capshim", "--network", "none"}, want: maskPodmanMinimal},
				{name: "podman --runtime capshim run", args: []string{"--runtime", "capshim", "run", "--rm", "--network", "none"}, want: maskPodmanMinimal},
				// README: podman --runtime /usr/local/bin/capshim works without installing.
				{name: "runtime by path", args: []string{"--runtime", capshimBin, "run", "--rm", "--network", "none"}, want: maskPodmanMinimal},
				// Control. Podman's own default runtime here is crun, which
				// fails on this host's hybrid cgroups; the test podman
				// runs use runc.
				{name: "runc control", args: []string{"--runtime", runcPath, "run", "--rm", "--network", "none"}, want: maskPodman},
			},
		},
		{
			name:    "install podman --set-default",
			install: []string{"--set-default"},
			runs: []podmanRunCase{
				{name: "plain podman run", args: []string{"run", "--rm", "--network", "none"}, want: maskPodmanMinimal},
				{name: "runc control", args: []string{"--runtime", runcPath, "run", "--rm", "--network", "none"}, want: maskPodman},
			},
		},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			args := append([]string{"podman", "--file", file, "--no-policy"}, st.install...)
			out := installFresh(t, file, "", args...)
			if !strings.Contains(out, "nothing to restart") {
				t.Errorf("install does not say podman needs no restart:\n%s", out)
			}
			installAgain(t, file, args...)
			var m struct {
				Containers map[string]any `toml:"containers"`
				Engine     struct {
					Runtime  string              `toml:"runtime"`
					Runtimes map[string][]string `toml:"runtimes"`
				} `toml:"engine"`
			}
			// Read the way Podman reads containers.conf (BurntSushi/toml).
			if _, err := toml.DecodeFile(file, &m); err != nil {
				t.Fatalf("%s does not decode: %v", file, err)
			}
			if got := m.Engine.Runtimes["capshim"]; !reflect.DeepEqual(got, []string{capshimBin}) {
				t.Errorf("[engine.runtimes] capshim = %q, want [%q]", got, capshimBin)
			}
			wantRuntime := ""
			if len(st.install) > 0 {
				wantRuntime = "capshim"
			}
			if m.Engine.Runtime != wantRuntime {
				t.Errorf("[engine] runtime = %q, want %q", m.Engine.Runtime, wantRuntime)
			}
			if caps, _ := m.Containers["default_capabilities"].([]any); m.Containers["default_ulimits"] == nil || len(caps) != 11 {
				t.Errorf("install lost the test's [containers] settings: %v", m.Containers)
			}
			if t.Failed() {
				t.FailNow()
			}
			if wantRuntime != "" {
				r := p.podman(conf, "info", "--format", "{{.Host.OCIRuntime.Name}}")
				if r.err != nil || strings.TrimSpace(r.stdout) != "capshim" {
					t.Errorf("podman info does not show capshim as the runtime:\n%v", r)
				}
			}
			for _, rc := range st.runs {
				t.Run(rc.name, func(t *testing.T) {
					r := p.podman(conf, append(append([]string{}, rc.args...), grep...)...)
					if r.err != nil {
						t.Fatalf("%v", r)
					}
					t.Logf("%s: %v", r.cmdline, r.took.Round(time.Millisecond))
					assertCaps(t, r.stdout, rc.want)
				})
			}
		})
		if !ok {
			break
		}
	}
	t.Run("runtime state removed", func(t *testing.T) { podmanCheckRuntimeState(t, p.dir) })
	t.Logf("TestReadmePodman took %v (before cleanup)", time.Since(began).Round(time.Second))
}
