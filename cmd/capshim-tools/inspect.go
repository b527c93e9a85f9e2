package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/learn"
	"github.com/capshim/capshim/proc"
	"github.com/capshim/capshim/spec"
)

var inspectCommand = &cli.Command{
	Name:      "inspect",
	Usage:     "show the capabilities container processes really have",
	ArgsUsage: "[CONTAINER-ID|NAME|PID]...",
	Description: `Lists every process of the named containers (a container id or a unique
prefix of one, the name the engine gave a running container as capshim
recorded it: NAME, POD/NAME or NAMESPACE/POD/NAME, else the name Docker or
Podman gives it, asked of their CLIs on PATH; or a PID), or of all
containers when none is named, with its
PID, container id (from its cgroup), command, effective user id and its five
capability sets as the kernel reports them in /proc/PID/status. In text
form, capabilities beyond the policy's default are marked with "!".`,
	Flags: []cli.Flag{
		configFlag,
		builtinFlag,
		&cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text or json"},
		&cli.StringFlag{Name: "proc", Value: "/proc", Usage: "proc file system `ROOT`", Hidden: true},
		&cli.StringFlag{Name: "run-dir", Value: learn.RunDir, Usage: "`DIR` of running containers' records", Hidden: true},
	},
	Action: func(c *cli.Context) error {
		format := c.String("format")
		if format != "text" && format != "json" {
			return cli.Exit(fmt.Sprintf("--format %q: use text or json", format), 2)
		}
		pol, _, err := cliPolicy(c)
		if err != nil {
			return cli.Exit(err, 2)
		}
		byName := func(name string) ([]string, error) {
			ids, err := runningByName(c.String("run-dir"), name)
			if err != nil || len(ids) > 0 {
				return ids, err
			}
			return engineByName(name), nil
		}
		procs, err := inspectProcesses(c.String("proc"), c.Args().Slice(), byName)
		if err != nil {
			return cli.Exit(err, 2)
		}
		if format == "json" {
			return writeInspectJSON(c.App.Writer, procs)
		}
		writeInspectText(c.App.Writer, procs, pol.Default)
		return nil
	},
}

// runningByName returns the ids of the running containers whose recorded
// name is name (learn.About's names). Records are kept of the containers
// capshim records for learn and explain, as root.
func runningByName(runDir, name string) ([]string, error) {
	r := &learn.Records{Run: runDir, Store: &learn.Store{Dir: "/nonexistent"}}
	recs, err := r.Find(name)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, rec := range recs {
		if rec.Deleted.IsZero() && rec.ID != "" && (rec.About().Matches(name) || rec.Name() == name) && !slices.Contains(ids, rec.ID) {
			ids = append(ids, rec.ID)
		}
	}
	return ids, nil
}

