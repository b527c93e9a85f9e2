package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/policy"
	"github.com/capshim/capshim/spec"
)

var rewriteCommand = &cli.Command{
	Name:      "rewrite",
	Usage:     "reduce the capabilities of a config.json or process.json to the policy",
	ArgsUsage: "FILE|-",
	Description: `Prints FILE with its five capability sets reduced to the policy's target;
every other byte stays as it was. With --in-place FILE is replaced
atomically; with -o the result goes to OUT. --diff shows the sets before
and after instead of (or, with --in-place/-o, as well as) the spec.
The result is what capshim writes in enforce mode, whatever the policy's mode.`,
	Flags: []cli.Flag{
		configFlag,
		builtinFlag,
		&cli.BoolFlag{Name: "in-place", Aliases: []string{"i"}, Usage: "replace FILE with the result"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the result to `OUT`"},
		&cli.BoolFlag{Name: "diff", Usage: "show the five sets before and after"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return cli.Exit("rewrite takes one FILE (or - for stdin); see capshim rewrite --help", 2)
		}
		name := c.Args().First()
		inPlace, out := c.Bool("in-place"), c.String("output")
		if inPlace && out != "" {
			return cli.Exit("--in-place and -o exclude each other", 2)
		}
		if inPlace && name == "-" {
			return cli.Exit("--in-place needs a file, not stdin", 2)
		}
		pol, loc, err := cliPolicy(c)
		if err != nil {
			return cli.Exit(err, 2)
		}
		// stdout may be the spec itself: the policy is named on stderr.
		fmt.Fprintf(c.App.ErrWriter, "capshim: policy %s\n", safetext.Escape(loc.Describe(pol)))
		si, err := readSpec(name, c.App.Reader, pol)
		if err != nil {
			return cli.Exit(err, 2)
		}
		w := c.App.Writer
		switch {
		case inPlace:
			if si.outcome.Changed(si.data) {
				if err := si.file.Replace(si.outcome.Out); err != nil {
					return cli.Exit(fmt.Errorf("%s: %w", name, err), 2)
				}
			}
		case out != "":
			if err := writeOutput(out, si.outcome.Out); err != nil {
				return cli.Exit(fmt.Errorf("writing %s: %w", out, err), 2)
			}
		case !c.Bool("diff"):
			_, err := w.Write(si.outcome.Out)
			return err
		}
		if c.Bool("diff") {
			writeDiff(w, si, pol, loc)
		}
		return nil
	},
}

// writeDiff shows the five sets before and after, one capability a line:
// "-" dropped, " " kept.
func writeDiff(w io.Writer, si *specInput, pol *policy.Policy, loc policy.Location) {
	e := safetext.Escape
	fmt.Fprintf(w, "--- %s\n+++ %s (reduced by capshim; policy: %s)\n", e(si.name), e(si.name), e(loc.Describe(pol)))
	d := &si.outcome.Decision
	fmt.Fprintf(w, "target: %s\n", d.Target)
	if d.Requested != 0 || len(d.Unknown) > 0 || len(d.Oversized) > 0 {
		fmt.Fprintf(w, "requested: %s", d.Requested)
		if len(d.Unknown) > 0 {
			fmt.Fprintf(w, " (not capabilities: %s)", strings.Join(safetext.Names(d.Unknown), ","))
		}
		for _, o := range d.Oversized {
			fmt.Fprintf(w, " (%s)", o)
		}
		fmt.Fprintf(w, "; granted: %s; rules: %s\n", d.Granted, e(strings.Join(d.Rules, ",")))
	}
	if pol.Mode == policy.Audit {
		fmt.Fprintf(w, "note: the policy is in audit mode: in runtime mode capshim would only log this\n")
	}
	defer fmt.Fprintf(w, "everything outside the capability sets: byte for byte unchanged (%d bytes before, %d after)\n", len(si.data), len(si.outcome.Out))
	for s := spec.Bounding; s < spec.NumSets; s++ {
		names, present := si.doc.Names(s)
		if !present {
			fmt.Fprintf(w, "@@ %s: absent @@\n", s)
			continue
		}
		fmt.Fprintf(w, "@@ %s: %d -> %d @@\n", s, len(names), si.outcome.Sets[s].Len())
		var seen capability.Set
		for _, n := range names {
			c, ok := capability.Exact(n)
			switch {
			case !ok:
				fmt.Fprintf(w, "-%s (not a capability name)\n", safetext.Name(n))
			case seen.Has(c):
				fmt.Fprintf(w, "-%s (duplicate)\n", n)
			case si.outcome.Sets[s].Has(c):
				fmt.Fprintf(w, " %s\n", n)
			default:
				fmt.Fprintf(w, "-%s\n", n)
			}
			if ok {
				seen = seen.Add(c)
			}
		}
	}
}
