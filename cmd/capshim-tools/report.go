package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/internal/decisionlog"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/learn"
)

var reportCommand = &cli.Command{
	Name:  "report",
	Usage: "sum up the decision log: per image, namespace and name, what capshim dropped, granted and denied",
	Description: `Reads the decision log (the policy's log, rotated files included), the records
of running and recently deleted containers and the learned profiles, and prints,
per image / namespace / container name as the engine named them: how many
containers were seen, which capabilities were dropped from them, which requests
were granted (by which rules) and denied, which dropped capabilities their
processes were refused (as capshim explain shows them), and the profiles learned
from them. Docker 20.10 tells the runtime no name or image: its containers are
summed up as one group per engine.

--since takes a duration (90m, 24h, 7d) or a time (2026-12-01, 2026-12-01T10:00:00Z).`,
	Flags: []cli.Flag{
		configFlag,
		stateDirFlag,
		&cli.StringFlag{Name: "log", Usage: "decision log `FILE` (default: the policy's log)"},
		&cli.StringFlag{Name: "since", Usage: "only what happened since `D` (a duration back from now, or a time)"},
		&cli.StringFlag{Name: "format", Value: "text", Usage: "`text` or json"},
		&cli.StringFlag{Name: "run-dir", Value: learn.RunDir, Usage: "`DIR` of running containers' records", Hidden: true},
	},
	Action: reportAction,
}

// reportEntry is what the report reads of one decision log line.
type reportEntry struct {
	Kind      string              `json:"kind"`
	Level     string              `json:"level"`
	Time      time.Time           `json:"time"`
	Container string              `json:"container"`
	Command   string              `json:"command"`
	Mode      string              `json:"mode"`
	Dropped   map[string][]string `json:"dropped"`
	Granted   []string            `json:"granted"`
	Rules     []string            `json:"rules"`
	Denied    []string            `json:"denied"`
	Refused   string              `json:"refused"`
	Checks    uint64              `json:"checks"`
	Profile   string              `json:"profile"`
	learn.About
}

// groupKey is what a report group stands for.
type groupKey struct {
	Engine, Namespace, Name, Image string
	Sandbox                        bool
}

// reportGroup sums up the containers of one image / namespace / name.
type reportGroup struct {
	Engine    string `json:"engine,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	Image     string `json:"image,omitempty"`
	Sandbox   bool   `json:"sandbox,omitempty"`

	Containers int       `json:"containers"`
	Execs      int       `json:"execs,omitempty"`
	Audit      int       `json:"audit,omitempty"` // decisions in audit mode: dropped is "would drop"
	FirstSeen  time.Time `json:"first_seen,omitzero"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	// Recent are the last container ids seen (at most reportIDs).
	Recent []string `json:"recent"`
	// Dropped counts, per capability, the containers it was dropped from.
	Dropped map[string]int `json:"dropped"`
	// Granted counts decisions per granted capability and the rules that
	// granted it ("CAP_CHOWN by web"); Denied per capability asked for
	// and not granted.
	Granted map[string]int `json:"granted"`
	Denied  map[string]int `json:"denied"`
	// Refused is, per dropped capability the processes were refused, the
	// containers and the checks.
	Refused  map[string]*refusedCount `json:"refused"`
	Profiles []string                 `json:"profiles"`

	ids        map[string]bool
	dropped    map[string]map[string]bool // capability → container ids
	refusedIDs map[string]bool            // id + capability
}

type refusedCount struct {
	Containers int    `json:"containers"`
	Checks     uint64 `json:"checks"`
}

// reportIDs bounds the container ids a group lists.
const reportIDs = 8

// reportOut is the whole report.
type reportOut struct {
	Log      string         `json:"log"`
	Files    int            `json:"files"`
	Entries  int            `json:"entries"`
	Skipped  int            `json:"skipped,omitempty"` // lines that are not capshim's entries
	Since    time.Time      `json:"since,omitzero"`
	From     time.Time      `json:"from,omitzero"`
	To       time.Time      `json:"to,omitzero"`
	StateDir string         `json:"state_dir"`
	Records  int            `json:"records"`
	Groups   []*reportGroup `json:"groups"`
	Profiles []reportProf   `json:"profiles"`
	Warnings []string       `json:"warnings,omitempty"`
}

type reportProf struct {
	Name       string    `json:"name"`
	Containers int       `json:"containers"`
	Runs       int       `json:"runs"`
	LastSeen   time.Time `json:"last_seen"`
	Used       []string  `json:"used"`
	Verified   []string  `json:"verified,omitempty"`
}

