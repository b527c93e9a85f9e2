package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/learn"
)

var explainCommand = &cli.Command{
	Name:      "explain",
	Usage:     "say what capshim decided for a container, and which dropped capabilities it tried to use",
	ArgsUsage: "ID|NAME",
	Description: `For a running or recently deleted container (by id prefix, or by the name the
engine gave it): what the engine granted, what capshim kept and dropped and why
(which rules, which requests), and which of the dropped capabilities the
container's processes tried to use, with the rule that would grant them.`,
	Flags: []cli.Flag{
		stateDirFlag,
		configFlag,
		&cli.StringFlag{Name: "run-dir", Value: learn.RunDir, Usage: "`DIR` of running containers' records", Hidden: true},
		&cli.StringFlag{Name: "format", Value: "text", Usage: "`text` or json"},
	},
	Action: explainAction,
}

func explainAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("explain takes one container ID (a prefix is enough) or NAME", 2)
	}
	r := &learn.Records{Run: c.String("run-dir"), Store: &learn.Store{Dir: stateDir(c)}}
	found, err := r.Find(c.Args().First())
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if len(found) == 0 {
		return cli.Exit(fmt.Sprintf("no container %q in capshim's records (running ones in %s, recently deleted ones in %s/recent)",
			c.Args().First(), r.Run, r.Store.Dir), 1)
	}
	switch c.String("format") {
	case "json":
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(found)
	case "text":
		for i, rec := range found {
			if i > 0 {
				fmt.Fprintln(c.App.Writer)
			}
			explainText(c.App.Writer, rec)
		}
		return nil
	default:
		return cli.Exit(fmt.Sprintf("--format %q: use text or json", c.String("format")), 2)
	}
}

// explainText writes one record for a person. Everything in it that a
// container controls is escaped.
func explainText(w io.Writer, rec *learn.Container) {
	e := safetext.Escape
	state := "running"
	if !rec.Deleted.IsZero() {
		state = "deleted " + rec.Deleted.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "container %s (%s)\n", e(rec.ID), state)
	if n := rec.Name(); n != "" {
		fmt.Fprintf(w, "  name:      %s\n", e(n))
	}
	for _, k := range slices.Sorted(maps.Keys(rec.Engine)) {
		fmt.Fprintf(w, "  %-10s %s\n", e(strings.TrimPrefix(k, "io.kubernetes.cri."))+":", e(rec.Engine[k]))
	}
	fmt.Fprintf(w, "  policy:    %s (mode %s)\n", e(rec.Policy), rec.Mode)
	fmt.Fprintf(w, "  engine granted (bounding): %s\n", listOrNone(rec.EngineSets["bounding"]))
	fmt.Fprintf(w, "  kept (bounding):           %s\n", listOrNone(rec.Sets["bounding"]))
	fmt.Fprintf(w, "  dropped:                   %s\n", listOrNone(rec.Dropped))
	if len(rec.Rules) > 0 {
		fmt.Fprintf(w, "  rules matched:             %s\n", e(strings.Join(rec.Rules, ", ")))
	}
	if len(rec.Requested) > 0 {
		fmt.Fprintf(w, "  requested: %s; granted: %s; denied: %s\n", listOrNone(rec.Requested), listOrNone(rec.Granted), listOrNone(rec.Denied))
	}
	if rec.Profile != "" {
		fmt.Fprintf(w, "  learning into profile %s\n", e(rec.Profile))
	}
	if rec.LearnDenied != "" {
		fmt.Fprintf(w, "  learn request %q denied: no matching rule allows learning\n", e(rec.LearnDenied))
	}
	switch {
	case !rec.Trace:
		fmt.Fprintf(w, "  capability checks: not recorded (%s)\n", e(rec.TraceError))
	case rec.Observed == nil:
		fmt.Fprintf(w, "  capability checks: recorded until the container is deleted\n")
	default:
		o := rec.Observed
		fmt.Fprintf(w, "  capability checks used:    %s\n", countText(o.Used))
		fmt.Fprintf(w, "  capability checks refused: %s\n", countText(o.Refused))
		for _, exe := range slices.Sorted(maps.Keys(o.FileCaps)) {
			fmt.Fprintf(w, "  file capabilities:         %s %s\n", e(exe), listOrNone(o.FileCaps[exe]))
		}
		if !o.Complete {
			fmt.Fprintf(w, "  (incomplete: some checks may be missing)\n")
		}
		missing := MissingDropped(rec)
		for _, c := range missing.Caps() {
			fmt.Fprintf(w, "  refused %s (%d checks), which the policy dropped; to grant it, add to a rule that matches this container:\n      capabilities = [%q]  (the container then asks with the annotation capshim.io/capabilities=%s or CAPSHIM_CAPABILITIES=%s)\n",
				c, o.Refused[c.String()], c.String(), c.String(), c.String())
		}
		dropped, _ := capability.ParseList(rec.Dropped)
		for _, exe := range slices.Sorted(maps.Keys(o.FileCaps)) {
			demanded, _ := capability.ParseList(o.FileCaps[exe])
			if miss := demanded & dropped; rec.Mode != "learn" && miss != 0 {
				q := make([]string, 0, len(miss.Names()))
				for _, n := range miss.Names() {
					q = append(q, fmt.Sprintf("%q", n))
				}
				fmt.Fprintf(w, "  %s carries file capabilities %s, which the policy dropped: the kernel refuses to execute it (EPERM, without a capability check); to grant them, add to a rule that matches this container:\n      capabilities = [%s]  (the container then asks with the annotation capshim.io/capabilities=%s or CAPSHIM_CAPABILITIES=%s)\n",
					e(exe), miss, strings.Join(q, ", "), strings.Join(miss.Names(), ","), strings.Join(miss.Names(), ","))
			}
		}
	}
}

// MissingDropped is what the container was refused among the capabilities
// the engine granted and capshim dropped: the ones the policy cost it.
func MissingDropped(rec *learn.Container) capability.Set {
	if rec.Observed == nil {
		return 0
	}
	dropped, _ := capability.ParseList(rec.Dropped)
	return rec.Observed.RefusedSet() & dropped
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return safetext.Escape(strings.Join(names, ","))
}

func countText(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s (%d)", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
