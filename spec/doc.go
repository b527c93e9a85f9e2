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
	"errors"
	"fmt"
	"strings"

	"github.com/capshim/capshim/capability"
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

// Sets holds one capability.Set per capability set.
type Sets [NumSets]capability.Set

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
	// MaskedPaths reports whether config.json hides paths from the
	// container (linux.maskedPaths holds at least one): every engine
	// writes some, except for a privileged container. It is true only
	// when the document spells both keys exactly, once each; anything
	// else reads as no masked paths.
	MaskedPaths bool
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
	linux := 0
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
		case readAs(key, "linux"):
			// Only looked at, never refused: the runtime decides what a
			// strange linux object means, and a spelling capshim does
			// not take exactly only makes MaskedPaths false.
			linux++
			if key != "linux" || linux > 1 || p.data[p.pos] != '{' {
				d.MaskedPaths = false
				return p.value(depth)
			}
			return p.object(depth, d.linuxMember)
		}
		return p.value(depth)
	}
}

// linuxMember notes whether linux.maskedPaths is a non-empty array.
func (d *Doc) linuxMember() member {
	seen := 0
	return func(p *parser, key string, depth int) error {
		if readAs(key, "maskedPaths") {
			seen++
			start := p.pos
			if err := p.value(depth); err != nil {
				return err
			}
			d.MaskedPaths = seen == 1 && key == "maskedPaths" && nonEmptyArray(p.data[start:p.pos])
			return nil
		}
		return p.value(depth)
	}
}

// nonEmptyArray reports whether a validated JSON value is an array with at
// least one element.
func nonEmptyArray(v []byte) bool {
	if len(v) < 2 || v[0] != '[' {
		return false
	}
	for _, c := range v[1:] {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c != ']'
	}
	return false
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
			if c, ok := capability.Exact(n); ok {
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
			if _, ok := capability.Exact(n); !ok {
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
