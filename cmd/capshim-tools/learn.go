package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/learn"
)

// stateDirFlag names the directory of learned profiles and container
// records.
var stateDirFlag = &cli.StringFlag{
	Name:  "state-dir",
	Usage: "state `DIR` holding learned profiles and container records (default: the policy's state_dir, else " + learn.DefaultDir + ")",
}

// stateDir is --state-dir, else the state directory of the policy capshim
// finds as the runtime does (so the commands read what the runtime wrote).
func stateDir(c *cli.Context) string {
	if d := c.String("state-dir"); d != "" {
		return d
	}
	if pol, _, err := cliPolicy(c); err == nil {
		return pol.States()
	}
	return learn.DefaultDir
}

var learnCommand = &cli.Command{
	Name:  "learn",
	Usage: "list, show, minimize and forget what capshim learned about workloads",
	Description: `A container that a policy rule learns (mode = "learn", or learn = true and the
container asks with the annotation capshim.io/learn=NAME or the environment
variable CAPSHIM_LEARN=NAME) keeps what the engine granted, and capshim records
which capabilities its processes used. At delete, the record is merged into the
profile NAME. "capshim learn show NAME" turns a profile into a policy rule.
"capshim learn minimize NAME --bundle DIR" runs the workload with fewer
capabilities until every one left is needed, and the rule then keeps those.`,
	Subcommands: []*cli.Command{
		{
			Name:   "list",
			Usage:  "list the learned profiles",
			Flags:  []cli.Flag{stateDirFlag, configFlag},
			Action: learnList,
		},
		{
			Name:      "show",
			Usage:     "print a profile as a policy rule (toml) or as recorded (json)",
			ArgsUsage: "NAME",
			Flags: []cli.Flag{stateDirFlag, configFlag, &cli.StringFlag{
				Name: "format", Value: "toml", Usage: "`toml` (a [[rule]] block with its evidence) or json",
			}},
			Action: learnShow,
		},
		learnMinimizeCommand,
		{
			Name:      "forget",
			Usage:     "remove a profile",
			ArgsUsage: "NAME",
			Flags:     []cli.Flag{stateDirFlag, configFlag},
			Action:    learnForget,
		},
	},
}

func learnStore(c *cli.Context) *learn.Store { return &learn.Store{Dir: stateDir(c)} }

// learnName reads the one NAME operand.
func learnName(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", cli.Exit(fmt.Sprintf("%s takes one profile NAME (capshim learn list shows them)", c.Command.FullName()), 2)
	}
	return c.Args().First(), nil
}

func learnList(c *cli.Context) error {
	profiles, err := learnStore(c).Profiles()
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	w := c.App.Writer
	if len(profiles) == 0 {
		fmt.Fprintf(w, "no learned profiles in %s\n", stateDir(c))
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCONTAINERS\tRUNS\tLAST SEEN\tCOMPLETE\tUSED")
	for _, p := range profiles {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%v\t%s\n", p.Name, p.Containers, p.Runs,
			p.LastSeen.UTC().Format(time.RFC3339), p.Complete, p.UsedSet())
	}
	return tw.Flush()
}

func learnShow(c *cli.Context) error {
	name, err := learnName(c)
	if err != nil {
		return err
	}
	p, err := learnStore(c).Profile(name)
	if errors.Is(err, learn.ErrNotFound) {
		return cli.Exit(err.Error(), 1)
	}
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	switch f := strings.ToLower(c.String("format")); f {
	case "toml":
		fmt.Fprint(c.App.Writer, p.Rule())
	case "json":
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	default:
		return cli.Exit(fmt.Sprintf("--format %q: use toml or json", f), 2)
	}
	return nil
}

func learnForget(c *cli.Context) error {
	name, err := learnName(c)
	if err != nil {
		return err
	}
	if err := learnStore(c).Forget(name); errors.Is(err, learn.ErrNotFound) {
		return cli.Exit(err.Error(), 1)
	} else if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	fmt.Fprintf(c.App.Writer, "forgot profile %s\n", name)
	return nil
}