// dockerName is a name Docker or Podman gives a container.
var dockerName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$`)

// engineTimeout bounds the question to an engine's CLI.
const engineTimeout = 5 * time.Second

// engineByName asks Docker's and Podman's own CLIs (those on PATH, with
// the environment's DOCKER_HOST and the like) for the id of the container
// they call name: Docker 20.10 and Podman never tell the runtime a
// container's name, so capshim's records do not have it.
func engineByName(name string) []string {
	if !dockerName.MatchString(name) {
		return nil
	}
	for _, cli := range []string{"docker", "podman"} {
		path, err := exec.LookPath(cli)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
		out, err := exec.CommandContext(ctx, path, "inspect", "--type", "container", "--format", "{{.Id}}", name).Output()
		cancel()
		id := strings.TrimSpace(string(out))
		if err == nil && hexID.MatchString(id) {
			return []string{id}
		}
	}
	return nil
}

var hexID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// inspectProcesses selects container processes: those named by args (pid,
// container id prefix, or a name byName finds the ids of), or all
// processes in a container.
func inspectProcesses(root string, args []string, byName func(string) ([]string, error)) ([]*proc.Process, error) {
	pids, err := proc.PIDs(root)
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var all []*proc.Process
	for _, pid := range pids {
		p, err := proc.Read(root, pid)
		if err != nil {
			continue // the process ended, or is not readable
		}
		all = append(all, p)
	}
	if len(args) == 0 {
		var out []*proc.Process
		for _, p := range all {
			if p.Container != "" {
				out = append(out, p)
			}
		}
		return out, nil
	}
	var out []*proc.Process
	for _, a := range args {
		matched := false
		if pid, err := strconv.Atoi(a); err == nil {
			for _, p := range all {
				if p.PID == pid {
					out, matched = append(out, p), true
				}
			}
		}
		if !matched {
			ids := map[string]bool{}
			for _, p := range all {
				if p.Container != "" && strings.HasPrefix(p.Container, a) {
					ids[p.Container] = true
					out, matched = append(out, p), true
				}
			}
			if len(ids) > 1 {
				return nil, fmt.Errorf("%q matches %d containers; give more of the id", a, len(ids))
			}
		}
		if !matched && byName != nil {
			ids, err := byName(a)
			if err != nil {
				return nil, fmt.Errorf("finding container %q by name: %w", a, err)
			}
			if len(ids) > 1 {
				return nil, fmt.Errorf("%q names %d running containers (%s); give one of their ids", a, len(ids), safetext.Escape(strings.Join(ids, ", ")))
			}
			for _, p := range all {
				if len(ids) == 1 && p.Container == ids[0] {
					out, matched = append(out, p), true
				}
			}
		}
		if !matched {
			return nil, fmt.Errorf("%q is neither a running process, nor the id or name of a running container (names are those capshim recorded in %s, and Docker's and Podman's)", a, learn.RunDir)
		}
	}
	return out, nil
}

// inspectJSON is one process in JSON output.
type inspectJSON struct {
	PID          int                 `json:"pid"`
	Container    string              `json:"container"`
	Command      string              `json:"command"`
	CommandCut   bool                `json:"command_cut,omitempty"` // longer than proc.MaxCommand
	UID          int                 `json:"uid"`
	Capabilities map[string][]string `json:"capabilities"`
}

func writeInspectJSON(w io.Writer, procs []*proc.Process) error {
	out := make([]inspectJSON, 0, len(procs))
	for _, p := range procs {
		caps := map[string][]string{}
		for s := spec.Bounding; s < spec.NumSets; s++ {
			caps[s.String()] = p.Status.Caps[s].Names()
		}
		out = append(out, inspectJSON{PID: p.PID, Container: p.Container, Command: p.Command, CommandCut: p.CommandCut, UID: p.Status.UID, Capabilities: caps})
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	// encoding/json escapes control characters; safetext.JSON escapes the
	// bidirectional controls too, so the output is as safe on a terminal
	// as the text form, and decodes to the same strings.
	_, err = fmt.Fprintf(w, "%s\n", safetext.JSON(data))
	return err
}

// Widths of the text table's columns that a container controls.
const (
	inspectIDWidth      = 32 // a 64-hex-digit id is shown as 12
	inspectCommandWidth = 40
)

// writeInspectText prints a table: one process a row, then its sets, with
// capabilities beyond the policy default marked "!". Every string that
// comes from a process (its command line, name and cgroup) is escaped: a
// process chooses its own command line, and a newline or a terminal escape
// in it could otherwise add fake rows or erase real ones.
func writeInspectText(w io.Writer, procs []*proc.Process, def capability.Set) {
	if len(procs) == 0 {
		fmt.Fprintln(w, "no container processes found")
		return
	}
	slices.SortStableFunc(procs, func(a, b *proc.Process) int {
		if c := strings.Compare(a.Container, b.Container); c != 0 {
			return c
		}
		return cmp.Compare(a.PID, b.PID)
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tCONTAINER\tUID\tCOMMAND\tBEYOND DEFAULT")
	for _, p := range procs {
		var held capability.Set
		for _, set := range p.Status.Caps {
			held |= set
		}
		beyond := (held &^ def).Len()
		id := p.Container
		if len(id) == 64 {
			id = id[:12]
		}
		id = safetext.EscapeWidth(id, inspectIDWidth)
		cmd := safetext.EscapeWidth(p.Command, inspectCommandWidth)
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%d\n", p.PID, id, p.Status.UID, cmd, beyond)
	}
	tw.Flush()
	for _, p := range procs {
		cut := ""
		if p.CommandCut {
			cut = fmt.Sprintf(" ...(cut at %d bytes)", proc.MaxCommand)
		}
		fmt.Fprintf(w, "\n%d %s%s\n", p.PID, safetext.Escape(p.Command), cut)
		for s := spec.Bounding; s < spec.NumSets; s++ {
			fmt.Fprintf(w, "  %-12s %s\n", s.String()+":", markBeyond(p.Status.Caps[s], def))
		}
	}
}

func markBeyond(set, def capability.Set) string {
	if set == 0 {
		return "-"
	}
	names := set.Names()
	for i, c := range set.Caps() {
		if !def.Has(c) {
			names[i] += "!"
		}
	}
	return strings.Join(names, " ")
}
