// Command capshim is an OCI runtime wrapper that reduces a container's
// Linux capabilities to a policy before it hands over to the real runtime
// (runc, crun). Engines call it with runc's command line.
//
// capshim is on the path of every runtime call, so this binary holds only
// the runtime path. Its own commands (rewrite, check, install, policy,
// version, ...) live in the companion binary capshim-tools next to it:
// capshim hands such a command line over to it unchanged.
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/capshim/capshim"
	"github.com/capshim/capshim/internal/clinames"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// versionFlag, as capshim's only argument, prints capshim's own version
// and nothing else (`capshim version` runs it). runc's --version is a
// runtime call: capshim's version line, then the runtime's.
const versionFlag = "--capshim-version"

// run dispatches on the command word: capshim's own commands go to
// capshim-tools, everything else is a runtime call. It returns the exit
// code when it does not exec.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[1] == versionFlag {
		fmt.Fprintf(stdout, "capshim version %s\n", capshim.Version())
		return 0
	}
	if isCLI(args) {
		return execTools(args, stderr)
	}
	return runtimeMain(args, stderr)
}

// isCLI reports whether args name one of capshim's own commands (or ask
// for help). The command word is found with runc's global-flag rules, so
// "capshim --root r create rewrite" is still a runtime call. A word that
// is neither capshim's nor a runtime command goes to capshim-tools too,
// which says what capshim's commands are, unless runtime global flags
// come before it: engines always pass some (--root, --log), and a runtime
// command capshim does not know yet must still reach the runtime.
func isCLI(args []string) bool {
	if len(args) < 2 {
		return true
	}
	ra, err := parseGlobals(args[1:])
	switch {
	case err != nil:
		// Global flags capshim does not know: the runtime path reports it.
		return false
	case ra.version:
		return false
	case ra.command == "":
		// No command (--help, or nothing): runc would print its usage.
		return true
	case clinames.Is(ra.command):
		return true
	}
	return ra.cmdAt == 0 && !clinames.IsRuntime(ra.command)
}

// execTools becomes capshim-tools, found next to capshim's own executable,
// with the same arguments.
func execTools(args []string, stderr io.Writer) int {
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		fmt.Fprintf(stderr, "capshim: cannot find my own path to run %s: %v\n", clinames.Tools, err)
		return 2
	}
	tools := filepath.Join(filepath.Dir(exe), clinames.Tools)
	// argv[0] stays the name capshim was called as: capshim-web's
	// commands must read capshim-web's policy, as its runtime calls do.
	err = syscall.Exec(tools, args, os.Environ())
	fmt.Fprintf(stderr, "capshim: cannot run %s: %v\ncapshim: the commands %v live in that companion binary; install it next to %s (make build builds both)\n",
		tools, err, clinames.Names[:5], exe)
	return 2
}