func reportAction(c *cli.Context) error {
	if c.NArg() != 0 {
		return cli.Exit("report takes no operands (--since D, --format text|json)", 2)
	}
	format := c.String("format")
	if format != "text" && format != "json" {
		return cli.Exit(fmt.Sprintf("--format %q: use text or json", format), 2)
	}
	since, err := parseSince(c.String("since"), time.Now())
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	logPath := c.String("log")
	if logPath == "" {
		pol, _, err := cliPolicy(c)
		if err != nil {
			return cli.Exit(err, 2)
		}
		logPath = pol.Log
	}
	rep := &reportOut{Log: logPath, Since: since, StateDir: stateDir(c)}
	groups := map[groupKey]*reportGroup{}
	if logPath == "" {
		rep.Warnings = append(rep.Warnings, "the policy keeps no decision log (log = \"\"): only container records and profiles are read")
	} else if err := readReportLog(rep, groups, logPath); err != nil {
		return cli.Exit(err, 2)
	}
	r := &learn.Records{Run: c.String("run-dir"), Store: &learn.Store{Dir: rep.StateDir}}
	recs, err := r.Find("")
	if err != nil {
		rep.Warnings = append(rep.Warnings, "container records: "+err.Error())
	}
	for _, rec := range recs {
		if !since.IsZero() && rec.Created.Before(since) && (rec.Deleted.IsZero() || rec.Deleted.Before(since)) {
			continue
		}
		rep.Records++
		addRecord(groups, rec)
	}
	profiles, err := r.Store.Profiles()
	if err != nil {
		rep.Warnings = append(rep.Warnings, err.Error())
	}
	for _, p := range profiles {
		if !since.IsZero() && p.LastSeen.Before(since) {
			continue
		}
		rp := reportProf{Name: p.Name, Containers: p.Containers, Runs: p.Runs, LastSeen: p.LastSeen, Used: p.UsedSet().Names()}
		if p.Verified != nil {
			rp.Verified = p.Verified.Needed
		}
		rep.Profiles = append(rep.Profiles, rp)
	}
	rep.Groups = slices.SortedFunc(maps.Values(groups), func(a, b *reportGroup) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Image, b.Image),
			cmp.Compare(a.Engine, b.Engine), cmp.Compare(fmt.Sprint(a.Sandbox), fmt.Sprint(b.Sandbox)))
	})
	for _, g := range rep.Groups {
		slices.Sort(g.Profiles)
		g.Profiles = slices.Compact(g.Profiles)
	}
	if format == "json" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.App.Writer, "%s\n", safetext.JSON(data))
		return err
	}
	writeReportText(c.App.Writer, rep)
	return nil
}

// parseSince reads --since: a duration back from now (Go's, or whole
// days as "7d"), an RFC 3339 time or a date (UTC).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if m := regexp.MustCompile(`^([0-9]+)d$`).FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err == nil && n <= 100000 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: give a duration back from now (90m, 24h, 7d) or a time (2026-12-01, 2026-12-01T10:00:00Z)", s)
}

// readReportLog reads every file of the decision log, oldest first.
func readReportLog(rep *reportOut, groups map[groupKey]*reportGroup, path string) error {
	l := &decisionlog.Log{Path: path}
	files, err := l.Open()
	if err != nil {
		if os.IsPermission(err) {
			return fmt.Errorf("%w (the decision log is root's: run capshim report as root)", err)
		}
		return err
	}
	if len(files) == 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("no decision log at %s yet", path))
	}
	rep.Files = len(files)
	for _, f := range files {
		err := readReportFile(rep, groups, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("reading the decision log %s: %w", f.Name(), err)
		}
	}
	return nil
}

