package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capshim/capshim/internal/trustfs"
	"github.com/capshim/capshim/policy"
)

// TestFindRuntimeRefuses: the runtime is opened once and checked through
// its descriptor; a user's link on the way is refused.
func TestFindRuntimeRefuses(t *testing.T) {
	requireRoot(t)
	sticky := filepath.Join(t.TempDir(), "sticky")
	if err := os.Mkdir(sticky, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(sticky, "runc")
	if err := os.Symlink("/bin/sh", link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := findRuntime(&policy.Policy{Runtime: link, Source: "test.toml"})
	if err == nil || !strings.Contains(err.Error(), "untrusted runtime (named in test.toml)") || !errors.Is(err, trustfs.ErrUntrusted) {
		t.Fatalf("err = %v", err)
	}
	_, err = findRuntime(&policy.Policy{Runtime: filepath.Join(sticky, "none"), Source: "test.toml"})
	if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("missing runtime: err = %v", err)
	}
}

// TestExecRuntimeHelper is the process TestExecRuntime starts: it opens
// the runtime as capshim does and becomes it.
func TestExecRuntimeHelper(t *testing.T) {
	rt := os.Getenv("CAPSHIM_TEST_EXEC_RUNTIME")
	if rt == "" {
		t.Skip("started by TestExecRuntime")
	}
	f, err := trustfs.Open(rt, trustfs.Exec)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	argv := append([]string{rt}, strings.Split(os.Getenv("CAPSHIM_TEST_EXEC_ARGS"), "\x1f")...)
	err = execRuntime(realRuntime{path: rt, file: f}, argv, []string{"CAPSHIM_TEST_ENV=kept"})
	fmt.Println("exec:", err)
	os.Exit(3)
}

// TestExecRuntime: the runtime runs from the checked descriptor, with the
// soft limit on open files capshim was started with (Go raises it for
// itself), the environment given, and no descriptor of capshim's left
// open; a script runtime runs too.
func TestExecRuntime(t *testing.T) {
	report := `echo "limit=$(ulimit -Sn) env=$CAPSHIM_TEST_ENV comm=$(cat /proc/$$/comm) arg0=$0 args=$*"; ls -l /proc/$$/fd`
	script := filepath.Join(rootDir(t), "runtime.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"+report+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		runtime string
		args    string
		root    bool
		want    []string
		notWant string // a descriptor that must not be open in the runtime
	}{
		{name: "binary", runtime: "/bin/sh", args: "-c\x1f" + report + "\x1farg0",
			want: []string{"limit=512 ", "env=kept ", "arg0=arg0"}, notWant: "-> " + sh + "\n"},
		{name: "script", runtime: script, args: "create\x1fid", root: true,
			want: []string{"limit=512 ", "env=kept ", "args=create id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				requireRoot(t)
			}
			cmd := exec.Command("/bin/sh", "-c", `ulimit -Sn 512 && exec "$0" -test.run='^TestExecRuntimeHelper$'`, os.Args[0])
			cmd.Env = []string{"CAPSHIM_TEST_EXEC_RUNTIME=" + tt.runtime, "CAPSHIM_TEST_EXEC_ARGS=" + tt.args}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			t.Logf("%s", out)
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("the runtime printed %q, want %q in it", out, w)
				}
			}
			if tt.notWant != "" && strings.Contains(string(out), tt.notWant) {
				t.Errorf("capshim's descriptor of the runtime is still open in it (%q)", tt.notWant)
			}
		})
	}
}
