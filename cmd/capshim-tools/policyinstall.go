package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/install"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/policy"
)

// maxPolicyFile bounds what policy install reads; the runtime refuses a
// policy above 1 MiB as well.
const maxPolicyFile = 1 << 20

var policyInstallCommand = &cli.Command{
	Name:      "install",
	Usage:     "check a policy, then make it the one in force",
	ArgsUsage: "FILE",
	Description: `Checks FILE as "capshim policy check" does (syntax, keys, capability names,
and the runtime it names or runc on PATH) and, only when it passes, replaces
the policy in force with it atomically: the next runtime call reads the new
policy. The policy it replaces is kept as PATH.capshim-previous; "capshim
policy install PATH.capshim-previous" puts it back. When the check fails,
nothing is changed.

The policy in force is the file capshim finds as the runtime does (the name
capshim is called as, $CAPSHIM_CONFIG in this environment, else
/etc/capshim/shim.toml); --to names another. The new file is owned by root
(run as root) and not writable by group or others; it is loaded once more
from its place, as the runtime will load it, and taken back if that fails.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "to", Usage: "install the policy at `PATH` (default: the policy in force)"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return cli.Exit("policy install takes one FILE; see capshim policy install --help", 2)
		}
		src, err := absFlag(c.Args().First())
		if err != nil {
			return cli.Exit(err, 2)
		}
		to, err := absFlag(c.String("to"))
		if err != nil {
			return cli.Exit(err, 2)
		}
		dest := policy.Locate(to, argv0(c), false, os.Getenv)
		if to != "" {
			dest.Why = "--to"
		}
		data, err := readPolicyFile(src)
		if err != nil {
			return cli.Exit(err, 2)
		}
		w := c.App.Writer
		unchanged := func() error {
			fmt.Fprintf(w, "nothing changed: %s is as it was\n", safetext.Escape(dest.Path))
			return cli.Exit("", 1)
		}
		pol, err := policy.Parse(data, src)
		if err != nil {
			fmt.Fprintf(w, "policy: %s: refused\n", safetext.Escape(src))
			problem(c, err)
			return unchanged()
		}
		fmt.Fprintf(w, "policy: %s: ok: %s\n", safetext.Escape(src), policySummary(pol))
		policyWarnings(w, pol)
		rt, err := checkRuntime(w, pol)
		if err != nil {
			problem(c, err)
			return unchanged()
		}
		rt.File.Close()

		verify := func() error {
			_, err := policy.Locate(dest.Path, argv0(c), false, os.Getenv).Load()
			return err
		}
		ch, err := install.ReplacePolicy(dest.Path, data, verify)
		if err != nil {
			problem(c, err)
			return unchanged()
		}
		where := fmt.Sprintf("%s (%s)", safetext.Escape(dest.Path), dest.Why)
		switch {
		case ch.Unchanged:
			fmt.Fprintf(w, "%s already holds this policy: nothing to change\n", where)
		case ch.Existed:
			fmt.Fprintf(w, "installed %s; the policy it replaced is kept as %s; the next runtime call reads the new one\n", where, safetext.Escape(ch.Previous))
		default:
			fmt.Fprintf(w, "installed %s (there was no policy there); the next runtime call reads it\n", where)
		}
		if uid := os.Geteuid(); uid != 0 && !ch.Unchanged {
			fmt.Fprintf(w, "note: the policy is owned by uid %d: capshim run by an engine as root trusts only files owned by root\n", uid)
		}
		return nil
	},
}

// readPolicyFile reads the policy to install.
func readPolicyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the policy to install: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFile+1))
	if err != nil {
		return nil, fmt.Errorf("reading the policy to install: %w", err)
	}
	if len(data) > maxPolicyFile {
		return nil, errors.New(path + ": larger than 1048576 bytes; that is not a policy file")
	}
	return data, nil
}
