package policy

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// The decoder fills the schema but does not say where a value came from,
// and some mistakes (a [rule] table, a value of the wrong type deep in a
// rule) it either accepts or reports without the rule they are in. The
// helpers here read the policy again with go-toml's own parser, which
// gives the byte range of every key and value, to name the line, the key
// and the kind of value in an error. Apart from looseRule, they run only
// to explain an error.

// entry is one key a policy sets: a key/value (each key inside an inline
// table is an entry of its own), a table header, or one inline table of a
// rule = [...] array.
type entry struct {
	// path is the whole key from the top of the document, e.g. rule,
	// match, annotations, team.
	path []string
	// rule is the index of the rule the key belongs to, or -1.
	rule int
	// kind is KeyValue, Table or ArrayTable (a header), or InlineTable
	// (one element of rule = [...]).
	kind unstable.Kind
	// key is where the key is written, from its first part to its last;
	// for an element of rule = [...], its opening brace.
	key unstable.Range
	// value is the value of a key/value, else nil.
	value *unstable.Node
}

// walk parses data with p and calls fn with every entry in document order
// until fn returns false. It returns the parser's error, if any. An entry
// and its nodes are valid only during the call; p keeps the document, so
// p.Shape works on the ranges afterwards.
func walk(p *unstable.Parser, data []byte, fn func(*entry) bool) error {
	p.Reset(data)
	var table []string
	rules := -1 // index of the last [[rule]] header
	ruleOf := func(path []string) int {
		if len(path) > 0 && strings.EqualFold(path[0], "rule") {
			return rules
		}
		return -1
	}
	var visit func(prefix []string, rule int, kv *unstable.Node) bool
	visit = func(prefix []string, rule int, kv *unstable.Node) bool {
		parts, r := keyOf(kv)
		path := append(slices.Clip(prefix), parts...)
		v := kv.Value()
		if !fn(&entry{path: path, rule: rule, kind: unstable.KeyValue, key: r, value: v}) {
			return false
		}
		switch {
		case v.Kind == unstable.InlineTable:
			for it := v.Children(); it.Next(); {
				if !visit(path, rule, it.Node()) {
					return false
				}
			}
		case v.Kind == unstable.Array && len(path) == 1 && strings.EqualFold(path[0], "rule"):
			// rule = [{...}, {...}]: each inline table is one rule.
			i := 0
			for it := v.Children(); it.Next(); i++ {
				el := it.Node()
				if el.Kind != unstable.InlineTable {
					continue
				}
				if !fn(&entry{path: path, rule: i, kind: unstable.InlineTable, key: el.Raw}) {
					return false
				}
				for c := el.Children(); c.Next(); {
					if !visit(path, i, c.Node()) {
						return false
					}
				}
			}
		}
		return true
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, r := keyOf(e)
			table = parts
			if e.Kind == unstable.ArrayTable && len(parts) == 1 && strings.EqualFold(parts[0], "rule") {
				rules++
			}
			if !fn(&entry{path: parts, rule: ruleOf(parts), kind: e.Kind, key: r}) {
				return nil
			}
		case unstable.KeyValue:
			// A top-level rule.x (table is empty) is in no rule.
			if !visit(table, ruleOf(table), e) {
				return nil
			}
		}
	}
	return p.Error()
}

// keyOf returns the parts of the key of a key/value or header node and the
// range from its first part to its last.
func keyOf(n *unstable.Node) ([]string, unstable.Range) {
	var parts []string
	var r unstable.Range
	for it := n.Key(); it.Next(); {
		k := it.Node()
		if len(parts) == 0 {
			r = k.Raw
		} else {
			r.Length = k.Raw.Offset + k.Raw.Length - r.Offset
		}
		parts = append(parts, string(k.Data))
	}
	return parts, r
}

// sameKey reports whether a key of the document is the schema key want.
// The decoder matches struct fields regardless of case, so this does too,
// except for annotation names, which are map keys.
func sameKey(got, want []string) bool {
	return len(got) == len(want) && hasPrefix(got, want)
}

// hasPrefix reports whether key starts with prefix, compared as sameKey
// does.
func hasPrefix(key, prefix []string) bool {
	if len(prefix) > len(key) {
		return false
	}
	for i, p := range prefix {
		annotation := i == 3 && strings.EqualFold(key[0], "rule")
		if annotation && key[i] != p || !annotation && !strings.EqualFold(key[i], p) {
			return false
		}
	}
	return true
}

