// Command capshim-trace does capshim's BPF work for one container: it
// starts recording a container's capability checks at its start, and
// hands over (and stops) the recording at its delete.
//
// It is its own small binary so that the BPF library never weighs on the
// capshim binary, which every runtime call runs: capshim runs
// capshim-trace, from next to itself, only for containers whose record
// says they are traced, and waits for it. Its output is one JSON object
// on stdout; its failures never fail the container (tracing is
// observability).
//
//	capshim-trace watch PID     watch the cgroup (v2) of process PID
//	capshim-trace harvest ID    hand over and drop what cgroup ID recorded
//	capshim-trace supported     say whether tracing works here
//	capshim-trace version       capshim-trace's version (capshim version shows it)
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/capshim/capshim"
	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/learn"
	"github.com/capshim/capshim/trace"
)

// Result is capshim-trace's answer.
type Result struct {
	// CgroupID is the watched cgroup (watch).
	CgroupID uint64 `json:"cgroup_id,omitempty"`
	// Observed is what the cgroup's processes did (harvest).
	Observed *learn.Observation `json:"observed,omitempty"`
	// Summary is a one-line account of the recording (harvest).
	Summary string `json:"summary,omitempty"`
	// Error says why tracing did not work; the container is not affected.
	Error string `json:"error,omitempty"`
	// Version is capshim-trace's version (version).
	Version string `json:"version,omitempty"`
}

func main() {
	r := run(os.Args[1:])
	json.NewEncoder(os.Stdout).Encode(r)
	if r.Error != "" {
		os.Exit(1)
	}
}

func run(args []string) Result {
	if len(args) < 1 {
		return Result{Error: "usage: capshim-trace watch PID | harvest CGROUP-ID | supported | version"}
	}
	switch args[0] {
	case "version", "--version":
		return Result{Version: capshim.Version()}
	case "supported":
		if err := trace.Supported(); err != nil {
			return Result{Error: err.Error()}
		}
		return Result{}
	case "watch":
		if len(args) != 2 {
			return Result{Error: "usage: capshim-trace watch PID"}
		}
		id, err := watch(args[1])
		if err != nil {
			return Result{Error: err.Error()}
		}
		return Result{CgroupID: id}
	case "harvest":
		if len(args) != 2 {
			return Result{Error: "usage: capshim-trace harvest CGROUP-ID"}
		}
		id, err := strconv.ParseUint(args[1], 10, 64)
		if err != nil {
			return Result{Error: fmt.Sprintf("cgroup id %q: %v", args[1], err)}
		}
		return harvest(id)
	}
	return Result{Error: fmt.Sprintf("unknown command %q", args[0])}
}

// watch finds the cgroup v2 of the container's first process and watches
// it. It refuses to watch its own cgroup: a container left in its
// caller's cgroup (crun on a host whose v2 hierarchy it does not use)
// would record the caller instead.
func watch(pidArg string) (uint64, error) {
	pid, err := strconv.Atoi(pidArg)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid %q is not a process id", pidArg)
	}
	path, err := v2Path(strconv.Itoa(pid))
	if err != nil {
		return 0, err
	}
	own, err := v2Path("self")
	if err != nil {
		return 0, err
	}
	if path == own {
		return 0, fmt.Errorf("the container runs in capshim's own cgroup %s (the runtime did not give it a cgroup v2 of its own), so its checks cannot be told apart", path)
	}
	cg, err := trace.CgroupByPath(path)
	if err != nil {
		return 0, err
	}
	t, err := trace.Attach()
	if err != nil {
		return 0, err
	}
	defer t.Close()
	if err := t.Watch(cg); err != nil {
		return 0, err
	}
	return cg.ID, nil
}

// v2Path reads the cgroup v2 path ("0::/...") of a process.
func v2Path(pid string) (string, error) {
	data, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		return "", fmt.Errorf("reading the cgroups of process %s: %w", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("process %s has no cgroup v2 (no 0:: line in /proc/%s/cgroup)", pid, pid)
}

// harvest reads and drops what the cgroup recorded, drops entries of
// cgroups that are gone, and detaches the recorder when nothing is
// watched any more.
func harvest(id uint64) Result {
	t, err := trace.Open()
	if errors.Is(err, trace.ErrNotAttached) {
		return Result{Error: "the recorder was not attached (it was removed, or the host rebooted): nothing was recorded"}
	}
	if err != nil {
		return Result{Error: err.Error()}
	}
	defer t.Close()
	rec, herr := t.Harvest(id)
	// Whatever happened to this entry, entries of vanished cgroups go, and
	// the recorder with them when none is left.
	t.Reclaim(nil)
	t.Release()
	if herr != nil {
		return Result{Error: herr.Error()}
	}
	o := &learn.Observation{
		Used:     learn.Counts(countsOf(rec.UsedCount)),
		Refused:  learn.Counts(refusedOf(rec)),
		Complete: rec.Complete,
	}
	return Result{CgroupID: id, Observed: o, Summary: rec.String()}
}

// countsOf keeps the capabilities Linux defines.
func countsOf(n [trace.MaxCap + 1]uint64) *[capability.NumCaps]uint64 {
	var out [capability.NumCaps]uint64
	copy(out[:], n[:capability.NumCaps])
	return &out
}

// refusedOf counts the refusals that no fallback made up for.
func refusedOf(rec trace.Record) *[capability.NumCaps]uint64 {
	var out [capability.NumCaps]uint64
	for c := range out {
		if rec.Refused.Has(capability.Cap(c)) {
			out[c] = rec.RefusedCount[c] - rec.FallbackCount[c]
		}
	}
	return &out
}
