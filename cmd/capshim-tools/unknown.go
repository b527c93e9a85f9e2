package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/internal/clinames"
)

// checkCommandWords answers a command line whose command word (or, for a
// command with subcommands, whose subcommand word) capshim does not have,
// before urfave/cli sees it: urfave/cli, like runc, would take the word
// for a help topic and print "No help topic". It prints what the commands
// are, with the nearest one when the word looks like a typing mistake,
// and reports true with the exit code; false lets the command line run.
func checkCommandWords(args []string, cmds []*cli.Command, stdout, stderr io.Writer) (int, bool) {
	if len(args) < 2 || strings.HasPrefix(args[1], "-") {
		return 0, false
	}
	word := args[1]
	help := word == "help" || word == "h"
	if help {
		if len(args) < 3 || strings.HasPrefix(args[2], "-") {
			return 0, false
		}
		word = args[2]
	}
	cmd := findCommand(cmds, word)
	switch {
	case cmd == nil && clinames.IsRuntime(word) && help:
		// A fair question: the answer is where the command goes.
		fmt.Fprintf(stdout, "%s is a runtime command: capshim hands it to the runtime (capshim %s ... runs it; runc %s --help shows its flags)\n", word, word, word)
		return 0, true
	case cmd == nil:
		unknownCommand(stderr, "", word, cmds)
		return 2, true
	}
	if !hasSubcommands(cmd) || args[1] != word || len(args) < 3 || strings.HasPrefix(args[2], "-") {
		return 0, false
	}
	sub := args[2]
	if sub == "help" || sub == "h" || findCommand(cmd.Subcommands, sub) != nil {
		return 0, false
	}
	unknownCommand(stderr, cmd.Name, sub, cmd.Subcommands)
	return 2, true
}

// hasSubcommands reports whether cmd has subcommands of its own
// (urfave/cli gives every command it ran a help subcommand).
func hasSubcommands(cmd *cli.Command) bool {
	for _, c := range cmd.Subcommands {
		if !c.HasName("help") {
			return true
		}
	}
	return false
}

// findCommand returns the command called name (or by an alias), or nil.
func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// unknownCommand says that word is not a command (of the command group,
// when group is set), lists the commands there are, and names the closest
// one, among capshim's and the runtime's, when word is a near miss.
func unknownCommand(w io.Writer, group, word string, cmds []*cli.Command) {
	prefix, helpCmd := "capshim", "capshim COMMAND --help"
	if group != "" {
		prefix += " " + group
		helpCmd = "capshim " + group + " COMMAND --help"
	}
	var names []string
	for _, c := range cmds {
		if !c.Hidden && !c.HasName("help") {
			names = append(names, c.Name)
		}
	}
	if group == "" && clinames.IsRuntime(word) {
		// capshim-tools run by itself: the capshim binary hands such a
		// command line to the runtime.
		fmt.Fprintf(w, "capshim: %s is a runtime command: run it as capshim %s ..., which hands it to the runtime\n", word, word)
		return
	}
	msg := fmt.Sprintf("capshim: unknown command %q", strings.TrimSpace(group+" "+word))
	best, bestDist := "", 3
	consider := func(name, what string) {
		if d := editDistance(word, name); d < bestDist && d < len(name) {
			best, bestDist = name+what, d
		}
	}
	for _, n := range names {
		consider(n, "")
	}
	if group == "" {
		for _, n := range clinames.Runtime {
			consider(n, " (a runtime command)")
		}
	}
	if best != "" {
		name, what, _ := strings.Cut(best, " ")
		if what != "" {
			what = " " + what
		}
		msg += fmt.Sprintf("; did you mean %q%s?", strings.TrimSpace(group+" "+name), what)
	}
	fmt.Fprintln(w, msg)
	fmt.Fprintf(w, "the commands of %s: %s (%s tells more)\n", prefix, strings.Join(names, ", "), helpCmd)
	if group == "" {
		fmt.Fprintf(w, "runtime commands (%s, ...) go to the runtime\n", strings.Join(clinames.Runtime[:7], ", "))
	}
}

// editDistance is the number of single-letter insertions, deletions,
// substitutions and swaps of neighbours that turn a into b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