// whereKey returns the line where a policy sets path: a key of the rule with
// index rule, or a top-level key when rule is -1. A key a rule leaves out
// gives the line of the nearest table header of that rule that would hold
// it (at least the rule's own). It returns 0 when it finds neither.
func whereKey(data []byte, rule int, path ...string) int {
	return position(data, rule, -1, path)
}

// whereElem returns the line of element elem of the array that path is set
// to, or whereKey's line when there is no such element.
func whereElem(data []byte, rule, elem int, path ...string) int {
	return position(data, rule, elem, path)
}

func position(data []byte, rule, elem int, path []string) int {
	full := path
	if rule >= 0 {
		full = append([]string{"rule"}, path...)
	}
	var p unstable.Parser
	var at unstable.Range
	best := -1 // length of the best match so far; exact key/values win
	walk(&p, data, func(e *entry) bool {
		if e.rule != rule {
			return true
		}
		switch {
		case e.kind == unstable.KeyValue && sameKey(e.path, full):
			// The last one wins: it is the one the decoder kept when keys
			// differ only in case.
			at, best = e.key, len(full)+1
			if el := child(e.value, elem); el != nil && el.Kind == unstable.String {
				at = el.Raw
			}
		case e.kind != unstable.KeyValue && len(e.path) > best && hasPrefix(full, e.path):
			at, best = e.key, len(e.path)
		}
		return true
	})
	if best < 0 {
		return 0
	}
	return p.Shape(at).Start.Line
}

// child returns element i of an array node, or nil.
func child(v *unstable.Node, i int) *unstable.Node {
	if v == nil || v.Kind != unstable.Array || i < 0 {
		return nil
	}
	it := v.Children()
	for n := 0; it.Next(); n++ {
		if n == i {
			return it.Node()
		}
	}
	return nil
}

// keyAt returns the whole key of the entry whose key starts at offset, or
// nil. The decoder's own key for an unknown key inside an inline table
// leaves out the table's name; this one has it.
func keyAt(data []byte, offset int) []string {
	var p unstable.Parser
	var key []string
	walk(&p, data, func(e *entry) bool {
		if int(e.key.Offset) == offset && e.kind != unstable.InlineTable {
			key = e.path
			return false
		}
		return true
	})
	return key
}

// offsetOf converts a 1-based line and byte column into an offset in data,
// or -1.
func offsetOf(data []byte, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return -1
		}
		off += i + 1
	}
	if off += col - 1; col < 1 || off > len(data) {
		return -1
	}
	return off
}

// What the values of shim.toml must be, worded for "it must be ...".
const (
	wantString = `a string in quotes`
	wantBool   = `true or false`
	wantList   = `a list of capability names, e.g. ["CAP_CHOWN", "CAP_SETUID"]`
	wantRules  = `[[rule]] tables`
	wantTable  = `a table: [rule.match.annotations] followed by "annotation" = "glob" lines`
	wantGlob   = `a glob in quotes, e.g. "web-*" (write a dotted annotation name in quotes: "io.kubernetes.cri.sandbox-namespace" = "...")`
)

// checkShape returns a LoadError for the first key, in document order,
// whose value is not of the kind shim.toml takes there, or nil. Unknown
// keys are left to the decoder's strict mode. A document the parser
// refuses gives nil.
func checkShape(data []byte, source string) *LoadError {
	var p unstable.Parser
	var lerr *LoadError
	walk(&p, data, func(e *entry) bool {
		m, ok := misfit(e)
		if ok {
			return true
		}
		lerr = &LoadError{Path: source, Line: p.Shape(m.at).Start.Line, Key: formatKey(e.path[:m.n]),
			Msg: fmt.Sprintf("is %s; it must be %s (see shim.toml.example)", m.is, m.want)}
		return false
	})
	return lerr
}

// looseRule reports whether a policy sets rule keys outside [[rule]]
// tables: a [rule] table, a [rule.x] table before the first [[rule]], or a
// top-level rule.x key. The decoder takes each as a one-rule array, and
// nothing else it accepts breaks the schema, so a policy the decoder took
// needs only this check, which reads the top-level expressions without
// building keys.
func looseRule(data []byte) bool {
	var p unstable.Parser
	p.Reset(data)
	headers, rules := false, false
	for p.NextExpression() {
		e := p.Expression()
		if e.Kind != unstable.Table && e.Kind != unstable.ArrayTable && e.Kind != unstable.KeyValue {
			continue
		}
		it := e.Key()
		if !it.Next() {
			continue
		}
		isRule := bytes.EqualFold(it.Node().Data, []byte("rule"))
		dotted := it.Next()
		switch e.Kind {
		case unstable.KeyValue:
			if isRule && dotted && !headers {
				return true
			}
			continue
		case unstable.ArrayTable:
			if isRule && !dotted {
				rules = true
			} else if isRule && !rules {
				return true
			}
		case unstable.Table:
			if isRule && (!dotted || !rules) {
				return true
			}
		}
		headers = true
	}
	return false
}

