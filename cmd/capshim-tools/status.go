package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/capshim/capshim/install"
	"github.com/capshim/capshim/internal/runtimefind"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/internal/trustfs"
	"github.com/capshim/capshim/policy"
)

// statusCommand says, engine by engine, how capshim is wired into this
// node and what would go wrong at the next container start.
var statusCommand = &cli.Command{
	Name:  "status",
	Usage: "say how capshim is registered with this node's engines, and what is wrong",
	Description: `For each engine found on the node (its config file exists, or its daemon or
command is on PATH; --engine names them instead): whether capshim is
registered and whether it is the default runtime, and for each runtime that
runs capshim (named capshim, or capshim-NAME): the binary and its version,
the policy that runtime reads (its --capshim-config runtime argument, its
name, $CAPSHIM_CONFIG, /etc/capshim/shim.toml, as the runtime finds it, with
this command's environment standing in for the engine's), whether it loads
and is trusted, and the real runtime it will run. Then whether learn and
explain can record here (capshim-trace loads a BPF program that does
nothing and removes it again), and whether capshim, capshim-tools and
capshim-trace are of one build.

Every problem is printed with its fix. Exit status: 0 all is well, 1 a
problem was found (or capshim is registered with no engine).`,
	Flags: []cli.Flag{
		&cli.StringSliceFlag{Name: "engine", Usage: "look only at `ENGINE` (docker, containerd, podman; repeatable)"},
		&cli.StringFlag{Name: "docker", Usage: "daemon.json `PATH` (default " + install.Docker.ConfigPath() + ")"},
		&cli.StringFlag{Name: "containerd", Usage: "containerd's config.toml `PATH` (default " + install.Containerd.ConfigPath() + ")"},
		&cli.StringFlag{Name: "podman", Usage: "containers.conf `PATH` (default " + install.Podman.ConfigPath() + ")"},
		&cli.StringFlag{Name: "dir", Usage: "the `DIR` holding capshim-trace (default: this program's)"},
	},
	Action: statusAction,
}

// engineCommand is the program whose presence on PATH says the engine is
// on the node.
var engineCommand = map[install.Engine]string{install.Docker: "dockerd", install.Containerd: "containerd", install.Podman: "podman"}

// statusReport collects what status finds.
type statusReport struct {
	w        io.Writer
	problems int
	learns   []string // registrations whose policy learns
	crun     []string // registrations whose runtime is crun
}

// problem reports one problem and its fix.
func (r *statusReport) problem(indent, what, fix string) {
	r.problems++
	fmt.Fprintf(r.w, "%sproblem: %s\n%s  fix: %s\n", indent, safetext.Line(what), indent, safetext.Line(fix))
}

func statusAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit("status takes no operands; see capshim status --help", 2)
	}
	var only []install.Engine
	for _, name := range c.StringSlice("engine") {
		e, err := install.ParseEngine(name)
		if err != nil {
			return cli.Exit(fmt.Errorf("--engine: %w", err), 2)
		}
		only = append(only, e)
	}
	r := &statusReport{w: c.App.Writer}
	self, err := sibling("capshim-tools")
	if err != nil {
		return cli.Exit(err, 2)
	}
	fmt.Fprintf(r.w, "capshim-tools %s\n", safetext.Escape(version))

	registered := 0
	for _, e := range install.Engines {
		path := c.String(string(e))
		if len(only) > 0 && !slices.Contains(only, e) {
			continue
		}
		if path == "" {
			path = e.ConfigPath()
		}
		registered += r.engine(e, path, len(only) > 0 || c.String(string(e)) != "")
	}
	if registered == 0 {
		r.problem("", "capshim is registered with no engine", "capshim install docker|containerd|podman (capshim install --help)")
	}
	dir := c.String("dir")
	if dir == "" {
		dir = filepath.Dir(self)
	}
	r.tracing(filepath.Join(dir, "capshim-trace"))
	if r.problems > 0 {
		fmt.Fprintf(r.w, "status: %d problem(s)\n", r.problems)
		return cli.Exit("", 1)
	}
	fmt.Fprintln(r.w, "status: ok")
	return nil
}

// engine reports on one engine's config at path and returns how many
// capshim runtimes it registers. named: the user asked for this engine
// or file, so it is looked at even when nothing shows it is installed.
func (r *statusReport) engine(e install.Engine, path string, named bool) int {
	data, err := os.ReadFile(path)
	missing := errors.Is(err, fs.ErrNotExist)
	if missing && !named {
		if bin, err := exec.LookPath(engineCommand[e]); err == nil {
			fmt.Fprintf(r.w, "%s: %s found, but no %s: capshim is not registered (capshim install %s registers it)\n", e, bin, path, e)
		} else {
			fmt.Fprintf(r.w, "%s: not found (no %s, no %s on PATH)\n", e, path, engineCommand[e])
		}
		return 0
	}
	if err != nil && !missing {
		r.problem("", fmt.Sprintf("%s: reading %s: %v", e, path, err), "check the file and its permissions (status reads it as the user it runs as)")
		return 0
	}
	regs, def, err := install.Registered(e, data, nil)
	if err != nil {
		r.problem("", fmt.Sprintf("%s: %s: %v", e, path, err), "fix the file: the engine cannot read it either")
		return 0
	}
	if def == "" {
		def = "the engine's own"
	}
	if len(regs) == 0 {
		what := "does not exist"
		if !missing {
			what = "registers no capshim runtime"
		}
		fmt.Fprintf(r.w, "%s: %s %s (default runtime: %s): capshim is not registered (capshim install %s registers it)\n", e, path, what, safetext.Escape(def), e)
		return 0
	}
	fmt.Fprintf(r.w, "%s: %s (default runtime: %s)\n", e, path, safetext.Escape(def))
	for _, reg := range regs {
		r.registration(e, reg)
	}
	return len(regs)
}

