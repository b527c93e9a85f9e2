// Command capshim-tools holds capshim's own commands: rewrite, check,
// caps, inspect, install, uninstall, status, policy, learn, explain,
// report, version and completion.
// Users run them as `capshim COMMAND`: the capshim binary (kept small,
// since it is on the path of every container start) hands such command
// lines over to capshim-tools, which lies next to it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim"
)

// version is the one capshim.Version gives both binaries.
var version = capshim.Version()

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// cliCommands lists capshim's own commands; internal/clinames lists their
// names for the capshim binary's dispatch.
func cliCommands() []*cli.Command {
	return []*cli.Command{rewriteCommand, checkCommand, capsCommand, inspectCommand, installCommand, uninstallCommand, statusCommand, learnCommand, explainCommand, reportCommand, policyCommand, versionCommand, completionCommand}
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

// flagsFirst moves the flags that follow a command's operands in front of
// them (up to "--"), so that "capshim rewrite config.json --diff" works
// like "capshim rewrite --diff config.json": urfave/cli v2 stops reading
// flags at the first operand. Which flags take a value comes from the
// command's own flag definitions.
func flagsFirst(args []string, cmds []*cli.Command) []string {
	if len(args) < 3 {
		return args
	}
	var cmd *cli.Command
	for _, c := range cmds {
		if c.HasName(args[1]) {
			cmd = c
		}
	}
	if cmd == nil {
		return args
	}
	// A command with subcommands (learn list ...): the flags belong to
	// the subcommand.
	for _, sub := range cmd.Subcommands {
		if sub.HasName(args[2]) {
			rest := flagsFirst(append([]string{args[1]}, args[2:]...), cmd.Subcommands)
			return append([]string{args[0]}, rest...)
		}
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		v, ok := f.(cli.DocGenerationFlag)
		for _, n := range f.Names() {
			takesValue[n] = ok && v.TakesValue()
		}
	}
	var flags, operands []string
	help := false
	rest := args[2:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			operands = append(operands, rest[i:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			operands = append(operands, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if name == "help" || name == "h" {
			help = true
		}
		if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(rest) {
			i++
			flags = append(flags, rest[i])
		}
	}
	if help {
		// "capshim install docker --help" asks for install's help: given
		// operands, urfave/cli would take the first for a help topic.
		return []string{args[0], args[1], "--help"}
	}
	out := append([]string{args[0], args[1]}, flags...)
	return append(out, operands...)
}

// run runs a capshim command and maps its error to an exit code: an error
// carrying an exit code (cli.Exit) keeps it, any other error is 2.
func run(args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	// The name capshim was called as picks the policy, as for the runtime;
	// the app itself is always called capshim.
	app.Metadata = map[string]any{"argv0": args[0]}
	if code, done := checkCommandWords(args, app.Commands, stdout, stderr); done {
		return code
	}
	err := app.Run(flagsFirst(append([]string{"capshim"}, args[1:]...), app.Commands))
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
