//go:build integration

package integration

// The runtime and capshim's commands find their policy the same way: for
// every lookup path, `capshim create` (the runtime) and `capshim rewrite`
// (the CLI) on the same spec pick the same file and write the same bytes.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capshim/capshim/policy"
)

// pathPolicy is a policy whose only rule grants one capability to anyone
// who asks: which capability a spec keeps shows which policy decided.
func pathPolicy(runtime, cap string) string {
	return `runtime = "` + runtime + `"
default = ["CAP_KILL"]
[[rule]]
name = "grant-` + strings.ToLower(cap) + `"
capabilities = ["` + cap + `"]
`
}

// pathSpec asks for every capability the policies of this test grant.
const pathSpec = `{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/","env":["CAPSHIM_CAPABILITIES=CAP_CHOWN,CAP_SETUID,CAP_SETGID,CAP_NET_RAW"],
"capabilities":{"bounding":["CAP_CHOWN","CAP_SETUID","CAP_SETGID","CAP_NET_RAW","CAP_KILL","CAP_MKNOD"],"effective":["CAP_CHOWN","CAP_SETUID","CAP_SETGID","CAP_NET_RAW","CAP_KILL","CAP_MKNOD"],"permitted":["CAP_CHOWN","CAP_SETUID","CAP_SETGID","CAP_NET_RAW","CAP_KILL","CAP_MKNOD"]}},"root":{"path":"rootfs"}}`

func TestPolicyPathsAgree(t *testing.T) {
	requireRoot(t)
	// A runtime that does nothing: only what capshim wrote matters here.
	bin := newDir(t, 0o755)
	noop := filepath.Join(bin, "noop-runtime")
	writeFile(t, noop, "#!/bin/sh\nexit 0\n", 0o755)
	// capshim under another name, next to the real one (and so next to
	// capshim-tools).
	web := filepath.Join(filepath.Dir(capshimBin), "capshim-web")
	if err := os.Symlink(capshimBin, web); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(web) })

	flagPol := writePolicy(t, pathPolicy(noop, "CAP_CHOWN"))
	envPol := writePolicy(t, pathPolicy(noop, "CAP_SETUID"))
	nameDir := newDir(t, 0o755)
	writeFile(t, filepath.Join(nameDir, "capshim-web.toml"), pathPolicy(noop, "CAP_SETGID"), 0o644)
	untrusted := writePolicy(t, pathPolicy(noop, "CAP_NET_RAW"))
	if err := os.Chmod(untrusted, 0o666); err != nil {
		t.Fatal(err)
	}
	_, defaultMissing := os.Lstat(policy.DefaultPath)

	tests := []struct {
		name    string
		bin     string
		flag    string // the policy flag (runtime --capshim-config, CLI --config)
		env     []string
		keeps   string // the capability the deciding policy grants
		refused string // both refuse, naming this
		skip    string
	}{
		{name: "flag", bin: capshimBin, flag: flagPol, env: []string{"CAPSHIM_CONFIG=" + envPol}, keeps: "CAP_CHOWN"},
		{name: "name before $CAPSHIM_CONFIG", bin: web, env: []string{"CAPSHIM_CONFIG_DIR=" + nameDir, "CAPSHIM_CONFIG=" + envPol}, keeps: "CAP_SETGID"},
		{name: "$CAPSHIM_CONFIG", bin: capshimBin, env: []string{"CAPSHIM_CONFIG=" + envPol}, keeps: "CAP_SETUID"},
		{name: "name whose file is missing", bin: web, env: []string{"CAPSHIM_CONFIG_DIR=" + t.TempDir(), "CAPSHIM_CONFIG=" + envPol}, refused: "policy not found"},
		{name: "untrusted", bin: capshimBin, env: []string{"CAPSHIM_CONFIG=" + untrusted}, refused: "untrusted policy"},
		{name: "flag naming a missing file", bin: capshimBin, flag: filepath.Join(t.TempDir(), "none.toml"), refused: "policy not found"},
		{name: "default path, missing: built-in", bin: capshimBin, keeps: "",
			skip: map[bool]string{true: "", false: policy.DefaultPath + " exists on this host"}[defaultMissing != nil]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip != "" {
				t.Skip(tt.skip)
			}
			env := envWithout([]string{"CAPSHIM_"}, tt.env...)
			// The runtime: create on a bundle.
			b := t.TempDir()
			writeFile(t, filepath.Join(b, "config.json"), pathSpec, 0o644)
			log := filepath.Join(b, "log.json")
			args := []string{"--root", t.TempDir(), "--log", log, "--log-format", "json", "create", "--bundle", b, "c1"}
			if tt.flag != "" {
				args = append([]string{"--capshim-config=" + tt.flag}, args...)
			}
			rt := requireExited(t, runCmd(cmdOpts{env: env}, tt.bin, args...))
			// The CLI: rewrite of the same spec, through the same binary
			// name.
			in := filepath.Join(t.TempDir(), "config.json")
			writeFile(t, in, pathSpec, 0o644)
			cliArgs := []string{"rewrite", in}
			if tt.flag != "" {
				cliArgs = []string{"rewrite", "--config", tt.flag, in}
			}
			cli := requireExited(t, runCmd(cmdOpts{env: env}, tt.bin, cliArgs...))
			if tt.refused != "" {
				if rt.code == 0 || cli.code == 0 {
					t.Fatalf("a refused policy was used:\nruntime: %s\ncli: %s", rt, cli)
				}
				if !strings.Contains(tailFile(log, 3), tt.refused) || !strings.Contains(cli.stderr, tt.refused) {
					t.Fatalf("want both to say %q:\nruntime log: %s\ncli: %s", tt.refused, tailFile(log, 3), cli)
				}
				return
			}
			// The built-in policy runs the real runc, which then finds no
			// rootfs: capshim has written the spec by then.
			runcRefused := tt.keeps == "" && strings.Contains(rt.stderr, "runc create failed")
			if rt.code != 0 && !runcRefused || cli.code != 0 {
				t.Fatalf("runtime: %s\ncli: %s", rt, cli)
			}
			reduced, err := os.ReadFile(filepath.Join(b, "config.json"))
			if err != nil {
				t.Fatal(err)
			}
			if string(reduced) != cli.stdout {
				t.Fatalf("the runtime and the CLI reduced the same spec differently:\nruntime: %s\ncli:     %s", reduced, cli.stdout)
			}
			var s struct {
				Process struct {
					Capabilities struct{ Bounding []string } `json:"capabilities"`
				} `json:"process"`
			}
			if err := json.Unmarshal(reduced, &s); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(s.Process.Capabilities.Bounding, ",")
			// The built-in default keeps CAP_KILL of this spec.
			want := "CAP_KILL"
			if tt.keeps != "" {
				want = tt.keeps + ",CAP_KILL"
			}
			if got != want {
				t.Fatalf("bounding %s, want %s (the wrong policy decided)", got, want)
			}
			// Both say which policy they used.
			var entry struct {
				Policy string `json:"policy"`
			}
			for _, line := range strings.Split(strings.TrimSpace(tailFile(log, 5)), "\n") {
				if json.Unmarshal([]byte(line), &entry) == nil && entry.Policy != "" {
					break
				}
			}
			if entry.Policy == "" || !strings.Contains(cli.stderr, "capshim: policy "+entry.Policy) {
				t.Fatalf("runtime log names policy %q; the CLI says:\n%s", entry.Policy, cli.stderr)
			}
		})
	}
}
