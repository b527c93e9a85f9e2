package learn

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/capshim/capshim/capability"
)

func caps(t *testing.T, names ...string) capability.Set {
	t.Helper()
	s, unknown := capability.ParseList(names)
	if len(unknown) > 0 {
		t.Fatalf("not capabilities: %v", unknown)
	}
	return s
}

// needsAll passes a run that has every capability of need.
func needsAll(need capability.Set) func(int, capability.Set) RunResult {
	return func(_ int, s capability.Set) RunResult {
		if need&^s != 0 {
			return RunResult{Exit: 1, Output: "FAIL: missing " + (need &^ s).String()}
		}
		return RunResult{Pass: true, Output: "OK"}
	}
}

func TestMinimize(t *testing.T) {
	var (
		chown   = caps(t, "CAP_CHOWN")
		learned = caps(t, "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_NET_BIND_SERVICE")
		nginx   = caps(t, "CAP_CHOWN", "CAP_SETGID", "CAP_SETUID", "CAP_NET_BIND_SERVICE")
		redis   = caps(t, "CAP_CHOWN", "CAP_SETGID", "CAP_SETUID")
		a, b, c = caps(t, "CAP_CHOWN"), caps(t, "CAP_KILL"), caps(t, "CAP_NET_RAW")
	)
	tests := []struct {
		name    string
		from    capability.Set
		run     func(call int, s capability.Set) RunResult
		maxRuns int
		// cancelAt cancels the search's context during that call.
		cancelAt   int
		wantNeeded capability.Set
		wantErr    error
		wantRuns   int
		// wantWhy lists what each run was for, when the test says.
		wantWhy []string
	}{
		{
			name: "used more than needed", from: learned, run: needsAll(nginx),
			wantNeeded: nginx, wantRuns: 9,
			wantWhy: []string{
				"learned set", "without CAP_CHOWN", "without CAP_DAC_OVERRIDE", "without CAP_FOWNER",
				"without CAP_SETGID", "without CAP_SETUID", "without CAP_NET_BIND_SERVICE",
				// Dropping CHOWN was tried while DAC_OVERRIDE and FOWNER
				// were still there: the final set without it is new. The
				// other three were tried with exactly the final set's
				// other members.
				"final set", "final set without CAP_CHOWN",
			},
		},
		{
			name: "every used capability needed", from: redis, run: needsAll(redis),
			wantNeeded: redis, wantRuns: 5,
			wantWhy: []string{"learned set", "without CAP_CHOWN", "without CAP_SETGID", "without CAP_SETUID", "final set"},
		},
		{
			name: "nothing needed", from: a | b, run: needsAll(0),
			wantNeeded: 0, wantRuns: 4,
		},
		{
			name: "nothing learned", from: 0, run: needsAll(0),
			wantNeeded: 0, wantRuns: 2,
			wantWhy: []string{"learned set", "final set"},
		},
		{
			name: "fails with the learned set", from: chown, run: needsAll(chown | c),
			wantErr: ErrStartFails, wantRuns: 1,
		},
		{
			// Either capability will do: the one tried last stays.
			name: "one of two needed", from: a | b | c,
			run: func(_ int, s capability.Set) RunResult {
				return RunResult{Pass: s.Has(capability.Cap(0)) && (s&(b|c) != 0)}
			},
			wantNeeded: a | c, wantRuns: 6,
		},
		{
			// A set that passes when a superset of it failed: the check
			// of the final set finds a member not needed, drops it and
			// checks again.
			name: "a member found not needed by the check", from: a | b | c, maxRuns: 10,
			run: func(_ int, s capability.Set) RunResult {
				return RunResult{Pass: s == a || s == a|b || s == a|b|c}
			},
			wantNeeded: a, wantRuns: 9,
			wantWhy: []string{
				"learned set", "without CAP_CHOWN", "without CAP_KILL", "without CAP_NET_RAW",
				"final set", "final set without CAP_CHOWN", "final set without CAP_KILL",
				"final set", "final set without CAP_CHOWN",
			},
		},
		{
			name: "the default budget is too small for a search that starts over", from: a | b | c,
			run: func(_ int, s capability.Set) RunResult {
				return RunResult{Pass: s == a || s == a|b || s == a|b|c}
			},
			wantErr: ErrBudget, wantRuns: DefaultMaxRuns(3),
		},
		{
			name: "out of runs", from: learned, run: needsAll(nginx), maxRuns: 5,
			wantErr: ErrBudget, wantRuns: 5,
		},
		{
			name: "the final set fails once more", from: chown,
			run: func(call int, s capability.Set) RunResult {
				if call == 3 {
					return RunResult{Exit: 1}
				}
				return needsAll(chown)(call, s)
			},
			wantErr: ErrUnsteady, wantRuns: 3,
		},
		{
			name: "a run that cannot be judged fails", from: chown,
			run: func(int, capability.Set) RunResult {
				return RunResult{Pass: true, Exit: -1, Err: errors.New("timed out")}
			},
			wantErr: ErrStartFails, wantRuns: 1,
		},
		{
			name: "cancelled", from: learned, run: needsAll(nginx), cancelAt: 3,
			wantErr: context.Canceled, wantRuns: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			var progress []int
			m := &Minimizer{
				MaxRuns: tt.maxRuns,
				Run: func(_ context.Context, s capability.Set) RunResult {
					calls++
					if calls == tt.cancelAt {
						cancel()
					}
					r := tt.run(calls, s)
					r.Took = time.Millisecond
					return r
				},
				Progress: func(n int, _ Trial) { progress = append(progress, n) },
			}
			res, err := m.Minimize(ctx, tt.from)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(res.Trials) != tt.wantRuns || len(progress) != tt.wantRuns {
				t.Fatalf("%d trials (%d reported), want %d: %+v", len(res.Trials), len(progress), tt.wantRuns, res.Trials)
			}
			if tt.wantErr == nil && res.Needed != tt.wantNeeded {
				t.Fatalf("needed %s, want %s", res.Needed, tt.wantNeeded)
			}
			if tt.wantErr == nil && tt.wantRuns > DefaultMaxRuns(tt.from.Len()) && tt.maxRuns == 0 {
				t.Fatalf("took %d runs, over the default budget", tt.wantRuns)
			}
			if tt.wantWhy != nil {
				var why []string
				for _, tr := range res.Trials {
					why = append(why, tr.Why)
				}
				if !slices.Equal(why, tt.wantWhy) {
					t.Fatalf("runs were for\n  %s\nwant\n  %s", strings.Join(why, "\n  "), strings.Join(tt.wantWhy, "\n  "))
				}
			}
			for i, tr := range res.Trials {
				if tr.TookMS != 1 || tr.Caps == nil {
					t.Errorf("trial %d: %+v", i+1, tr)
				}
			}
			if tt.wantErr == nil {
				// The evidence: the final set passed in the last run
				// made with it, and without each member it failed.
				last := map[string]bool{}
				for _, tr := range res.Trials {
					last[strings.Join(tr.Caps, ",")] = tr.Pass
				}
				if !last[strings.Join(res.Needed.Names(), ",")] {
					t.Errorf("no passing run with the needed set")
				}
				for _, c := range res.Needed.Caps() {
					less := strings.Join((res.Needed &^ capability.Of(c)).Names(), ",")
					if pass, ok := last[less]; !ok || pass {
						t.Errorf("no failing run without %s", c)
					}
				}
			}
		})
	}
}

