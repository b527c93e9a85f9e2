//go:build integration

package integration

// capshim learn minimize with the real runc on busybox workloads of known
// needs: from a profile that says the workload used all of Docker's 14,
// the search must end at exactly what it needs, leave the rootfs as it
// was, and leave no container, runc state or mount behind.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
)

func TestMinimizeRunc(t *testing.T) {
	requireRoot(t)
	requireBinary(t, "runc")
	tests := []struct {
		name   string
		script string
		// user and ambient run the workload as that uid with those
		// ambient (and inheritable) capabilities.
		user    uint32
		ambient []string
		want    string // the needed line minimize prints
		runs    int
	}{
		{name: "chown", script: "touch /f && chown 1000 /f", want: "CAP_CHOWN", runs: 17},
		{name: "su", script: "su -s /bin/sh nobody -c true", want: "CAP_SETGID,CAP_SETUID", runs: 18},
		{
			// Binding :80 as uid 1000 takes an ambient capability: the
			// runs have it there only while it is a candidate.
			name: "bind80 as a user", script: "nc -l -p 80 -w 1 127.0.0.1 </dev/null & p=$!; sleep 0.3; kill -0 $p",
			user: 1000, ambient: []string{"CAP_NET_BIND_SERVICE"}, want: "CAP_NET_BIND_SERVICE", runs: 17,
		},
		{name: "nothing", script: "true", want: "none", runs: 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := t.TempDir()
			rootfs := filepath.Join(w, "bundle", "rootfs")
			buildRootfs(t, rootfs)
			before := listing(t, rootfs)
			g, err := generate.New("linux")
			if err != nil {
				t.Fatal(err)
			}
			g.SetRootPath("rootfs")
			g.SetRootReadonly(false)
			g.SetProcessTerminal(false)
			g.SetProcessArgs([]string{"sh", "-c", "if " + tc.script + "; then echo capshim-workload: OK; else echo capshim-workload: FAIL; exit 1; fi"})
			g.AddProcessEnv("PATH", "/bin")
			c := &rspec.LinuxCapabilities{Bounding: dockerCaps, Effective: dockerCaps, Permitted: dockerCaps}
			if tc.user != 0 {
				g.SetProcessUID(tc.user)
				g.SetProcessGID(tc.user)
				c.Effective, c.Inheritable, c.Ambient = tc.ambient, tc.ambient, tc.ambient
			}
			g.Config.Process.Capabilities = c
			bundle := filepath.Join(w, "bundle")
			if err := g.SaveToFile(filepath.Join(bundle, "config.json"), generate.ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { checkNoMounts(t, w) })

			// A profile that says the workload used all of Docker's 14.
			state := filepath.Join(w, "state")
			used := map[string]int{}
			for _, c := range dockerCaps {
				used[c] = 1
			}
			js, _ := json.Marshal(map[string]any{"name": "w", "used": used, "complete": true, "containers": 1, "runs": 1})
			for _, d := range []string{state, filepath.Join(state, "profiles")} {
				if err := os.Mkdir(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			writeFile(t, filepath.Join(state, "profiles", "w.json"), string(js), 0o600)

			tmp := t.TempDir()
			env := envWithout([]string{"CAPSHIM_", "TMPDIR="}, "TMPDIR="+tmp)
			r := runCmd(cmdOpts{timeout: 10 * time.Minute, env: env}, capshimBin, "learn", "minimize", "w", "--bundle", bundle,
				"--runtime", runcPath, "--check", "capshim-workload: OK", "--state-dir", state)
			if r.err != nil {
				t.Fatalf("%v", r)
			}
			if !strings.Contains(r.stdout, "\nneeded: "+tc.want+"\n") {
				t.Fatalf("minimize did not find %s:\n%s", tc.want, r.stdout)
			}
			if want := fmt.Sprintf("verified by %d runs in ", tc.runs); !strings.Contains(r.stdout, want) {
				t.Errorf("want %q:\n%s", want, r.stdout)
			}
			for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
				if !strings.HasPrefix(line, "    ") {
					t.Logf("%s", line)
				}
			}
			if r.stderr != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
			// The rule now keeps what was found.
			show := runCmd(cmdOpts{timeout: time.Minute, env: env}, capshimBin, "learn", "show", "w", "--state-dir", state)
			keep := keepLine()
			if tc.want != "none" {
				keep = keepLine(strings.Split(tc.want, ",")...)
			}
			if !strings.Contains(show.stdout, "\n"+keep) || !strings.Contains(show.stdout, fmt.Sprintf("# verified by %d runs on ", tc.runs)) {
				t.Errorf("learn show does not keep the verified set (%s):\n%v", strings.TrimSpace(keep), show)
			}
			// Every run wrote on an overlay of its own, now gone, and
			// ran under a runtime root that went with it.
			if d := diffListing(before, listing(t, rootfs)); d != "" {
				t.Errorf("the runs changed the rootfs:\n%s", d)
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("minimize left %d entries in its temporary directory (%s...)", len(left), left[0].Name())
			}
		})
	}
}
