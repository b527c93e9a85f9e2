// Command capshim-trace loads capshim's BPF recorder: capshim runs it at a
// recorded container's start when no recorder is pinned yet (the first of
// a boot, or the first after the last watched container was deleted), and
// it loads, pins and watches. Every other start and every delete capshim
// does itself, with plain bpf(2) calls on the pins (trace/pinned).
//
// It is its own small binary so that the BPF library never weighs on the
// capshim binary, which every runtime call runs; capshim runs it from next
// to itself and waits for it. Its output is one JSON object on stdout;
// its failures never fail the container (tracing is observability).
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

	"github.com/capshim/capshim"
	"github.com/capshim/capshim/learn"
	"github.com/capshim/capshim/trace"
	"github.com/capshim/capshim/trace/pinned"
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
// it, loading and pinning the recorder first when it is not there (capshim
// itself watches on a recorder already pinned).
func watch(pidArg string) (uint64, error) {
	pid, err := strconv.Atoi(pidArg)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid %q is not a process id", pidArg)
	}
	cg, err := pinned.ProcessCgroup(pid)
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

// harvest reads and drops what the cgroup recorded, drops entries of
// cgroups that are gone, and detaches the recorder when nothing is
// watched any more.
func harvest(id uint64) Result {
	rec, err := pinned.HarvestPinned(pinned.Options{}, id)
	if errors.Is(err, pinned.ErrNoPins) {
		return Result{Error: "the recorder was not attached (it was removed, or the host rebooted): nothing was recorded"}
	}
	if err != nil {
		return Result{Error: err.Error()}
	}
	return Result{CgroupID: id, Observed: pinned.Observation(rec), Summary: rec.String()}
}