// mismatch is a key whose value has the wrong kind.
type mismatch struct {
	n    int            // the key is the entry's path[:n]
	is   string         // what the value is
	want string         // what it must be
	at   unstable.Range // where to point
}

// misfit checks one entry against the schema of shim.toml.
func misfit(e *entry) (mismatch, bool) {
	p := e.path
	is := func(i int, names ...string) bool {
		if len(p) <= i {
			return false
		}
		for _, n := range names {
			if strings.EqualFold(p[i], n) {
				return true
			}
		}
		return false
	}
	switch {
	case is(0, "runtime", "mode", "on_denied_request", "log", "state_dir"):
		return leaf(e, 1, wantString, unstable.String)
	case is(0, "explain", "engine_requests"):
		return leaf(e, 1, wantBool, unstable.Bool)
	case is(0, "default", "never"):
		return leaf(e, 1, wantList, unstable.Array)
	case is(0, "rule"):
		if len(p) == 1 {
			switch e.kind {
			case unstable.ArrayTable, unstable.InlineTable:
				return mismatch{}, true
			case unstable.Table:
				return mismatch{n: 1, is: "a table", want: wantRules, at: e.key}, false
			}
			if e.value.Kind == unstable.Array {
				all := true
				for it := e.value.Children(); it.Next(); {
					all = all && it.Node().Kind == unstable.InlineTable
				}
				if all {
					return mismatch{}, true
				}
			}
			what, at := describe(e.value, unstable.InlineTable)
			return mismatch{n: 1, is: what, want: wantRules, at: orKey(at, e)}, false
		}
		if e.rule < 0 {
			// rule.x at the top level, or [rule.x] before any [[rule]]:
			// rule becomes a table.
			return mismatch{n: 1, is: "a table", want: wantRules, at: e.key}, false
		}
		switch {
		case is(1, "name", "mode"):
			return leaf(e, 2, wantString, unstable.String)
		case is(1, "learn"):
			return leaf(e, 2, wantBool, unstable.Bool)
		case is(1, "capabilities", "keep", "grant"):
			return leaf(e, 2, wantList, unstable.Array)
		case is(1, "match"):
			if len(p) == 2 {
				return table(e, 2)
			}
			if is(2, "annotations") {
				if len(p) == 3 {
					return table(e, 3)
				}
				return leaf(e, 4, wantGlob, unstable.String)
			}
		}
	}
	return mismatch{}, true
}

// leaf checks an entry whose path[:n] must be a string (kind String) or a
// list of capability names (kind Array).
func leaf(e *entry, n int, want string, kind unstable.Kind) (mismatch, bool) {
	switch {
	case len(e.path) > n:
		// A dotted key or a header below the key makes it a table.
		return mismatch{n: n, is: "a table", want: want, at: e.key}, false
	case e.kind == unstable.Table:
		return mismatch{n: n, is: "a table", want: want, at: e.key}, false
	case e.kind == unstable.ArrayTable:
		return mismatch{n: n, is: "an array of tables", want: want, at: e.key}, false
	}
	if e.value.Kind == kind {
		if kind != unstable.Array {
			return mismatch{}, true
		}
		all := true
		for it := e.value.Children(); it.Next(); {
			all = all && it.Node().Kind == unstable.String
		}
		if all {
			return mismatch{}, true
		}
	}
	what, at := describe(e.value, unstable.String)
	return mismatch{n: n, is: what, want: want, at: orKey(at, e)}, false
}

// table checks an entry whose path must be a table.
func table(e *entry, n int) (mismatch, bool) {
	switch {
	case e.kind == unstable.Table || e.kind == unstable.KeyValue && e.value.Kind == unstable.InlineTable:
		return mismatch{}, true
	case e.kind == unstable.ArrayTable:
		return mismatch{n: n, is: "an array of tables", want: wantTable, at: e.key}, false
	}
	what, at := describe(e.value, unstable.String)
	return mismatch{n: n, is: what, want: wantTable, at: orKey(at, e)}, false
}

