package pinned

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/learn"
)

// Observation is what a record says the workload did, as profiles keep
// it: the capabilities Linux defines, and refusals that no fallback made
// up for.
func Observation(rec Record) *learn.Observation {
	var used, refused [capability.NumCaps]uint64
	copy(used[:], rec.UsedCount[:capability.NumCaps])
	for c := range refused {
		if rec.Refused.Has(capability.Cap(c)) {
			refused[c] = rec.RefusedCount[c] - rec.FallbackCount[c]
		}
	}
	return &learn.Observation{
		Used:     learn.Counts(&used),
		Refused:  learn.Counts(&refused),
		Complete: rec.Complete,
	}
}

// ProcessCgroup returns the cgroup v2 of process pid, which must not be
// the caller's own: a container left in its caller's cgroup (crun on a
// host whose v2 hierarchy it does not use) would record the caller
// instead.
func ProcessCgroup(pid int) (Cgroup, error) {
	if pid <= 0 {
		return Cgroup{}, fmt.Errorf("pid %d is not a process id", pid)
	}
	path, err := v2Path(strconv.Itoa(pid))
	if err != nil {
		return Cgroup{}, err
	}
	own, err := v2Path("self")
	if err != nil {
		return Cgroup{}, err
	}
	if path == own {
		return Cgroup{}, fmt.Errorf("the container runs in capshim's own cgroup %s (the runtime did not give it a cgroup v2 of its own), so its checks cannot be told apart", path)
	}
	return CgroupByPath(path)
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
