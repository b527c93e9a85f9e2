package capability

import "github.com/capshim/capshim/internal/safetext"

// ShowNames bounds a list of names for a log line or a report. Capability names are
// kept, each once: there are only 41 of them, and a report of what was
// dropped must not lose one. Of the other names (whatever a spec or a
// request holds) the first safetext.MaxNames are kept, each escaped and
// cut by safetext.Name. A last entry says how many were left out.
func ShowNames(names []string) []string {
	out := make([]string, 0, min(len(names), NumCaps+safetext.MaxNames+1))
	var seen Set
	others, left := 0, 0
	for _, n := range names {
		if c, ok := Exact(n); ok {
			if seen.Has(c) {
				left++
				continue
			}
			seen = seen.Add(c)
			out = append(out, n)
			continue
		}
		if others == safetext.MaxNames {
			left++
			continue
		}
		others++
		out = append(out, safetext.Name(n))
	}
	if left > 0 {
		out = append(out, safetext.More(left))
	}
	return out
}