// describe names the TOML kind of a value. For an array that holds
// elements of another kind than elem, it names the first such element and
// returns the element's range (else a zero range).
func describe(v *unstable.Node, elem unstable.Kind) (string, unstable.Range) {
	switch v.Kind {
	case unstable.String:
		return "a string", unstable.Range{}
	case unstable.Integer:
		return "an integer", unstable.Range{}
	case unstable.Float:
		return "a float", unstable.Range{}
	case unstable.Bool:
		return "a boolean", unstable.Range{}
	case unstable.InlineTable:
		return "a table", unstable.Range{}
	case unstable.Array:
		for it := v.Children(); it.Next(); {
			el := it.Node()
			if el.Kind == elem {
				continue
			}
			what, _ := describe(el, unstable.String)
			switch el.Kind {
			case unstable.String:
				what += " (" + strconv.Quote(string(el.Data)) + ")"
			case unstable.Array, unstable.InlineTable:
			default:
				// The literal as written, e.g. 21 or true.
				what += " (" + string(el.Data) + ")"
			}
			return "an array holding " + what, el.Raw
		}
		return "an array", unstable.Range{}
	}
	return "a date or time", unstable.Range{}
}

// orKey returns r, or the entry's key when r is empty (arrays have no
// range of their own).
func orKey(r unstable.Range, e *entry) unstable.Range {
	if r.Length == 0 {
		return e.key
	}
	return r
}

// syntaxKey returns the whole key of the expression the parser stopped in
// (a key/value or a table header), or nil when the parser cannot read one.
//
// The parser says where it stopped, which for an unterminated array can
// be lines below the key, but not in which key. It does say where each
// expression before it ends; between two expressions there are only
// blanks, newlines and a header's closing brackets, so the failing one
// starts at the next other byte. Its key is then read by the parser
// itself, as the name of a table header.
func syntaxKey(data []byte) []string {
	p := unstable.Parser{KeepComments: true}
	p.Reset(data)
	var table []string
	end, brackets := 0, 0
	for p.NextExpression() {
		e := p.Expression()
		brackets = 0
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, r := keyOf(e)
			table = parts
			end = int(r.Offset + r.Length)
			brackets = 1
			if e.Kind == unstable.ArrayTable {
				brackets = 2
			}
		case unstable.KeyValue, unstable.Comment:
			end = int(e.Raw.Offset + e.Raw.Length)
		}
		if c := e.Next(); c != nil && c.Kind == unstable.Comment {
			end, brackets = int(c.Raw.Offset+c.Raw.Length), 0
		}
	}
	start := skip(data, end, " \t")
	for ; brackets > 0 && start < len(data) && data[start] == ']'; brackets-- {
		start++
	}
	start = skip(data, start, " \t\r\n")
	header := 0
	for header < 2 && start < len(data) && data[start] == '[' {
		start++
		header++
	}
	start = skip(data, start, " \t")
	key := headerKey(data[start:])
	if key == nil || header > 0 {
		return key
	}
	return append(slices.Clip(table), key...)
}

// skip returns the offset of the first byte at or after i that is not in
// set.
func skip(data []byte, i int, set string) int {
	for i < len(data) && strings.IndexByte(set, data[i]) >= 0 {
		i++
	}
	return i
}

// headerKey reads the key at the start of b with the parser, by handing it
// "[" + b as a table header: where the header fails (at the "=" of a
// key/value, say) is where the key ends. It returns nil when b does not
// start with a key.
func headerKey(b []byte) []string {
	probe := append([]byte("["), b...)
	var p unstable.Parser
	p.Reset(probe)
	if p.NextExpression() {
		if e := p.Expression(); e.Kind == unstable.Table {
			parts, _ := keyOf(e)
			return parts
		}
		return nil
	}
	var perr *unstable.ParserError
	if !errors.As(p.Error(), &perr) {
		return nil
	}
	// The highlight is a part of probe (the parser's Range does this
	// arithmetic too, but panics where this gives up).
	end := cap(probe) - cap(perr.Highlight)
	if end < 1 || end > len(probe) {
		return nil
	}
	// Up to there the probe is a table name; when the key was a header's,
	// its closing bracket may already be in it.
	head := probe[:end:end]
	for _, h := range [][]byte{append(head, ']'), head} {
		p.Reset(h)
		if p.NextExpression() && p.Expression().Kind == unstable.Table {
			parts, _ := keyOf(p.Expression())
			return parts
		}
	}
	return nil
}

// formatKey writes a key as TOML does, quoting the parts that are not bare
// keys.
func formatKey(parts []string) string {
	var b strings.Builder
	for i, k := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		if k != "" && strings.IndexFunc(k, func(r rune) bool {
			return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		}) < 0 {
			b.WriteString(k)
		} else {
			b.WriteString(strconv.Quote(k))
		}
	}
	return b.String()
}
