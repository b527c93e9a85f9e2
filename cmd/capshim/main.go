// Command capshim is an OCI runtime wrapper that reduces a container's
// Linux capabilities to a policy before it hands over to the real runtime
// (runc, crun). Called with runc's command line it works as a runtime;
// called with one of its own commands (rewrite, check, caps, ...) it is a
// command-line tool.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run dispatches on the command word: capshim's own commands go to the CLI,
// everything else is a runtime call. It returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if isCLI(args) {
		return runCLI(args, stdout, stderr)
	}
	return runtimeMain(args, stderr)
}

// cliCommands lists capshim's own commands; they shadow nothing of runc's.
func cliCommands() []*cli.Command {
	return []*cli.Command{rewriteCommand, checkCommand, capsCommand, inspectCommand, installCommand}
}

// isCLI reports whether args name one of capshim's own commands (or ask for
// help). The command word is found with runc's global-flag rules, so
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
	case word == "" || word == "help" || word == "h":
		// No command: runc would print its usage; show ours.
		return true
	}
	for _, c := range cliCommands() {
		if c.Name == word || slices.Contains(c.Aliases, word) {
			return true
		}
	}
	return false
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "capshim",
		Usage: "least-privilege capabilities for every container, as an OCI runtime wrapper",
		Description: `Registered as the OCI runtime of Docker, containerd or Podman, capshim reduces
the capability sets of every container to a policy, then runs the real runtime
(runc, crun) with the same command line. Called with runc's command line it
works as that runtime; the commands below work on spec files by hand.`,
		Version:         version,
		HideVersion:     true,
		Commands:        cliCommands(),
		Writer:          stdout,
		ErrWriter:       stderr,
		ExitErrHandler:  func(*cli.Context, error) {},
		HideHelpCommand: false,
	}
}

// runCLI runs a capshim command and maps its error to an exit code: an
// error carrying an exit code (cli.Exit) keeps it, any other error is 2.
func runCLI(args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).Run(args)
	if err == nil {
		return 0
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := ec.Error(); msg != "" {
			fmt.Fprintln(stderr, "capshim:", msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(stderr, "capshim:", err)
	return 2
}
