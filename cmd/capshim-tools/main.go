// Command capshim-tools holds capshim's own commands: rewrite, check,
// caps, inspect and install. Users run them as `capshim COMMAND`: the
// capshim binary (kept small, since it is on the path of every container
// start) hands such command lines over to capshim-tools, which lies next
// to it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// cliCommands lists capshim's own commands; internal/clinames lists their
// names for the capshim binary's dispatch.
func cliCommands() []*cli.Command {
	return []*cli.Command{rewriteCommand, checkCommand, capsCommand, inspectCommand, installCommand}
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:  "capshim",
		Usage: "least-privilege capabilities for every container, as an OCI runtime wrapper",
		Description: `Registered as the OCI runtime of Docker, containerd or Podman, capshim reduces
the capability sets of every container to a policy, then runs the real runtime
(runc, crun) with the same command line. Called with runc's command line it
works as that runtime; the commands below work on spec files by hand.`,
		Version:        version,
		HideVersion:    true,
		Commands:       cliCommands(),
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// run runs a capshim command and maps its error to an exit code: an error
// carrying an exit code (cli.Exit) keeps it, any other error is 2.
func run(args []string, stdout, stderr io.Writer) int {
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
