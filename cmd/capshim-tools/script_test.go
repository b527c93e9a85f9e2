package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/capshim/capshim/internal/golden"
)

// TestMain lets the scripts under testdata/script run capshim: testscript
// puts a copy of this test binary on their PATH as "capshim", and a
// script's `exec capshim ...` runs run() in that copy, with the script's
// files, working directory and environment. As "capshim-web" it is
// capshim called through a link of that name, which picks its policy by
// the name.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"capshim":     capshimMain,
		"capshim-web": capshimMain,
	})
}

// lastCapEnv, set in a script (not empty), makes `capshim caps` describe a kernel
// whose last capability is its value instead of the kernel the test runs
// on, so that the whole table can be compared on any machine.
const lastCapEnv = "CAPSHIM_TEST_KERNEL_LAST_CAP"

func capshimMain() {
	if s := os.Getenv(lastCapEnv); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s=%q: %v\n", lastCapEnv, s, err)
			os.Exit(3)
		}
		capsKernelLastCap = func() int { return n }
	}
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// TestScripts runs the command-line tests: each script under
// testdata/script holds the commands, their inputs and the output they
// must give. go test -update rewrites the expected files that cmp
// compares with.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		UpdateScripts:       golden.Updating(),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup:               setupScript,
		Condition:           scriptCondition,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"exitcode": cmdExitcode,
			"abbrev":   cmdAbbrev,
			"perm":     cmdPerm,
			"ls":       cmdLs,
		},
	})
}

// scriptCondition gives the scripts [root]: some output differs when the
// tests run as root, as CI runs them, and when they run as anyone else, as
// go test ./... on a developer's machine does.
func scriptCondition(cond string) (bool, error) {
	if cond == "root" {
		return os.Geteuid() == 0, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// setupScript makes the work directory writable by its owner only:
// capshim refuses a policy that others could change, and the files a
// script unpacks would otherwise be as open as the umask leaves them.
// It also gives the scripts $ESC, a terminal escape byte, to ask for the
// names a container chose, control characters and all, and
// $CAPSHIM_TEST_VERSION, this program's version.
func setupScript(e *testscript.Env) error {
	e.Setenv("ESC", "\x1b")
	// The version stand-ins for capshim and capshim-trace print, so that
	// status and version find them of one build with this program.
	e.Setenv("CAPSHIM_TEST_VERSION", version)
	return filepath.WalkDir(e.WorkDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(path, info.Mode().Perm()&^0o022)
	})
}

// cmdExitcode is `exitcode N PROG [ARGS...]`: it runs PROG as exec does
// and fails unless PROG exits with status N. `! exec` takes any failure,
// and capshim's commands tell "found something" (1) from "could not do
// it" (2).
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exitcode")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: status %q is not a number", args[0])
	}
	got := 0
	var ee *exec.ExitError
	switch err := ts.Exec(args[1], args[2:]...); {
	case err == nil:
	case errors.As(err, &ee):
		got = ee.ExitCode()
	default:
		ts.Fatalf("exitcode: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// cmdAbbrev is `abbrev`: it gives the last command's stdout and stderr
// again with the work directory written as $WORK. Policies are named by
// their absolute path in capshim's output, and with this a script can
// compare such output with cmp (which go test -update rewrites) whatever
// the temporary directory.
func cmdAbbrev(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: abbrev")
	}
	work := ts.Getenv("WORK")
	stdout, stderr := ts.ReadFile("stdout"), ts.ReadFile("stderr")
	fmt.Fprint(ts.Stdout(), strings.ReplaceAll(stdout, work, "$WORK"))
	fmt.Fprint(ts.Stderr(), strings.ReplaceAll(stderr, work, "$WORK"))
}

// cmdPerm is `perm MODE FILE`: it fails unless FILE's permission bits are
// MODE (octal), or with ! unless they are not.
func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: perm MODE file")
	}
	want, err := strconv.ParseUint(args[0], 8, 32)
	if err != nil {
		ts.Fatalf("perm: mode %q is not octal", args[0])
	}
	info, err := os.Stat(ts.MkAbs(args[1]))
	ts.Check(err)
	if got := info.Mode().Perm(); (got == fs.FileMode(want)) == neg {
		ts.Fatalf("%s has mode %04o, want %s%04o", args[1], got, map[bool]string{true: "other than "}[neg], want)
	}
}

// cmdLs is `ls DIR`: it writes the names in DIR, one a line, to stdout,
// for a script to check that a command left nothing else there.
func cmdLs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: ls dir")
	}
	entries, err := os.ReadDir(ts.MkAbs(args[0]))
	ts.Check(err)
	w := ts.Stdout() // an empty DIR gives an empty stdout
	for _, e := range entries {
		fmt.Fprintln(w, e.Name())
	}
}
