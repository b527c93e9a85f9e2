package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/policy"
)

var policyShowCommand = &cli.Command{
	Name:  "show",
	Usage: "print the policy in force and where it comes from",
	Description: `Prints, after a comment line that says which file it is and why capshim reads
it, the text of the policy capshim would use: the file the runtime finds (the
name capshim is called as, $CAPSHIM_CONFIG, /etc/capshim/shim.toml) read
through the runtime's trust check, or the built-in policy when there is no
file. A policy the runtime would refuse exits 1 with the runtime's message
(after its text, when the file could be read but does not parse).`,
	Flags: []cli.Flag{configFlag},
	Action: func(c *cli.Context) error {
		if c.NArg() > 0 {
			return cli.Exit("policy show takes no operands (--config FILE names a policy); see capshim policy show --help", 2)
		}
		flag, err := absFlag(c.String("config"))
		if err != nil {
			return cli.Exit(err, 2)
		}
		loc := policy.Locate(flag, argv0(c), false, os.Getenv)
		pol, text, err := loc.Read()
		w := c.App.Writer
		if err != nil {
			if text != nil {
				fmt.Fprintf(w, "# %s (%s), which the runtime refuses:\n", safetext.Escape(loc.Path), loc.Why)
				w.Write(text)
			}
			problem(c, err)
			return cli.Exit("", 1)
		}
		if text == nil {
			text = capshim.DefaultPolicy
		}
		fmt.Fprintf(w, "# %s\n", safetext.Escape(loc.Describe(pol)))
		w.Write(text)
		return nil
	},
}
