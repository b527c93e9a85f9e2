package spec

import (
	"bytes"
	"slices"

	"github.com/capshim/capshim/capability"
)

// Tidy reduces in to target and makes the result consistent, the way the
// kernel and runc need it: effective ⊆ permitted ⊆ bounding and
// ambient ⊆ permitted ∩ inheritable. Every result set is a subset of the
// same input set and of target.
func Tidy(in Sets, target capability.Set) Sets {
	var out Sets
	out[Bounding] = in[Bounding] & target
	out[Permitted] = in[Permitted] & target & out[Bounding]
	out[Effective] = in[Effective] & target & out[Permitted]
	out[Inheritable] = in[Inheritable] & target
	out[Ambient] = in[Ambient] & target & out[Permitted] & out[Inheritable]
	return out
}

// Reduce returns the document with every capability set reduced to target
// (see Tidy) and the sets it now holds. A set whose content does not change
// keeps its bytes; a changed set is written as a JSON array of canonical
// names in their original order, laid out like the original array. When
// nothing changes, Reduce returns the input slice itself.
func (d *Doc) Reduce(target capability.Set) ([]byte, Sets) {
	return d.splice(Tidy(d.Sets(), target))
}

// ReduceWithin is Reduce with a ceiling per set: every result set is also a
// subset of the same set of ceiling. It is how a process started in a
// running container is held to what the container's own process got.
func (d *Doc) ReduceWithin(target capability.Set, ceiling Sets) ([]byte, Sets) {
	return d.splice(Tidy(d.Sets().Within(ceiling), target))
}

// Union is every capability in any of the sets.
func (s Sets) Union() capability.Set {
	var u capability.Set
	for _, c := range s {
		u |= c
	}
	return u
}

// Within returns s with every set limited to the same set of ceiling.
func (s Sets) Within(ceiling Sets) Sets {
	for i := range s {
		s[i] &= ceiling[i]
	}
	return s
}

// splice writes the sets out into the document.
func (d *Doc) splice(out Sets) ([]byte, Sets) {
	var buf []byte
	last := 0
	// The sets are spliced in document order.
	order := d.setOrder()
	for _, s := range order {
		f := &d.sets[s]
		kept := keptNames(f.names, out[s])
		if slices.Equal(kept, f.names) {
			continue
		}
		if buf == nil {
			buf = make([]byte, 0, len(d.raw))
		}
		buf = append(buf, d.raw[last:f.start]...)
		buf = renderArray(buf, d.raw[f.start:f.end], kept)
		last = f.end
	}
	if buf == nil {
		return d.raw, out
	}
	return append(buf, d.raw[last:]...), out
}

// setOrder lists the present sets by their position in the document.
func (d *Doc) setOrder() []Set {
	order := make([]Set, 0, NumSets)
	for s := Bounding; s < NumSets; s++ {
		if !d.sets[s].present {
			continue
		}
		i := len(order)
		order = append(order, s)
		for i > 0 && d.sets[order[i-1]].start > d.sets[s].start {
			order[i] = order[i-1]
			i--
		}
		order[i] = s
	}
	return order
}

// keptNames filters names down to the canonical members of keep, in order,
// without duplicates.
func keptNames(names []string, keep capability.Set) []string {
	var seen capability.Set
	out := make([]string, 0, len(names))
	for _, n := range names {
		c, ok := capability.Exact(n)
		if !ok || !keep.Has(c) || seen.Has(c) {
			continue
		}
		seen = seen.Add(c)
		out = append(out, c.String())
	}
	return out
}

// renderArray appends a JSON array of names, reusing the white space of
// the original array so an indented document stays indented.
func renderArray(buf, orig []byte, names []string) []byte {
	var first, next, closing []byte
	if len(orig) > 0 && orig[0] == '[' {
		i := 1
		for i < len(orig) && isSpace(orig[i]) {
			i++
		}
		first = orig[1:i]
		j := len(orig) - 1
		for j > i && isSpace(orig[j-1]) {
			j--
		}
		closing = orig[j : len(orig)-1]
		next = first
		if k := bytes.IndexByte(orig, ','); k >= 0 {
			m := k + 1
			for m < len(orig) && isSpace(orig[m]) {
				m++
			}
			next = orig[k+1 : m]
		}
	}
	buf = append(buf, '[')
	if len(names) == 0 {
		return append(buf, ']')
	}
	for i, n := range names {
		if i == 0 {
			buf = append(buf, first...)
		} else {
			buf = append(buf, ',')
			buf = append(buf, next...)
		}
		buf = append(buf, '"')
		buf = append(buf, n...) // canonical names need no escaping
		buf = append(buf, '"')
	}
	buf = append(buf, closing...)
	return append(buf, ']')
}
