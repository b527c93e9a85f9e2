// Package learn keeps what capshim found out about workloads: per container,
// the decision it made and which capabilities the container's processes
// exercised or were refused; per workload (a profile), those observations
// merged over every container that ran it. Profiles turn into policy rules.
//
// Everything lives in one root-only state directory (/var/lib/capshim by
// default). Writes are atomic, and merges into one profile are serialised
// by a lock file, so concurrent deletes of containers of the same workload
// lose nothing.
package learn

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/capshim/capshim/capability"
)

// Observation is what one container's processes did, from start to delete.
type Observation struct {
	// Used and Refused count the capability checks that succeeded and
	// failed, by capability name.
	Used    map[string]uint64 `json:"used,omitempty"`
	Refused map[string]uint64 `json:"refused,omitempty"`
	// FileCaps lists executables the workload ran that carry file
	// capabilities, with the capabilities they demand: the kernel refuses
	// to execute them when those are not in the bounding set, without a
	// capability check to record.
	FileCaps map[string][]string `json:"file_caps,omitempty"`
	// Complete is false when something may be missing (events lost, a
	// tracer that could not cover every process).
	Complete bool `json:"complete"`
}

// UsedSet is the set of capabilities with at least one successful check.
func (o *Observation) UsedSet() capability.Set { return countSet(o.Used) }

// RefusedSet is the set of capabilities with at least one refused check.
func (o *Observation) RefusedSet() capability.Set { return countSet(o.Refused) }

// Demanded is what the executables' file capabilities require.
func (o *Observation) Demanded() capability.Set {
	var s capability.Set
	for _, caps := range o.FileCaps {
		set, _ := capability.ParseList(caps)
		s |= set
	}
	return s
}

func countSet(m map[string]uint64) capability.Set {
	var s capability.Set
	for name, n := range m {
		if c, ok := capability.Exact(name); ok && n > 0 {
			s = s.Add(c)
		}
	}
	return s
}

// Counts turns per-capability counts indexed by number into the map form.
func Counts(n *[capability.NumCaps]uint64) map[string]uint64 {
	var out map[string]uint64
	for c := range n {
		if n[c] == 0 {
			continue
		}
		if out == nil {
			out = map[string]uint64{}
		}
		out[capability.Cap(c).String()] = n[c]
	}
	return out
}

// Profile is one workload's observations merged.
type Profile struct {
	Name string `json:"name"`
	Observation
	// Containers is how many distinct containers were merged, Runs how
	// many observations (a container restarted under the same id counts
	// once as a container and once per run).
	Containers int `json:"containers"`
	Runs       int `json:"runs"`
	// Recent holds the ids of the last containers merged, to count
	// distinct containers (bounded).
	Recent    []string  `json:"recent,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Match is what identifies the workload on the engine that ran it
	// (annotations such as the CRI image name): the emitted rule matches
	// on it.
	Match map[string]string `json:"match,omitempty"`
	// Verified is what minimisation found the workload needs, by
	// running it (capshim learn minimize); nil until then.
	Verified *Verification `json:"verified,omitempty"`
}

// maxRecent bounds Profile.Recent.
const maxRecent = 64

// Merge adds one container's observation.
func (p *Profile) Merge(id string, o Observation, match map[string]string, at time.Time) {
	if p.Runs == 0 {
		p.FirstSeen = at
		p.Complete = true
	}
	if at.After(p.LastSeen) {
		p.LastSeen = at
	}
	p.Runs++
	if !slices.Contains(p.Recent, id) {
		p.Containers++
		p.Recent = append(p.Recent, id)
		if len(p.Recent) > maxRecent {
			p.Recent = p.Recent[len(p.Recent)-maxRecent:]
		}
	}
	p.Used = addCounts(p.Used, o.Used)
	p.Refused = addCounts(p.Refused, o.Refused)
	for exe, caps := range o.FileCaps {
		if p.FileCaps == nil {
			p.FileCaps = map[string][]string{}
		}
		merged := append(slices.Clone(p.FileCaps[exe]), caps...)
		slices.Sort(merged)
		p.FileCaps[exe] = slices.Compact(merged)
	}
	p.Complete = p.Complete && o.Complete
	if p.Match == nil && len(match) > 0 {
		p.Match = maps.Clone(match)
	} else if p.Match != nil {
		// Keep only what every container of the workload shared.
		for k, v := range p.Match {
			if match[k] != v {
				delete(p.Match, k)
			}
		}
	}
}

func addCounts(into, from map[string]uint64) map[string]uint64 {
	for k, n := range from {
		if into == nil {
			into = map[string]uint64{}
		}
		into[k] += n
	}
	return into
}

// Learned is what the workload was seen to use, and what its executables
// demand by file capabilities.
func (p *Profile) Learned() capability.Set { return p.UsedSet() | p.Demanded() }

// Keep is the set a rule for this workload keeps: the verified needed set
// when there is one, else what was learned. What was learned after the
// verification, outside the set it started from, is kept too: no run
// showed that the workload can do without it.
func (p *Profile) Keep() capability.Set {
	if p.Verified == nil {
		return p.Learned()
	}
	return p.Verified.NeededSet() | p.Unverified()
}

// Unverified is what was learned outside the set the verification started
// from (none without a verification).
func (p *Profile) Unverified() capability.Set {
	if p.Verified == nil {
		return 0
	}
	return p.Learned() &^ p.Verified.FromSet()
}

// Rule renders the profile as a ready policy rule, with its evidence as
// comments.
func (p *Profile) Rule() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# learned by capshim from %d container(s), %d run(s), %s to %s",
		p.Containers, p.Runs, p.FirstSeen.UTC().Format(time.RFC3339), p.LastSeen.UTC().Format(time.RFC3339))
	if !p.Complete {
		b.WriteString("; INCOMPLETE: some checks may be missing")
	}
	b.WriteString("\n# used: " + countList(p.Used) + "\n")
	if len(p.Refused) > 0 {
		b.WriteString("# refused (not granted by the engine or never): " + countList(p.Refused) + "\n")
	}
	for _, exe := range slices.Sorted(maps.Keys(p.FileCaps)) {
		fmt.Fprintf(&b, "# %s has file capabilities %s\n", exe, strings.Join(p.FileCaps[exe], ","))
	}
	if v := p.Verified; v != nil {
		fmt.Fprintf(&b, "# verified by %d runs on %s: the workload passes with exactly keep and fails without any one of it\n",
			v.Runs, v.At.UTC().Format(time.DateOnly))
		b.WriteString("# used but not needed: " + nameList(v.FromSet()&^v.NeededSet()) + "\n")
		if u := p.Unverified(); u != 0 {
			b.WriteString("# learned since the verification, kept unverified: " + nameList(u) + "\n")
		}
	}
	b.WriteString("[[rule]]\n")
	fmt.Fprintf(&b, "name = %q\n", p.Name)
	b.WriteString("keep = " + tomlList(p.Keep().Names()) + "\n")
	if len(p.Match) > 0 {
		b.WriteString("[rule.match.annotations]\n")
		for _, k := range slices.Sorted(maps.Keys(p.Match)) {
			fmt.Fprintf(&b, "%q = %q\n", k, p.Match[k])
		}
	}
	return b.String()
}

func countList(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	names := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s (%d)", n, m[n]))
	}
	return strings.Join(parts, ", ")
}

func nameList(s capability.Set) string {
	if s == 0 {
		return "none"
	}
	return strings.Join(s.Names(), ", ")
}

func tomlList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