// registration checks one runtime that runs capshim as the engine will
// run it: the binary, its version, its policy and the real runtime.
func (r *statusReport) registration(e install.Engine, reg install.Registration) {
	const in = "    "
	dflt := ""
	if reg.Default {
		dflt = ", the default runtime"
	}
	fmt.Fprintf(r.w, "  runtime %s: %s%s\n", safetext.Escape(reg.Name), safetext.Escape(reg.Binary), dflt)
	label := fmt.Sprintf("%s runtime %s", e, reg.Name)

	f, err := trustfs.Open(reg.Binary, trustfs.Exec)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.problem(in, fmt.Sprintf("%s: %s does not exist: every container of this runtime fails to start", label, reg.Binary), "install capshim there (make install, or the capshim package), or capshim install "+string(e)+" again with --binary")
		return
	case err != nil:
		r.problem(in, fmt.Sprintf("%s: %v", label, err), "the engine runs it as root: make it and every directory above it owned by root and writable by nobody else")
		return
	}
	f.Close()
	switch v, err := capshimVersion(reg.Binary); {
	case err != nil:
		r.problem(in, fmt.Sprintf("%s: %v", label, err), "register the capshim binary (capshim install "+string(e)+" --binary PATH)")
		return
	case v != version:
		fmt.Fprintf(r.w, "%sversion: %s\n", in, safetext.Escape(v))
		r.problem(in, fmt.Sprintf("%s: %s is version %s, capshim-tools is %s", label, reg.Binary, v, version), "install capshim, capshim-tools and capshim-trace from one build, in one directory")
	default:
		fmt.Fprintf(r.w, "%sversion: %s (the same as capshim-tools)\n", in, safetext.Escape(v))
	}

	loc := policy.Locate(install.PolicyFlag(reg.Args), reg.Binary, false, os.Getenv)
	pol, err := loc.Load()
	if err != nil {
		fmt.Fprintf(r.w, "%spolicy: %s (%s): refused\n", in, safetext.Escape(loc.Path), loc.Why)
		r.problem(in, fmt.Sprintf("%s: capshim: %v", label, err), fmt.Sprintf("every create, run and exec of this runtime fails until it loads: fix it (capshim policy check %s shows the same), or put a good one in place (capshim policy install FILE --to %s)", loc.Path, loc.Path))
		return
	}
	fmt.Fprintf(r.w, "%spolicy: %s: ok (loads, trusted): %s\n", in, safetext.Escape(loc.Describe(pol)), policySummary(pol))
	for _, rule := range pol.Rules {
		if rule.LearnMode || rule.Learn {
			r.learns = append(r.learns, label)
			break
		}
	}
	rt, err := runtimefind.Find(pol, os.Getenv("PATH"), runtimefind.SameFile(reg.Binary))
	if err != nil {
		fmt.Fprintf(r.w, "%sruntime: refused\n", in)
		r.problem(in, fmt.Sprintf("%s: capshim: %v", label, err), "install the real runtime (runc), or name a trusted one with runtime = \"/path\" in "+pol.Source)
		return
	}
	rt.File.Close()
	why := "named in the policy"
	if rt.OnPath {
		why = "runc on PATH"
	}
	fmt.Fprintf(r.w, "%sruntime: %s (%s): ok\n", in, safetext.Escape(rt.Path), why)
	if filepath.Base(rt.Path) == "crun" {
		r.crun = append(r.crun, label)
	}
}

// tracing says whether learn and explain can record on this host, asking
// capshim-trace (which holds the BPF code), and whether it is of this
// build.
func (r *statusReport) tracing(traceBin string) {
	v, err := traceVersion(traceBin)
	switch {
	case err != nil:
		r.problem("", fmt.Sprintf("capshim-trace: %v", err), "install capshim-trace next to capshim (make install, or the capshim package): without it nothing is recorded")
		return
	case v != version:
		r.problem("", fmt.Sprintf("capshim-trace %s is version %s, capshim-tools is %s", traceBin, v, version), "install capshim, capshim-tools and capshim-trace from one build, in one directory")
	}
	out, _ := exec.Command(traceBin, "supported").Output()
	var res struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		res.Error = fmt.Sprintf("%s supported printed %q", traceBin, out)
	}
	if res.Error != "" {
		fmt.Fprintf(r.w, "learn/explain: not supported here: %s (containers run as without recording, with a warning)\n", safetext.Line(res.Error))
		if len(r.learns) > 0 {
			r.problem("", fmt.Sprintf("%s: the policy learns, but nothing can be recorded here", strings.Join(r.learns, ", ")), "run capshim as root on a host with cgroup v2 and BPF (see README, How it records), or take the learn rules out")
		}
		return
	}
	fmt.Fprintf(r.w, "learn/explain: supported (a BPF program was loaded on cap_capable and removed again)\n")
	if len(r.crun) > 0 && hybridCgroups() {
		fmt.Fprintf(r.w, "learn/explain: %s: crun leaves containers in capshim's own cgroup on this host's hybrid cgroups, so they are not recorded\n", strings.Join(r.crun, ", "))
	}
}

// hybridCgroups: the v1 controllers are at /sys/fs/cgroup and v2 only at
// /sys/fs/cgroup/unified.
func hybridCgroups() bool {
	var root, unified unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &root) != nil || root.Type == unix.CGROUP2_SUPER_MAGIC {
		return false
	}
	return unix.Statfs("/sys/fs/cgroup/unified", &unified) == nil && unified.Type == unix.CGROUP2_SUPER_MAGIC
}
