package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/policy"
)

var policyCheckCommand = &cli.Command{
	Name:      "check",
	Usage:     "check a policy as the runtime would, without a spec",
	ArgsUsage: "[FILE]",
	Description: `Loads FILE exactly as the runtime loads its policy: the TOML syntax, every key,
every capability name and the trust check (the file, and every directory and
link above it, owned by root and writable by nobody else). Then it finds the
runtime the policy names, or runc on PATH, with the runtime's own lookup and
trust check. Problems are printed on stderr as the runtime would print them.
Without FILE it checks the policy capshim would use: found by the name capshim
is called as, $CAPSHIM_CONFIG, /etc/capshim/shim.toml, else the built-in one.
Exit status: 0 the policy and the runtime are fine, 1 they are not.`,
	Action: func(c *cli.Context) error {
		if c.NArg() > 1 {
			return cli.Exit("policy check takes at most one FILE; see capshim policy check --help", 2)
		}
		file, err := absFlag(c.Args().First())
		if err != nil {
			return cli.Exit(err, 2)
		}
		w := c.App.Writer
		loc := policy.Locate(file, argv0(c), false, os.Getenv)
		pol, err := loc.Load()
		if err != nil {
			fmt.Fprintf(w, "policy: %s (%s): refused\n", safetext.Escape(loc.Path), loc.Why)
			fmt.Fprintf(w, "runtime: not checked: with this policy the runtime refuses every create, run, restore and exec\n")
			problem(c, err)
			return cli.Exit("", 1)
		}
		fmt.Fprintf(w, "policy: %s: ok: %s\n", safetext.Escape(loc.Describe(pol)), policySummary(pol))
		policyWarnings(w, pol)
		rt, err := checkRuntime(w, pol)
		if err != nil {
			problem(c, err)
			return cli.Exit("", 1)
		}
		rt.File.Close()
		return nil
	},
}
