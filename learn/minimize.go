package learn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/capshim/capshim/capability"
)

// What a workload used is not what it needs: a process may use a
// capability it could do without (a chmod whose failure it ignores, a
// check that another capability would have passed too). Minimisation
// finds out by running the workload again with less, one capability at a
// time, and keeps a capability only when the workload fails without it.

// RunResult is what one run of a workload with a candidate set showed.
type RunResult struct {
	// Pass says the workload did what it is for (its exit status was 0
	// and its output matched what the caller checks for).
	Pass bool
	// Exit is the exit status (-1 when the run did not end with one).
	Exit int
	// Output is one line of what it printed, as evidence.
	Output string
	// Err is why the run could not be judged (the runtime could not be
	// started, a time limit); such a run counts as failed.
	Err error
	// Took is how long the run took.
	Took time.Duration
}

// Trial is one run, as the profile keeps it.
type Trial struct {
	// Caps is the set the workload ran with (bounding, effective and
	// permitted).
	Caps []string `json:"caps"`
	// Why says what the run was for: "learned set", "without CAP_X",
	// "final set", "final set without CAP_X".
	Why    string `json:"why"`
	Pass   bool   `json:"pass"`
	Exit   int    `json:"exit"`
	Output string `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
	TookMS int64  `json:"took_ms"`
}

// Verification is a profile's verified needed set, and how it was found.
type Verification struct {
	// Needed is the verified set: the workload passed with exactly
	// these, and failed without any one of them.
	Needed []string `json:"needed"`
	// From is the set the search started from (what the profile had
	// learned then: used, and what file capabilities demanded).
	From []string `json:"from"`
	// Runs is how many runs it took, At when it ended.
	Runs int       `json:"runs"`
	At   time.Time `json:"at"`
	// Runtime, Bundle, Args and Check say what was run and how a run was
	// judged.
	Runtime string   `json:"runtime"`
	Bundle  string   `json:"bundle"`
	Args    []string `json:"args,omitempty"`
	Check   string   `json:"check,omitempty"`
	Trials  []Trial  `json:"trials"`
}

// NeededSet is Needed as a set.
func (v *Verification) NeededSet() capability.Set {
	s, _ := capability.ParseList(v.Needed)
	return s
}

// FromSet is From as a set.
func (v *Verification) FromSet() capability.Set {
	s, _ := capability.ParseList(v.From)
	return s
}

// Minimizer searches for the needed set by running a workload.
type Minimizer struct {
	// Run runs the workload once with exactly caps.
	Run func(ctx context.Context, caps capability.Set) RunResult
	// MaxRuns bounds the runs; 0 is DefaultMaxRuns of the start set.
	MaxRuns int
	// Progress, when set, is told of each trial as it ends (n counts
	// from 1).
	Progress func(n int, t Trial)
}

// DefaultMaxRuns is the run budget for a start set of n capabilities: one
// run of the start set, one per capability to drop, one more of the final
// set, and one per member of it whose absence was not already tried with
// exactly the others.
func DefaultMaxRuns(n int) int { return 2*n + 2 }

// Errors of a search that did not end with a verified set.
var (
	// ErrStartFails is a workload that fails with the set it was learned
	// with: there is nothing to reduce from.
	ErrStartFails = errors.New("the workload fails with the learned set")
	// ErrUnsteady is a workload that failed with a set it had passed with.
	ErrUnsteady = errors.New("the workload failed with a set it had passed with: its runs do not pass or fail the same way each time")
	// ErrBudget is a search that ran out of runs.
	ErrBudget = errors.New("out of runs")
)

// Result is the outcome of a search: the needed set when it succeeded,
// and every trial either way.
type Result struct {
	Needed capability.Set
	Trials []Trial
}

// Minimize starts from the set from, which must pass, and drops one
// capability at a time, keeping the drop when the workload still passes.
// It then runs the remaining set once more and, for each member, the set
// without it (unless that very set already failed): every member must be
// needed. A member found not to be needed after all (a workload that
// needs one of two capabilities, either will do) is dropped and the check
// starts over, within the budget.
func (m *Minimizer) Minimize(ctx context.Context, from capability.Set) (*Result, error) {
	budget := m.MaxRuns
	if budget <= 0 {
		budget = DefaultMaxRuns(from.Len())
	}
	res := &Result{}
	seen := map[capability.Set]bool{}
	try := func(set capability.Set, why string) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if len(res.Trials) >= budget {
			return false, fmt.Errorf("%w: %d runs (--max-runs) were not enough to verify a set", ErrBudget, budget)
		}
		r := m.Run(ctx, set)
		if err := ctx.Err(); err != nil {
			// A run cut short by the caller says nothing about the set.
			return false, err
		}
		t := Trial{Caps: set.Names(), Why: why, Pass: r.Pass && r.Err == nil, Exit: r.Exit, Output: r.Output, TookMS: r.Took.Milliseconds()}
		if r.Err != nil {
			t.Error = r.Err.Error()
		}
		res.Trials = append(res.Trials, t)
		seen[set] = t.Pass
		if m.Progress != nil {
			m.Progress(len(res.Trials), t)
		}
		return t.Pass, nil
	}

	ok, err := try(from, "learned set")
	if err != nil {
		return res, err
	}
	if !ok {
		return res, ErrStartFails
	}
	cur := from
	for _, c := range from.Caps() {
		ok, err := try(cur&^capability.Of(c), "without "+c.String())
		if err != nil {
			return res, err
		}
		if ok {
			cur &^= capability.Of(c)
		}
	}
	for {
		ok, err := try(cur, "final set")
		if err != nil {
			return res, err
		}
		if !ok {
			return res, ErrUnsteady
		}
		dropped := false
		for _, c := range cur.Caps() {
			less := cur &^ capability.Of(c)
			pass, tried := seen[less]
			if !tried {
				if pass, err = try(less, "final set without "+c.String()); err != nil {
					return res, err
				}
			}
			if pass {
				cur, dropped = less, true
				break
			}
		}
		if !dropped {
			res.Needed = cur
			return res, nil
		}
	}
}
