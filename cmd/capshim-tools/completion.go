package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/install"
)

// completionCommand prints a shell completion script made from the
// commands' own definitions, so it lists what this build has. urfave/cli's
// own completion asks the program at every TAB with a flag that capshim
// would hand to the runtime, so the script here is static instead.
var completionCommand = &cli.Command{
	Name:      "completion",
	Usage:     "print the bash completion script",
	ArgsUsage: "bash",
	Description: `Prints a bash completion script for capshim: its commands, their
subcommands, flags and engine names. Load it with
  source <(capshim completion bash)
or install it as /usr/share/bash-completion/completions/capshim (the Debian
package does).`,
	Action: completionAction,
}

func completionAction(c *cli.Context) error {
	if c.NArg() != 1 || c.Args().First() != "bash" {
		return cli.Exit("completion takes one shell: bash; see capshim completion --help", 2)
	}
	writeBashCompletion(c.App.Writer, c.App.Commands)
	return nil
}

// flagWords are a command's flags as typed (--name, -n).
func flagWords(cmd *cli.Command) []string {
	var words []string
	for _, f := range cmd.Flags {
		if v, ok := f.(cli.VisibleFlag); ok && !v.IsVisible() {
			continue
		}
		for _, n := range f.Names() {
			if n == "help" || n == "h" {
				continue // urfave/cli's own, once more at run time
			}
			if len(n) == 1 {
				words = append(words, "-"+n)
			} else {
				words = append(words, "--"+n)
			}
		}
	}
	return append(words, "--help")
}

// operandWords are the words a command takes as operands, where they are
// a fixed set.
func operandWords(cmd *cli.Command) []string {
	switch cmd.Name {
	case "install", "uninstall":
		var engines []string
		for _, e := range install.Engines {
			engines = append(engines, string(e))
		}
		return engines
	case "completion":
		return []string{"bash"}
	}
	return nil
}

func writeBashCompletion(w io.Writer, cmds []*cli.Command) {
	var names []string
	type arm struct{ pattern, words string }
	var arms []arm
	for _, cmd := range cmds {
		if cmd.Hidden || cmd.Name == "help" {
			continue
		}
		names = append(names, cmd.Name)
		// urfave/cli adds a help subcommand to the command being run.
		var subs []string
		for _, sub := range cmd.Subcommands {
			if sub.Name != "help" {
				subs = append(subs, sub.Name)
				arms = append(arms, arm{cmd.Name + "/" + sub.Name, strings.Join(flagWords(sub), " ")})
			}
		}
		if len(subs) > 0 {
			arms = append(arms, arm{cmd.Name + "/", strings.Join(append(subs, "--help"), " ")})
			continue
		}
		arms = append(arms, arm{cmd.Name + "/*", strings.Join(slices.Concat(operandWords(cmd), flagWords(cmd)), " ")})
	}
	fmt.Fprintf(w, `# bash completion for capshim (written by capshim completion bash)
_capshim() {
	local cur=${COMP_WORDS[COMP_CWORD]} cmd= sub= i words=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in -*) continue ;; esac
		if [[ -z $cmd ]]; then cmd=${COMP_WORDS[i]}; elif [[ -z $sub ]]; then sub=${COMP_WORDS[i]}; fi
	done
	case "$cmd/$sub" in
	/) words=%q ;;
`, strings.Join(append(names, "--help"), " "))
	for _, a := range arms {
		fmt.Fprintf(w, "\t%s) words=%q ;;\n", a.pattern, a.words)
	}
	fmt.Fprint(w, `	esac
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _capshim capshim
`)
}
