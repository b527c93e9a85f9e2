package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/internal/decisionlog"
	"github.com/capshim/capshim/internal/runtimefind"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/policy"
)

// policyCommand groups what an operator does with the policy file itself:
// check one, put one in place, see the one in force.
var policyCommand = &cli.Command{
	Name:  "policy",
	Usage: "check, install and show the policy file",
	Description: `capshim reads its policy on every runtime call, so a policy change is live at
the next container start, and a broken policy stops every start. These
commands check a policy as the runtime would before it goes live, replace
the policy in force only with one that passes, and show the one in force.`,
	Subcommands: []*cli.Command{policyCheckCommand, policyInstallCommand, policyShowCommand},
}

// sibling is the path of the program name next to this one (links
// resolved): capshim, capshim-tools and capshim-trace are installed
// together.
func sibling(name string) (string, error) {
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return "", fmt.Errorf("finding my own path: %w", err)
	}
	return filepath.Join(filepath.Dir(exe), name), nil
}

// absFlag makes a path given on the command line absolute, as the
// runtime needs it.
func absFlag(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("path %s: %w", p, err)
	}
	return abs, nil
}

// policySummary says in one line what a loaded policy does.
func policySummary(p *policy.Policy) string {
	var names []string
	for _, r := range p.Rules {
		names = append(names, r.Name)
	}
	rules := "no rules"
	switch len(names) {
	case 0:
	case 1:
		rules = "1 rule: " + names[0]
	default:
		rules = fmt.Sprintf("%d rules: %s", len(names), strings.Join(names, ", "))
	}
	return fmt.Sprintf("mode %s, default %s, never %s, %s", p.Mode, p.Default, p.Never, rules)
}

// checkRuntime finds the runtime the policy names (or runc on PATH) with
// the runtime's own lookup, and says which and why on w. capshim never
// runs itself, so the capshim next to this program is not a runtime. It
// returns the lookup's error as the runtime would report it.
func checkRuntime(w io.Writer, pol *policy.Policy) (runtimefind.Runtime, error) {
	self, _ := sibling("capshim")
	rt, err := runtimefind.Find(pol, os.Getenv("PATH"), runtimefind.SameFile(self))
	if err != nil {
		fmt.Fprintf(w, "runtime: refused\n")
		return rt, err
	}
	why := "named in the policy"
	if rt.OnPath {
		why = "runc on PATH"
	}
	fmt.Fprintf(w, "runtime: %s (%s): ok\n", safetext.Escape(rt.Path), why)
	return rt, nil
}

// problem prints err on stderr as the runtime prints the errors that stop
// a call.
func problem(c *cli.Context, err error) {
	fmt.Fprintln(c.App.ErrWriter, safetext.Line("capshim: "+err.Error()))
}

// policyWarnings are what the runtime would only warn about at every call.
func policyWarnings(w io.Writer, p *policy.Policy) {
	if p.Log == "" {
		return
	}
	l := decisionlog.Log{Path: p.Log}
	if err := l.Check(); err != nil {
		fmt.Fprintf(w, "warning: %s: capshim would warn at every call and log no decision\n", safetext.Escape(err.Error()))
	}
}
