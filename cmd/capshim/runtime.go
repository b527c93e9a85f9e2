package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/capshim/capshim"
	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/engine"
	"github.com/capshim/capshim/internal/runtimefind"
	"github.com/capshim/capshim/policy"
	"github.com/capshim/capshim/spec"
)

// runtimeMain is runtime mode: reduce what the command carries, then
// become the real runtime. It returns only on failure, with the exit code.
func runtimeMain(args []string, stderr io.Writer) int {
	ra, err := parseRuntimeArgs(args[1:])
	if err != nil {
		// Without a parse, the log flags may still be readable.
		g, _ := parseGlobals(args[1:])
		l := newRuntimeLog(g, stderr)
		l.fail(fmt.Errorf("cannot read the command line: %w", err))
		return 1
	}
	l := newRuntimeLog(ra, stderr)
	carries := !ra.version && reduces(ra.command)
	pol, err := loadRuntimePolicy(ra.policy, args[0])
	if err != nil {
		if carries {
			l.fail(err)
			return 1
		}
		// A command that carries no capabilities (kill, delete, state...)
		// must keep working with a broken policy, or no container could be
		// stopped until it is fixed. It runs on runc from PATH.
		l.line("warning", fmt.Sprintf("capshim: %v; %s carries no capabilities, so it goes to runc on PATH", err, ra.command), nil)
		pol = policy.Builtin()
		pol.Runtime = ""
	}
	rt, err := findRuntime(pol)
	if err != nil {
		l.fail(err)
		return 1
	}
	if ra.version {
		fmt.Printf("capshim version %s\n", capshim.Version())
		ra.argv = []string{"--version"}
	}
	switch {
	case carries:
		if ra.argv, err = reduce(ra, pol, l, rt.path); err != nil {
			l.fail(err)
			return 1
		}
	case ra.command == "start":
		recordStart(ra, pol, l, rt.path)
	case ra.command == "delete":
		recordDelete(ra, pol, l, rt.path)
	}
	argv := append([]string{rt.path}, ra.argv...)
	err = execRuntime(rt, argv, os.Environ())
	l.fail(fmt.Errorf("starting the runtime %s: %w", rt.path, err))
	return 1
}

// loadRuntimePolicy finds and loads the policy of a runtime call the way
// capshim's commands do (policy.Locate): the flag, the name capshim is
// called as, $CAPSHIM_CONFIG, the default path, the built-in default.
func loadRuntimePolicy(flag, argv0 string) (*policy.Policy, error) {
	return policy.Locate(flag, argv0, false, os.Getenv).Load()
}

// self is the identity of capshim's own executable, read once.
var self struct {
	done bool
	ok   bool
	st   syscall.Stat_t
}

// selfStat returns the identity of capshim's own executable.
func selfStat() (*syscall.Stat_t, bool) {
	if !self.done {
		self.done = true
		self.ok = syscall.Stat("/proc/self/exe", &self.st) == nil
	}
	return &self.st, self.ok
}

// isSelf reports whether st, the identity of an opened runtime, is
// capshim's own executable.
func isSelf(st *unix.Stat_t) bool {
	me, ok := selfStat()
	return ok && uint64(st.Dev) == uint64(me.Dev) && uint64(st.Ino) == uint64(me.Ino)
}

// findRuntime finds the real runtime, opened and checked: the policy's,
// or the first runc on PATH that is not capshim itself (runtimefind, which
// capshim's commands share). What is returned is run from its descriptor
// (execRuntime), so the file that passed the checks is the file that runs.
func findRuntime(pol *policy.Policy) (realRuntime, error) {
	rt, err := runtimefind.Find(pol, os.Getenv("PATH"), isSelf)
	if err != nil {
		return realRuntime{}, err
	}
	return realRuntime{path: rt.Path, file: rt.File}, nil
}

// reduce applies the policy to what the command carries and returns the
// argv to run.
func reduce(ra *runtimeArgs, pol *policy.Policy, l *runtimeLog, runtime string) ([]string, error) {
	if ra.command == "exec" {
		return reduceExec(ra, pol, l, runtime)
	}
	path := specPath(ra.bundle, ra.configFile)
	f, err := spec.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the spec: %w", err)
	}
	doc, err := spec.Parse(f.Data, spec.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l.describe(doc.Annotations, runtimeRoot(runtime, ra.root))
	o, err := apply(ra, pol, l, f, doc, doc.Annotations, nil)
	if err != nil {
		return nil, err
	}
	recordCreate(ra, pol, l, runtime, doc, o)
	return ra.argv, nil
}