func readReportFile(rep *reportOut, groups map[groupKey]*reportGroup, r io.Reader) error {
	// A file is at most the log's size bound, so one line of it is too.
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			readReportLine(rep, groups, line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func readReportLine(rep *reportOut, groups map[groupKey]*reportGroup, line []byte) {
	var e reportEntry
	if json.Unmarshal(line, &e) != nil || e.Time.IsZero() {
		rep.Skipped++
		return
	}
	if !rep.Since.IsZero() && e.Time.Before(rep.Since) {
		return
	}
	rep.Entries++
	if rep.From.IsZero() || e.Time.Before(rep.From) {
		rep.From = e.Time
	}
	if e.Time.After(rep.To) {
		rep.To = e.Time
	}
	addEntry(groups, &e)
}

// group returns the group of a container, made on first use. Containers
// the engine does not name (Docker 20.10, runc by hand) share one group
// per engine and image.
func group(groups map[groupKey]*reportGroup, a learn.About) *reportGroup {
	k := groupKey{Engine: a.Engine, Namespace: a.Namespace, Name: a.Name, Image: a.Image, Sandbox: a.Sandbox}
	g := groups[k]
	if g == nil {
		g = &reportGroup{Engine: k.Engine, Namespace: k.Namespace, Name: k.Name, Image: k.Image, Sandbox: k.Sandbox,
			Dropped: map[string]int{}, Granted: map[string]int{}, Denied: map[string]int{}, Refused: map[string]*refusedCount{},
			Recent: []string{}, Profiles: []string{},
			ids: map[string]bool{}, dropped: map[string]map[string]bool{}, refusedIDs: map[string]bool{}}
		groups[k] = g
	}
	return g
}

// seen counts a container once in its group.
func (g *reportGroup) seen(id string, at time.Time) {
	if !at.IsZero() {
		if g.FirstSeen.IsZero() || at.Before(g.FirstSeen) {
			g.FirstSeen = at
		}
		if at.After(g.LastSeen) {
			g.LastSeen = at
		}
	}
	if id == "" || g.ids[id] {
		return
	}
	g.ids[id] = true
	g.Containers++
	g.Recent = append(g.Recent, id)
	if len(g.Recent) > reportIDs {
		g.Recent = g.Recent[1:]
	}
}

func (g *reportGroup) drop(id string, names []string) {
	for _, n := range names {
		if g.dropped[n] == nil {
			g.dropped[n] = map[string]bool{}
		}
		if !g.dropped[n][id] {
			g.dropped[n][id] = true
			g.Dropped[n]++
		}
	}
}

func (g *reportGroup) refuse(id, capName string, checks uint64) {
	if g.refusedIDs[id+"\x00"+capName] {
		return
	}
	g.refusedIDs[id+"\x00"+capName] = true
	rc := g.Refused[capName]
	if rc == nil {
		rc = &refusedCount{}
		g.Refused[capName] = rc
	}
	rc.Containers++
	rc.Checks += checks
}

// addEntry adds one decision log entry to its group.
func addEntry(groups map[groupKey]*reportGroup, e *reportEntry) {
	g := group(groups, e.About)
	switch {
	case e.Kind == "decision":
		if e.Command == "exec" {
			g.Execs++
			g.seen("", e.Time)
		} else {
			g.seen(e.Container, e.Time)
		}
		if e.Mode == "audit" {
			g.Audit++
		}
		for _, names := range e.Dropped {
			g.drop(e.Container, names)
		}
		if len(e.Granted) > 0 {
			by := ""
			if len(e.Rules) > 0 {
				by = " by " + strings.Join(e.Rules, ",")
			}
			for _, n := range e.Granted {
				g.Granted[n+by]++
			}
		}
		for _, n := range e.Denied {
			g.Denied[n]++
		}
	default:
		// A warning or finding about a container (at start or delete): it
		// counts the container as seen even when its decision is in a
		// file rotated away.
		g.seen(e.Container, e.Time)
		if e.Refused != "" {
			g.refuse(e.Container, e.Refused, e.Checks)
		}
		if e.Profile != "" {
			g.Profiles = append(g.Profiles, e.Profile)
		}
	}
}

// addRecord adds what a container record knows: its refused checks among
// the dropped capabilities (explain's finding) and its profile.
func addRecord(groups map[groupKey]*reportGroup, rec *learn.Container) {
	g := group(groups, rec.About())
	id := safetext.Truncate(rec.ID, 128)
	if !g.ids[id] {
		// Seen by the records alone (a log turned off, or rotated away).
		g.seen(id, rec.Created)
		g.drop(id, rec.Dropped)
	}
	for _, c := range MissingDropped(rec).Caps() {
		g.refuse(id, c.String(), rec.Observed.Refused[c.String()])
	}
	if rec.Profile != "" {
		g.Profiles = append(g.Profiles, rec.Profile)
	}
}

// writeReportText writes the report for a person; everything from the
// log or the records is escaped.
func writeReportText(w io.Writer, rep *reportOut) {
	e := safetext.Escape
	if rep.Log != "" {
		fmt.Fprintf(w, "decision log: %s (%d files, %d entries", e(rep.Log), rep.Files, rep.Entries)
		if rep.Entries > 0 {
			fmt.Fprintf(w, ", %s to %s", rep.From.UTC().Format(time.RFC3339), rep.To.UTC().Format(time.RFC3339))
		}
		if rep.Skipped > 0 {
			fmt.Fprintf(w, "; %d lines skipped that are not capshim's entries", rep.Skipped)
		}
		fmt.Fprintln(w, ")")
	}
	if !rep.Since.IsZero() {
		fmt.Fprintf(w, "since:        %s\n", rep.Since.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "state:        %s (%d container records, %d profiles)\n", e(rep.StateDir), rep.Records, len(rep.Profiles))
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "note: %s\n", e(warn))
	}
	if len(rep.Groups) == 0 {
		fmt.Fprintln(w, "\nno containers seen")
	}
	for _, g := range rep.Groups {
		fmt.Fprintf(w, "\n%s\n", groupTitle(g))
		fmt.Fprintf(w, "  containers:     %d", g.Containers)
		if g.Execs > 0 {
			fmt.Fprintf(w, " (and %d execs)", g.Execs)
		}
		if !g.LastSeen.IsZero() {
			fmt.Fprintf(w, ", %s to %s", g.FirstSeen.UTC().Format(time.RFC3339), g.LastSeen.UTC().Format(time.RFC3339))
		}
		fmt.Fprintln(w)
		if len(g.Recent) > 0 {
			ids := make([]string, len(g.Recent))
			for i, id := range g.Recent {
				ids[i] = e(shortID(id))
			}
			fmt.Fprintf(w, "  last ids:       %s\n", strings.Join(ids, " "))
		}
		label := "dropped:       "
		if g.Audit > 0 {
			label = fmt.Sprintf("dropped (%d in audit: would drop):", g.Audit)
		}
		fmt.Fprintf(w, "  %s %s\n", label, countList(g.Dropped, true))
		fmt.Fprintf(w, "  granted:        %s\n", countList(g.Granted, false))
		fmt.Fprintf(w, "  denied:         %s\n", countList(g.Denied, false))
		if len(g.Refused) == 0 {
			fmt.Fprintf(w, "  refused checks: none recorded\n")
		} else {
			var parts []string
			for _, k := range sortedCaps(slices.Collect(maps.Keys(g.Refused))) {
				rc := g.Refused[k]
				parts = append(parts, fmt.Sprintf("%s (%d containers, %d checks)", e(k), rc.Containers, rc.Checks))
			}
			fmt.Fprintf(w, "  refused checks: %s (capshim explain NAME tells the rule that grants it)\n", strings.Join(parts, ", "))
		}
		if len(g.Profiles) > 0 {
			fmt.Fprintf(w, "  profiles:       %s\n", e(strings.Join(g.Profiles, ", ")))
		}
	}
	if len(rep.Profiles) > 0 {
		fmt.Fprintf(w, "\nlearned profiles (capshim learn show NAME prints the rule)\n")
		for _, p := range rep.Profiles {
			fmt.Fprintf(w, "  %s: %d containers, %d runs, last %s, used %s", e(p.Name), p.Containers, p.Runs,
				p.LastSeen.UTC().Format(time.RFC3339), listOrNone(p.Used))
			if p.Verified != nil {
				fmt.Fprintf(w, ", needs %s (verified)", listOrNone(p.Verified))
			}
			fmt.Fprintln(w)
		}
	}
}

// groupTitle names a group as people know it.
func groupTitle(g *reportGroup) string {
	e := safetext.Escape
	var parts []string
	if g.Image != "" {
		parts = append(parts, "image "+e(g.Image))
	}
	if g.Namespace != "" {
		parts = append(parts, "namespace "+e(g.Namespace))
	}
	switch {
	case g.Name != "":
		parts = append(parts, "name "+e(g.Name))
	case g.Sandbox:
		parts = append(parts, "pod sandboxes")
	}
	engine := g.Engine
	if engine == "" {
		engine = "engine unknown"
	}
	if len(parts) == 0 {
		return fmt.Sprintf("containers the engine gives no name (%s)", e(engine))
	}
	return fmt.Sprintf("%s (%s)", strings.Join(parts, ", "), e(engine))
}

// countList renders counts, capabilities in their order; caps marks
// that the keys are capability names (others sort after them).
func countList(m map[string]int, caps bool) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Collect(maps.Keys(m))
	if caps {
		keys = sortedCaps(keys)
	} else {
		slices.Sort(keys)
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s (%d)", safetext.Escape(k), m[k])
	}
	return strings.Join(parts, ", ")
}

// sortedCaps sorts capability names by number, other names after them.
func sortedCaps(names []string) []string {
	slices.SortFunc(names, func(a, b string) int {
		ca, oka := capability.Exact(a)
		cb, okb := capability.Exact(b)
		switch {
		case oka && okb:
			return cmp.Compare(ca, cb)
		case oka:
			return -1
		case okb:
			return 1
		}
		return cmp.Compare(a, b)
	})
	return names
}

// shortID shortens the 64-hex-digit ids engines use, as they show them.
func shortID(id string) string {
	if len(id) == 64 {
		return id[:12]
	}
	return id
}
