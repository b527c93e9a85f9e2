// Command capshim is an OCI runtime wrapper that reduces a container's
// Linux capabilities to a policy before it hands over to the real runtime
// (runc, crun). Engines call it with runc's command line.
//
// capshim is on the path of every runtime call, so this binary holds only
// the runtime path. Its own commands (rewrite, check, caps, inspect,
// install) live in the companion binary capshim-tools next to it: capshim
// hands such a command line over to it unchanged.
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

// version is the one capshim.Version gives both binaries.
var version = capshim.Version()

func main() {
	os.Exit(run(os.Args, os.Stderr))
}

// run dispatches on the command word: capshim's own commands go to
// capshim-tools, everything else is a runtime call. It returns the exit
// code when it does not exec.
func run(args []string, stderr io.Writer) int {
	if isCLI(args) {
		return execTools(args, stderr)
	}
	return runtimeMain(args, stderr)
}

// isCLI reports whether args name one of capshim's own commands (or ask
// for help). The command word is found with runc's global-flag rules, so
// "capshim --root r create rewrite" is still a runtime call.
func isCLI(args []string) bool {
	if len(args) < 2 {
		return true
	}
	word, version, ok := commandWord(args[1:])
	switch {
	case !ok:
		// Global flags capshim does not know: the runtime path reports it.
		return false
	case version:
		return false
	case word == "":
		// No command (--help, or nothing): runc would print its usage.
		return true
	}
	return clinames.Is(word)
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