func TestRuleVerified(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	base := func() *Profile {
		return &Profile{
			Name: "nginx", Containers: 1, Runs: 1, FirstSeen: at, LastSeen: at,
			Observation: Observation{Complete: true,
				Used: map[string]uint64{"CAP_CHOWN": 2, "CAP_DAC_OVERRIDE": 1, "CAP_SETGID": 1, "CAP_SETUID": 1}},
		}
	}
	verified := &Verification{
		Needed: []string{"CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"},
		From:   []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_SETGID", "CAP_SETUID"},
		Runs:   7, At: at.Add(time.Hour),
	}
	tests := []struct {
		name     string
		change   func(p *Profile)
		want     []string
		wantNot  []string
		wantKeep capability.Set
	}{
		{
			name:     "learned only",
			change:   func(*Profile) {},
			want:     []string{`keep = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_SETGID", "CAP_SETUID"]`},
			wantNot:  []string{"verified"},
			wantKeep: caps(t, "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_SETGID", "CAP_SETUID"),
		},
		{
			name:   "verified",
			change: func(p *Profile) { p.Verified = verified },
			want: []string{
				"# used: CAP_CHOWN (2), CAP_DAC_OVERRIDE (1), CAP_SETGID (1), CAP_SETUID (1)\n",
				"# verified by 7 runs on 2026-12-01: the workload passes with exactly keep and fails without any one of it\n",
				"# used but not needed: CAP_DAC_OVERRIDE\n",
				"[[rule]]\nname = \"nginx\"\n" + `keep = ["CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"]` + "\n",
			},
			wantNot:  []string{"unverified"},
			wantKeep: caps(t, "CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"),
		},
		{
			name: "everything needed",
			change: func(p *Profile) {
				v := *verified
				v.From = v.Needed
				p.Verified = &v
				delete(p.Used, "CAP_DAC_OVERRIDE")
			},
			want:     []string{"# used but not needed: none\n"},
			wantKeep: caps(t, "CAP_CHOWN", "CAP_SETGID", "CAP_SETUID"),
		},
		{
			// Another container used more after the verification: what
			// no run showed the workload can do without stays.
			name: "learned more since",
			change: func(p *Profile) {
				p.Verified = verified
				p.Used["CAP_NET_RAW"] = 1
				p.FileCaps = map[string][]string{"/bin/ping": {"CAP_NET_RAW"}}
			},
			want: []string{
				"# learned since the verification, kept unverified: CAP_NET_RAW\n",
				`keep = ["CAP_CHOWN", "CAP_SETGID", "CAP_SETUID", "CAP_NET_RAW"]`,
			},
			wantKeep: caps(t, "CAP_CHOWN", "CAP_SETGID", "CAP_SETUID", "CAP_NET_RAW"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base()
			tt.change(p)
			rule := p.Rule()
			for _, w := range tt.want {
				if !strings.Contains(rule, w) {
					t.Errorf("rule lacks %q:\n%s", w, rule)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(rule, w) {
					t.Errorf("rule has %q:\n%s", w, rule)
				}
			}
			if got := p.Keep(); got != tt.wantKeep {
				t.Errorf("Keep() = %s, want %s", got, tt.wantKeep)
			}
		})
	}
}

// TestUpdateVerified: a verification recorded under the lock is read back
// with the profile, and later merges keep it.
func TestUpdateVerified(t *testing.T) {
	s := &Store{Dir: t.TempDir() + "/state"}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if _, err := s.Update("web", func(*Profile) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update of a missing profile: %v", err)
	}
	if _, err := s.Merge("web", "c1", Observation{Used: map[string]uint64{"CAP_CHOWN": 1, "CAP_KILL": 1}, Complete: true}, nil, at); err != nil {
		t.Fatal(err)
	}
	v := &Verification{Needed: []string{"CAP_CHOWN"}, From: []string{"CAP_CHOWN", "CAP_KILL"}, Runs: 4, At: at,
		Trials: []Trial{{Caps: []string{"CAP_CHOWN", "CAP_KILL"}, Why: "learned set", Pass: true, Output: "OK"}}}
	if _, err := s.Update("web", func(p *Profile) error { p.Verified = v; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Merge("web", "c2", Observation{Used: map[string]uint64{"CAP_CHOWN": 1}, Complete: true}, nil, at); err != nil {
		t.Fatal(err)
	}
	p, err := s.Profile("web")
	if err != nil {
		t.Fatal(err)
	}
	if p.Verified == nil || p.Verified.Runs != 4 || len(p.Verified.Trials) != 1 || p.Keep() != caps(t, "CAP_CHOWN") || p.Runs != 2 {
		t.Fatalf("profile after update and merge: %+v (verified %+v)", p, p.Verified)
	}
	wantErr := errors.New("no")
	if _, err := s.Update("web", func(p *Profile) error { p.Verified = nil; return wantErr }); !errors.Is(err, wantErr) {
		t.Fatalf("Update passed on %v", err)
	}
	if p, _ := s.Profile("web"); p.Verified == nil {
		t.Fatal("a failed update was written")
	}
}
