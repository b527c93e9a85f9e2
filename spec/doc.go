// Package spec reads and reduces the capability sets of OCI runtime specs
// (a bundle's config.json, or the process.json of `runc exec --process`)
// without touching anything else in them.
//
// A spec is never decoded into specs.Spec or interface{}: both lose data
// (unknown fields, integers above 2^53). Instead Parse walks the bytes once,
// validating the JSON grammar, and remembers where the five capability
// arrays are; Reduce splices new arrays in at exactly those places. Every
// other byte of the document is copied as it was.
//
// Parse reads the document the way runc does (Go's encoding/json decoding
// into specs.Spec): object keys match case-insensitively, escapes are
// decoded, capability names must be exact. crun reads the same bytes
// differently: its JSON tree (yajl through libocispec) compares keys as C
// strings, so a key stops at its first \u0000; the first of two equal keys
// wins, where encoding/json keeps the last; and capability names go through
// libcap, which also takes "cap_sys_admin", "21" or "CAP_SYS_ADMIN,x".
// Where any supported runtime could read a key on the path to the
// capability sets as a different key (a key given twice, a key that matches
// only in case or only up to a NUL, data after the document) Parse refuses
// the document, and Reduce writes back only exactly spelled names, so no
// spec can carry capabilities past capshim that a real runtime would honour.
package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind says which document a spec is.
type Kind int

const (
	// Config is a bundle's config.json: capabilities live in
	// process.capabilities.
	Config Kind = iota
	// Process is a process.json for `runc exec --process`: the document is
	// the process, capabilities live in capabilities.
	Process
)

// Set indexes the five capability sets, in runtime-spec order.
type Set int

// The five capability sets of a process.
const (
	Bounding Set = iota
	Effective
	Inheritable
	Permitted
	Ambient
	NumSets
)

var setNames = [NumSets]string{"bounding", "effective", "inheritable", "permitted", "ambient"}

// String is the set's JSON key.
func (s Set) String() string { return setNames[s] }

// Sets holds one CapSet per capability set.
type Sets [NumSets]CapSet

// maxDepth is the nesting limit of Go's encoding/json, which runc uses: a
// deeper document is refused by both.
const maxDepth = 10000

