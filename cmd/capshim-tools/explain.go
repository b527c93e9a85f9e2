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
engine gave it: NAME, POD/NAME or NAMESPACE/POD/NAME for Kubernetes, POD or
NAMESPACE/POD for a pod's sandbox; a name or prefix that fits more than one
container lists them): what the engine granted, what capshim kept and dropped and why
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
	found, err = oneContainer(c.Args().First(), found)
	if err != nil {
		return err
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

// oneContainer narrows the records found for query to one container (its
// records: one while it runs, one per deletion if the engine reused the
// id). An exact id wins; a name or id prefix that fits more than one
// container is an error that lists them, newest first, so that the user
// picks one by its id or its namespace/pod/name.
func oneContainer(query string, found []*learn.Container) ([]*learn.Container, error) {
	type key struct{ root, id string }
	var exact []*learn.Container
	var order []key
	by := map[key][]*learn.Container{}
	for _, rec := range found {
		if rec.ID == query {
			exact = append(exact, rec)
		}
		k := key{rec.Root, rec.ID}
		if by[k] == nil {
			order = append(order, k)
		}
		by[k] = append(by[k], rec)
	}
	if len(exact) > 0 {
		return exact, nil
	}
	if len(order) == 1 {
		return found, nil
	}
	slices.SortStableFunc(order, func(a, b key) int { return by[b][0].Created.Compare(by[a][0].Created) })
	var b strings.Builder
	fmt.Fprintf(&b, "%q fits %d containers; name one by its id (a longer prefix) or by namespace/pod/name:", query, len(order))
	for i, k := range order {
		if i == maxCandidates {
			fmt.Fprintf(&b, "\n  ...(%d more)", len(order)-i)
			break
		}
		rec := by[k][0]
		state := "running"
		if !rec.Deleted.IsZero() {
			state = "deleted " + rec.Deleted.UTC().Format(time.RFC3339)
		}
		name := rec.About().Full()
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(&b, "\n  %s  %s  (%s)", safetext.Escape(rec.ID), safetext.Escape(name), state)
	}
	return nil, cli.Exit(b.String(), 1)
}

// maxCandidates bounds the containers an ambiguous query lists.
const maxCandidates = 20

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
	if a := rec.About(); a.Engine != "" {
		fmt.Fprintf(w, "  engine:    %s\n", e(a.Engine))
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
	if len(rec.EngineRequest) > 0 {
		fmt.Fprintf(w, "  %s asked for %s: %s\n", e(rec.EngineFlag), listOrNone(rec.EngineRequest), engineOutcome(rec))
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

// engineOutcome says what became of the engine flag's request.
func engineOutcome(rec *learn.Container) string {
	asked, _ := capability.ParseList(rec.EngineRequest)
	denied, _ := capability.ParseList(rec.Denied)
	var parts []string
	if g := asked &^ denied; g != 0 {
		parts = append(parts, "granted "+g.String())
	}
	if n := asked & denied; n != 0 {
		parts = append(parts, fmt.Sprintf("denied %s (no matching rule allows it; to grant it, add %s to the capabilities of a rule that matches this container)", n, quoted(n)))
	}
	return strings.Join(parts, ", ")
}

// quoted writes a set as a TOML list's items: "CAP_A", "CAP_B".
func quoted(s capability.Set) string {
	var q []string
	for _, n := range s.Names() {
		q = append(q, fmt.Sprintf("%q", n))
	}
	return strings.Join(q, ", ")
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