// specPath is the file the real runtime will read for create, run and
// restore. runc and crun change into the bundle and open "config.json"
// there; crun's --config names any other file relative to the directory
// it was started in (it resolves it before changing into the bundle), which
// is capshim's own, since capshim execs crun without moving. The paths are
// joined without lexical cleaning: "a/../x" must go through a as the
// kernel resolves it, exactly as the runtime's own open will.
func specPath(bundle, configFile string) string {
	if configFile != "" && configFile != "config.json" {
		return configFile
	}
	if bundle == "" {
		return "config.json"
	}
	return strings.TrimSuffix(bundle, "/") + "/config.json"
}

// reduceExec reduces `exec`: the process.json of --process, and --cap
// flags. The process joins a running container, so it is decided with the
// annotations the container was created with and held, set by set, to what
// the container's own process got (as the runtime recorded it), whatever
// the exec asks for. Without that record, exec does not run.
func reduceExec(ra *runtimeArgs, pol *policy.Policy, l *runtimeLog, runtime string) ([]string, error) {
	st, err := readContainerState(runtime, ra.root, ra.id)
	if err != nil {
		return nil, fmt.Errorf("exec: cannot read what container %s was created with: %w", ra.id, err)
	}
	l.describe(st.annotations, runtimeRoot(runtime, ra.root))
	var env []string
	if ra.process != "" {
		f, err := spec.ReadFile(ra.process)
		if err != nil {
			return nil, fmt.Errorf("reading the process spec: %w", err)
		}
		doc, err := spec.Parse(f.Data, spec.Process)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ra.process, err)
		}
		if _, err := apply(ra, pol, l, f, doc, st.annotations, &st.sets); err != nil {
			return nil, err
		}
		env = doc.Env
	}
	if len(ra.caps) == 0 {
		return ra.argv, nil
	}
	d := pol.Decide(st.annotations, env)
	if err := pol.Check(&d); err != nil {
		return nil, err
	}
	// runc adds a --cap to the bounding, effective, permitted and ambient
	// sets (crun to all but inheritable): keep it only where the container
	// holds it in each of them, so the exec gains nothing the container
	// lacks.
	c := st.sets
	allowed := d.Target & c[spec.Bounding] & c[spec.Effective] & c[spec.Permitted] & (c[spec.Ambient] | ^c[spec.Inheritable])
	argv := make([]string, 0, len(ra.argv))
	next := 0
	var dropped []string
	for _, c := range ra.caps {
		cp, ok := capability.Exact(c.value)
		if ok && allowed.Has(cp) {
			continue
		}
		dropped = append(dropped, c.value)
		argv = append(argv, ra.argv[next:c.at]...)
		next = c.at + c.n
	}
	if len(dropped) == 0 {
		return ra.argv, nil
	}
	l.decision(ra, pol, &d, "exec --cap", map[string][]string{"cap": dropped}, nil)
	if pol.Mode == policy.Audit {
		return ra.argv, nil
	}
	return append(argv, ra.argv[next:]...), nil
}

// apply decides for one spec file, logs the decision and, in enforce
// mode, writes the reduced spec. A non-nil ceiling (exec) limits every set
// further.
func apply(ra *runtimeArgs, pol *policy.Policy, l *runtimeLog, f *spec.File, doc *spec.Doc, annotations map[string]string, ceiling *spec.Sets) (*policy.Outcome, error) {
	o, err := pol.Apply(doc, annotations, ceiling, engine.Identify(annotations, ra.root))
	if err != nil {
		return nil, err
	}
	dropped := o.Dropped
	if dropped == nil {
		dropped = map[string][]string{}
	}
	l.decision(ra, pol, &o.Decision, f.Path, dropped, &o.Sets)
	if pol.Mode == policy.Audit || !o.Changed(f.Data) {
		return o, nil
	}
	if err := f.Replace(o.Out); err != nil {
		return nil, fmt.Errorf("writing the reduced spec: %w", err)
	}
	return o, nil
}