// SyntaxError is a JSON document that is not well formed.
type SyntaxError struct {
	Offset int // byte offset of the problem
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// capField is one capability array of the document.
type capField struct {
	present    bool
	start, end int      // byte range of the value (the array, or null)
	names      []string // the strings as runc decodes them
}

// Doc is a parsed spec. Its byte slice must not be modified while the Doc
// is in use.
type Doc struct {
	raw  []byte
	kind Kind
	sets [NumSets]capField
	in   Sets // the sets as the runtime reads them

	// Annotations are the spec's annotations (config.json only).
	Annotations map[string]string
	// Env is the process environment.
	Env []string
	// HasCapabilities reports whether the document has a capabilities
	// object (absent or null means the runtime grants none).
	HasCapabilities bool
}

// Parse reads a spec of the given kind. It returns a *SyntaxError for
// malformed JSON and a descriptive error for a document runc would read
// differently from capshim, or would refuse.
func Parse(data []byte, kind Kind) (*Doc, error) {
	d := &Doc{raw: data, kind: kind}
	p := parser{data: data}
	p.ws()
	if p.pos >= len(data) {
		return nil, p.errf("empty document")
	}
	if data[p.pos] != '{' {
		if err := p.value(0); err != nil {
			return nil, err
		}
		return nil, errors.New("the document is not a JSON object")
	}
	var err error
	if kind == Process {
		err = p.object(0, d.processMember)
	} else {
		err = p.object(0, d.configMember)
	}
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.pos != len(data) {
		return nil, p.errf("data after the end of the document (runc would ignore it, capshim refuses it)")
	}
	d.in = d.exactSets()
	return d, nil
}

// member handles one object member: key is the decoded key, p.pos is at the
// value. It must consume the value.
type member func(p *parser, key string, depth int) error

// fieldTracker refuses keys that runc and crun would read differently:
// duplicates (encoding/json keeps the last, crun the first) and keys that
// only one runtime would take for a spec field: a key that matches only
// case-insensitively (runc reads it, crun does not) or only up to a NUL
// character (crun reads it, runc does not).
type fieldTracker struct{ seen uint8 }

func (f *fieldTracker) claim(key, want string, bit uint8, where string) error {
	if key != want {
		if i := strings.IndexByte(key, 0); i >= 0 {
			return fmt.Errorf("%s: key %q holds a NUL character (\\u0000): crun would read it as %q, runc would not; write it as %q", where, key, key[:i], want)
		}
		return fmt.Errorf("%s: key %q differs from %q only in case: runc would read it, other runtimes would not; write it as %q", where, key, want, want)
	}
	if f.seen&bit != 0 {
		return fmt.Errorf("%s: key %q appears twice: runtimes disagree on which one counts; keep only one", where, want)
	}
	f.seen |= bit
	return nil
}

// readAs reports whether some supported runtime could take key for the spec
// field want: runc matches case-insensitively (encoding/json folding), crun
// compares the key as a C string, which ends at its first NUL. Both are
// checked together, folded, so a key either is exactly want or is refused.
func readAs(key, want string) bool {
	if i := strings.IndexByte(key, 0); i >= 0 {
		key = key[:i]
	}
	return equalFold(key, want)
}

func (d *Doc) configMember() member {
	var t fieldTracker
	return func(p *parser, key string, depth int) error {
		switch {
		case readAs(key, "process"):
			if err := t.claim(key, "process", 1, "config.json"); err != nil {
				return err
			}
			return p.objectOrNull(depth, "process", d.processMember)
		case readAs(key, "annotations"):
			if err := t.claim(key, "annotations", 2, "config.json"); err != nil {
				return err
			}
			return d.annotations(p, depth)
		}
		return p.value(depth)
	}
}

func (d *Doc) processMember() member {
	var t fieldTracker
	where := "process"
	if d.kind == Process {
		where = "process.json"
	}
	return func(p *parser, key string, depth int) error {
		switch {
		case readAs(key, "capabilities"):
			if err := t.claim(key, "capabilities", 1, where); err != nil {
				return err
			}
			if p.peekNull() {
				return p.value(depth)
			}
			d.HasCapabilities = true
			return p.objectOrNull(depth, "process.capabilities", d.capsMember)
		case readAs(key, "env"):
			if err := t.claim(key, "env", 2, where); err != nil {
				return err
			}
			env, err := p.stringArray(depth, "process.env")
			d.Env = env
			return err
		}
		return p.value(depth)
	}
}

func (d *Doc) capsMember() member {
	var t fieldTracker
	return func(p *parser, key string, depth int) error {
		for s := Bounding; s < NumSets; s++ {
			if !readAs(key, setNames[s]) {
				continue
			}
			if err := t.claim(key, setNames[s], 1<<s, "process.capabilities"); err != nil {
				return err
			}
			f := &d.sets[s]
			f.present = true
			f.start = p.pos
			names, err := p.stringArray(depth, "process.capabilities."+setNames[s])
			f.end = p.pos
			f.names = names
			return err
		}
		return p.value(depth)
	}
}

// annotations reads the annotations object (map[string]string in runc:
// keys are exact, the last duplicate wins).
func (d *Doc) annotations(p *parser, depth int) error {
	if p.peekNull() {
		return p.value(depth)
	}
	if p.data[p.pos] != '{' {
		return fmt.Errorf("config.json: annotations is not an object")
	}
	d.Annotations = map[string]string{}
	return p.object(depth, func() member {
		return func(p *parser, key string, depth int) error {
			if p.peekNull() { // null into a string leaves it empty
				d.Annotations[key] = ""
				return p.value(depth)
			}
			if p.data[p.pos] != '"' {
				return fmt.Errorf("config.json: annotation %q is not a string", key)
			}
			s, err := p.stringValue()
			d.Annotations[key] = s
			return err
		}
	})
}

// Sets returns the five sets as the runtime will grant them: only exactly
// spelled, known names count.
func (d *Doc) Sets() Sets { return d.in }

// exactSets computes Sets once, at the end of Parse.
func (d *Doc) exactSets() Sets {
	var in Sets
	for s := range d.sets {
		for _, n := range d.sets[s].names {
			if c, ok := Exact(n); ok {
				in[s] = in[s].Add(c)
			}
		}
	}
	return in
}

// Names returns the strings of one set as written in the document
// (decoded), and whether the set is present at all.
func (d *Doc) Names(s Set) ([]string, bool) {
	return d.sets[s].names, d.sets[s].present
}

// Unknown returns, per set, the names that are not exactly a known
// capability name. The runtime ignores them; Reduce drops them.
func (d *Doc) Unknown() [NumSets][]string {
	var out [NumSets][]string
	for s := range d.sets {
		for _, n := range d.sets[s].names {
			if _, ok := Exact(n); !ok {
				out[s] = append(out[s], n)
			}
		}
	}
	return out
}

// Dropped lists, per set, what reducing the document to out (as returned
// by Reduce) removes: the capabilities, then the names that are not
// capabilities.
func (d *Doc) Dropped(out Sets) [NumSets][]string {
	dropped := d.Unknown()
	for s := range dropped {
		dropped[s] = append((d.in[s] &^ out[s]).Names(), dropped[s]...)
	}
	return dropped
}

// Tidy reduces in to target and makes the result consistent, the way the
// kernel and runc need it: effective ⊆ permitted ⊆ bounding and
// ambient ⊆ permitted ∩ inheritable. Every result set is a subset of the
// same input set and of target.
func Tidy(in Sets, target CapSet) Sets {
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
func (d *Doc) Reduce(target CapSet) ([]byte, Sets) {
	return d.splice(Tidy(d.Sets(), target))
}

// ReduceWithin is Reduce with a ceiling per set: every result set is also a
// subset of the same set of ceiling. It is how a process started in a
// running container is held to what the container's own process got.
func (d *Doc) ReduceWithin(target CapSet, ceiling Sets) ([]byte, Sets) {
	return d.splice(Tidy(d.Sets().Within(ceiling), target))
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
		if sameStrings(kept, f.names) {
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
func keptNames(names []string, keep CapSet) []string {
	var seen CapSet
	out := make([]string, 0, len(names))
	for _, n := range names {
		c, ok := Exact(n)
		if !ok || !keep.Has(c) || seen.Has(c) {
			continue
		}
		seen = seen.Add(c)
		out = append(out, c.String())
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
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

// equalFold is encoding/json's key matching: bytes.EqualFold on the
// decoded key (so "PROCESS" and "proceſs" match "process").
func equalFold(key, field string) bool {
	return strings.EqualFold(key, field)
}

// parser walks JSON bytes. It accepts exactly what encoding/json accepts.
type parser struct {
	data []byte
	pos  int
}

func (p *parser) errf(format string, args ...any) error {
	return &SyntaxError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) ws() {
	for p.pos < len(p.data) && isSpace(p.data[p.pos]) {
		p.pos++
	}
}

// peekNull reports whether the value at p.pos is the literal null.
func (p *parser) peekNull() bool {
	return bytes.HasPrefix(p.data[p.pos:], []byte("null"))
}

// value validates and skips any JSON value at p.pos (after white space).
func (p *parser) value(depth int) error {
	p.ws()
	if p.pos >= len(p.data) {
		return p.errf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth, func() member {
			return func(p *parser, _ string, depth int) error { return p.value(depth) }
		})
	case c == '[':
		return p.array(depth, func(p *parser, depth int) error { return p.value(depth) })
	case c == '"':
		_, _, err := p.str()
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return p.errf("unexpected character %q", c)
	}
}

func (p *parser) literal(lit string) error {
	if !bytes.HasPrefix(p.data[p.pos:], []byte(lit)) {
		return p.errf("invalid literal (expected %s)", lit)
	}
	p.pos += len(lit)
	return nil
}

func (p *parser) number() error {
	d := p.data
	i := p.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		p.pos = i
		return p.errf("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.pos = i
			return p.errf("invalid number: no digit after the decimal point")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.pos = i
			return p.errf("invalid number: no digit in the exponent")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	p.pos = i
	return nil
}

// str validates the string at p.pos and returns the byte range of its
// contents (without quotes) and whether it needs decoding (escapes or
// non-ASCII bytes).
func (p *parser) str() (start int, complex bool, err error) {
	d := p.data
	p.pos++ // opening quote
	start = p.pos
	for p.pos < len(d) {
		c := d[p.pos]
		switch {
		case c == '"':
			p.pos++
			return start, complex, nil
		case c == '\\':
			complex = true
			p.pos++
			if p.pos >= len(d) {
				return 0, false, p.errf("unexpected end of input in string escape")
			}
			switch d[p.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.pos++
			case 'u':
				p.pos++
				for k := 0; k < 4; k++ {
					if p.pos >= len(d) || !isHex(d[p.pos]) {
						return 0, false, p.errf("invalid \\u escape in string")
					}
					p.pos++
				}
			default:
				return 0, false, p.errf("invalid escape %q in string", d[p.pos])
			}
		case c < 0x20:
			return 0, false, p.errf("control character %#x in string", c)
		default:
			if c >= utf8.RuneSelf {
				complex = true
			}
			p.pos++
		}
	}
	return 0, false, p.errf("unexpected end of input in string")
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// stringValue reads a string at p.pos and decodes it as encoding/json does
// (escapes decoded, invalid UTF-8 replaced by U+FFFD).
func (p *parser) stringValue() (string, error) {
	begin := p.pos
	start, complex, err := p.str()
	if err != nil {
		return "", err
	}
	if !complex {
		return string(p.data[start : p.pos-1]), nil
	}
	var s string
	if err := json.Unmarshal(p.data[begin:p.pos], &s); err != nil {
		return "", fmt.Errorf("decoding string at byte %d: %w", begin, err)
	}
	return s, nil
}

// object walks the object at p.pos, calling the member handler made by mk
// for every member.
func (p *parser) object(depth int, mk func() member) error {
	depth++
	if depth > maxDepth {
		return p.errf("nesting deeper than %d", maxDepth)
	}
	p.pos++ // {
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return nil
	}
	handle := mk()
	for {
		p.ws()
		if p.pos >= len(p.data) {
			return p.errf("unexpected end of input in object")
		}
		if p.data[p.pos] != '"' {
			return p.errf("expected a string for an object key, found %q", p.data[p.pos])
		}
		key, err := p.stringValue()
		if err != nil {
			return err
		}
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return p.errf("expected ':' after object key")
		}
		p.pos++
		p.ws()
		if p.pos >= len(p.data) {
			return p.errf("unexpected end of input in object")
		}
		if err := handle(p, key, depth); err != nil {
			return err
		}
		p.ws()
		if p.pos >= len(p.data) {
			return p.errf("unexpected end of input in object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return nil
		default:
			return p.errf("expected ',' or '}' in object, found %q", p.data[p.pos])
		}
	}
}

// objectOrNull walks an object, or skips null; any other value is refused
// (runc could not decode it either).
func (p *parser) objectOrNull(depth int, name string, mk func() member) error {
	if p.peekNull() {
		return p.value(depth)
	}
	if p.data[p.pos] != '{' {
		if err := p.value(depth); err != nil {
			return err
		}
		return fmt.Errorf("%s is not a JSON object", name)
	}
	return p.object(depth, mk)
}

// array walks the array at p.pos, calling elem for every element.
func (p *parser) array(depth int, elem func(p *parser, depth int) error) error {
	depth++
	if depth > maxDepth {
		return p.errf("nesting deeper than %d", maxDepth)
	}
	p.pos++ // [
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return nil
	}
	for {
		p.ws()
		if p.pos >= len(p.data) {
			return p.errf("unexpected end of input in array")
		}
		if err := elem(p, depth); err != nil {
			return err
		}
		p.ws()
		if p.pos >= len(p.data) {
			return p.errf("unexpected end of input in array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return nil
		default:
			return p.errf("expected ',' or ']' in array, found %q", p.data[p.pos])
		}
	}
}

// stringArray reads null or an array of strings ([]string in runc: a null
// element decodes to ""). Anything else is refused.
func (p *parser) stringArray(depth int, name string) ([]string, error) {
	if p.peekNull() {
		return nil, p.value(depth)
	}
	if p.data[p.pos] != '[' {
		if err := p.value(depth); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s is not an array of strings", name)
	}
	out := []string{}
	err := p.array(depth, func(p *parser, depth int) error {
		switch {
		case p.data[p.pos] == '"':
			s, err := p.stringValue()
			out = append(out, s)
			return err
		case p.peekNull():
			out = append(out, "")
			return p.value(depth)
		default:
			at := p.pos
			if err := p.value(depth); err != nil {
				return err
			}
			return fmt.Errorf("%s: element at byte %d is not a string", name, at)
		}
	})
	return out, err
}
