//go:build integration

package integration

// capshim hands runc's answers back unchanged: the container's exit code,
// and runc's version lines after capshim's own.

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestRuncExitCode(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy)
	for _, code := range []int{0, 7, 42} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			b := newBundle(t, bundleSpec{args: []string{"sh", "-c", fmt.Sprintf("exit %d", code)}})
			root, id := runcRoot(t), containerID(t)
			runcCleanup(t, root, id)
			res := requireExited(t, runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(globalArgs(root, filepath.Join(b, "log.json")), "run", "--bundle", b, id)...))
			if res.code != code {
				t.Errorf("capshim exit code %d, want %d\n%s", res.code, code, res)
			}
		})
	}
}

func TestRuncVersion(t *testing.T) {
	requireRunc(t)
	policy := writePolicy(t, runcPolicy)
	res := runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, "--version")
	if res.code != 0 {
		t.Fatalf("capshim --version failed:\n%s", res)
	}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "capshim") {
		t.Fatalf("want a capshim line then runc's version lines:\n%s", res)
	}
	want, err := exec.Command(runcPath, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	rest := strings.Join(lines[1:], "\n")
	if !strings.Contains(rest, strings.TrimSpace(string(want))) {
		t.Errorf("runc's version lines missing after the capshim line:\nwant:\n%s\ngot:\n%s", want, res.stdout)
	}
}
