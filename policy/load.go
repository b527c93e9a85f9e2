package policy

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/capshim/capshim/capability"
)

// DefaultPath is where capshim looks for its policy when none is named.
const DefaultPath = "/etc/capshim/shim.toml"

// BuiltinSource is the Source of the embedded default policy.
const BuiltinSource = "built-in default policy"

// file is the schema of shim.toml. Pointers tell an absent key from an
// empty one.
type file struct {
	Runtime         string     `toml:"runtime"`
	Mode            string     `toml:"mode"`
	Default         *[]string  `toml:"default"`
	Never           *[]string  `toml:"never"`
	OnDeniedRequest string     `toml:"on_denied_request"`
	Log             *string    `toml:"log"`
	StateDir        string     `toml:"state_dir"`
	Explain         *bool      `toml:"explain"`
	EngineRequests  *bool      `toml:"engine_requests"`
	Rule            []fileRule `toml:"rule"`
}

type fileRule struct {
	Name         string    `toml:"name"`
	Capabilities []string  `toml:"capabilities"`
	Keep         *[]string `toml:"keep"`
	Grant        []string  `toml:"grant"`
	Mode         string    `toml:"mode"`
	Learn        bool      `toml:"learn"`
	Match        struct {
		Annotations map[string]string `toml:"annotations"`
	} `toml:"match"`
}

// LoadError is a policy that cannot be used. Its message names the file,
// the line or key, and what to do.
type LoadError struct {
	Path string
	Line int    // 0 when unknown
	Key  string // "" when not about one key
	Msg  string
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		fmt.Fprintf(&b, "%s: ", e.Key)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Builtin returns the embedded default policy (shim.toml.example).
//
// It is built directly rather than parsed, since runtime calls without a
// policy file use it every time; TestBuiltin checks that it equals
// Parse(shim.toml.example).
func Builtin() *Policy {
	return &Policy{
		Source:  BuiltinSource,
		Mode:    Enforce,
		Default: capability.OCIDefault,
		Never:   capability.Of(capability.SysAdmin, capability.SysModule),
		Log:     DefaultLog,
		Explain: true,

		EngineRequests: true,
	}
}

// Parse parses policy text; source names it in errors.
func Parse(data []byte, source string) (*Policy, error) {
	var f file
	if !fastDecode(data, &f) {
		f = file{}
		if err := decodeFile(data, &f); err != nil {
			return nil, decodeError(data, source, err)
		}
	}
	if len(f.Rule) > 0 && looseRule(data) {
		// The decoder takes a [rule] table (or rule.name = ...) as a
		// one-rule array; shim.toml has only [[rule]] tables.
		if lerr := checkShape(data, source); lerr != nil {
			return nil, lerr
		}
		return nil, &LoadError{Path: source, Key: "rule", Msg: "is a table; it must be " + wantRules + " (see shim.toml.example)"}
	}
	p := &Policy{Source: source, Runtime: f.Runtime, Log: DefaultLog}
	bad := func(line int, key string, format string, args ...any) error {
		return &LoadError{Path: source, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	topBad := func(key string, format string, args ...any) error {
		return bad(whereKey(data, -1, key), key, format, args...)
	}

	if f.Runtime != "" && !filepath.IsAbs(f.Runtime) {
		return nil, topBad("runtime", "%q is not an absolute path; write the full path of the real runtime, e.g. \"/usr/bin/runc\", or leave runtime out to use runc on PATH", f.Runtime)
	}
	switch Mode(f.Mode) {
	case "", Enforce:
		p.Mode = Enforce
	case Audit:
		p.Mode = Audit
	default:
		return nil, topBad("mode", "%q is not a mode; use \"enforce\" or \"audit\"", f.Mode)
	}
	switch f.OnDeniedRequest {
	case "", "drop":
	case "fail":
		p.FailOnDenied = true
	default:
		return nil, topBad("on_denied_request", "%q is not allowed; use \"drop\" or \"fail\"", f.OnDeniedRequest)
	}
	if f.Log != nil {
		p.Log = *f.Log
		switch {
		case p.Log != "" && !filepath.IsAbs(p.Log):
			return nil, topBad("log", "%q is not an absolute path; give the full path of the decision log, leave log out for %s, or write \"\" for none", p.Log, DefaultLog)
		case p.Log != "" && strings.HasSuffix(p.Log, "/") || p.Log != "" && (filepath.Base(p.Log) == ".." || filepath.Base(p.Log) == "."):
			return nil, topBad("log", "%q names a directory; give the path of the log file in it (for example %q), or \"\" for none", p.Log, filepath.Join(p.Log, "decisions.log"))
		}
	}
	p.StateDir = f.StateDir
	if f.StateDir != "" && !filepath.IsAbs(f.StateDir) {
		return nil, topBad("state_dir", "%q is not an absolute path; give the full path of capshim's state directory, or leave it out for %s", f.StateDir, DefaultStateDir)
	}
	p.Explain = f.Explain == nil || *f.Explain
	p.EngineRequests = f.EngineRequests == nil || *f.EngineRequests

	const notCap = "%q is not a Linux capability; `capshim caps` lists them"
	p.Default = capability.OCIDefault
	if f.Default != nil {
		var i int
		if p.Default, i = capList(*f.Default); i >= 0 {
			return nil, bad(whereElem(data, -1, i, "default"), "default", notCap, (*f.Default)[i])
		}
	}
	p.Never, _ = capability.ParseList([]string{"CAP_SYS_ADMIN", "CAP_SYS_MODULE"})
	if f.Never != nil {
		var i int
		if p.Never, i = capList(*f.Never); i >= 0 {
			return nil, bad(whereElem(data, -1, i, "never"), "never", notCap, (*f.Never)[i])
		}
	}
	if both := p.Default & p.Never; both != 0 {
		if f.Default == nil {
			// The file has no default key: the conflict is with the
			// built-in default, and never is what the file says.
			return nil, bad(whereElem(data, -1, firstIn(*f.Never, both), "never"), "never",
				"lists %s, which is in the default set (default is not set, so it is %s); remove it from never or set default", both, capability.OCIDefault)
		}
		return nil, bad(whereElem(data, -1, firstIn(*f.Default, both), "default"), "default",
			"lists %s, which never forbids; remove it from one of the two", both)
	}

	names := map[string]bool{}
	for i, r := range f.Rule {
		ruleBad := func(line int, path []string, format string, args ...any) error {
			return bad(line, formatKey(append([]string{"rule"}, path...)), format, args...)
		}
		at := func(path ...string) int { return whereKey(data, i, path...) }
		label := fmt.Sprintf("rule %d", i+1)
		if r.Name != "" {
			label = fmt.Sprintf("rule %q", r.Name)
		}
		if r.Name == "" {
			return nil, ruleBad(at("name"), []string{"name"}, "%s has no name; give every rule a name = \"...\" (it appears in the decision log)", label)
		}
		if names[r.Name] {
			return nil, ruleBad(at("name"), []string{"name"}, "%s appears twice; rule names must be unique", label)
		}
		names[r.Name] = true
		rule := Rule{Name: r.Name, Learn: r.Learn}
		switch r.Mode {
		case "", string(Enforce):
		case "learn":
			rule.LearnMode = true
		default:
			return nil, ruleBad(at("mode"), []string{"mode"}, "%s: %q is not a rule mode; use \"learn\" (matching containers keep what the engine granted, minus never, and are recorded) or leave it out", label, r.Mode)
		}
		// Each list of capability names: known names, none in never.
		lists := []struct {
			key   string
			names []string
			into  *capability.Set
		}{
			{"capabilities", r.Capabilities, &rule.Capabilities},
			{"grant", r.Grant, &rule.Grant},
		}
		if r.Keep != nil {
			rule.HasKeep = true
			lists = append(lists, struct {
				key   string
				names []string
				into  *capability.Set
			}{"keep", *r.Keep, &rule.Keep})
		}
		for _, l := range lists {
			set, bi := capList(l.names)
			if bi >= 0 {
				return nil, ruleBad(whereElem(data, i, bi, l.key), []string{l.key}, "%s: "+notCap, label, l.names[bi])
			}
			if both := set & p.Never; both != 0 {
				return nil, ruleBad(whereElem(data, i, firstIn(l.names, both), l.key), []string{l.key},
					"%s lists %s, which never forbids; no rule may grant it", label, both)
			}
			*l.into = set
		}
		if rule.Capabilities == 0 && rule.Grant == 0 && !rule.HasKeep && !rule.Learn && !rule.LearnMode {
			return nil, ruleBad(at("capabilities"), []string{"capabilities"}, "%s grants nothing; list the capabilities it lets containers ask for (capabilities), gives them (grant) or keeps (keep), or make it learn", label)
		}
		for k, g := range r.Match.Annotations {
			rule.Annotations = append(rule.Annotations, Match{Key: k, Glob: g})
		}
		sortMatches(rule.Annotations) // deterministic: the first bad glob in key order
		for _, m := range rule.Annotations {
			if err := checkGlob(m.Glob); err != nil {
				path := []string{"match", "annotations", m.Key}
				return nil, ruleBad(at(path...), path, "%s: the glob %q for annotation %q %v", label, m.Glob, m.Key, err)
			}
		}
		p.Rules = append(p.Rules, rule)
	}
	return p, nil
}

// decodeFile decodes with the decoder, which checks every key against the
// schema and knows where each error is.
func decodeFile(data []byte, f *file) error {
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(f)
}

// capList turns capability names into a set. bad is the index of the
// first name that is not a capability, or -1.
func capList(names []string) (set capability.Set, bad int) {
	for i, n := range names {
		c, ok := capability.Lookup(n)
		if !ok {
			return 0, i
		}
		set = set.Add(c)
	}
	return set, -1
}

// firstIn returns the index of the first name whose capability is in set,
// or -1.
func firstIn(names []string, set capability.Set) int {
	for i, n := range names {
		if c, ok := capability.Lookup(n); ok && set.Add(c) == set {
			return i
		}
	}
	return -1
}

// decodeError turns an error of the decoder into a LoadError.
func decodeError(data []byte, source string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		// A top-level rule.name = ... is an unknown key to the decoder,
		// but the fix is [[rule]]: layout errors come first.
		if lerr := checkShape(data, source); lerr != nil {
			return lerr
		}
		// The decoder lists every unknown key in document order; the
		// first is reported.
		e := &strict.Errors[0]
		line, col := e.Position()
		key := keyAt(data, offsetOf(data, line, col))
		if key == nil {
			key = e.Key()
		}
		return &LoadError{Path: source, Line: line, Key: formatKey(key),
			Msg: "unknown key; the keys are runtime, mode, default, never, on_denied_request, log, state_dir, explain, engine_requests and [[rule]] with name, capabilities, grant, keep, mode, learn and [rule.match.annotations]"}
	}
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return &LoadError{Path: source, Msg: fmt.Sprintf("cannot decode the policy: %v (see shim.toml.example)", err)}
	}
	line, col := de.Position()
	msg := oneLine(strings.TrimPrefix(de.Error(), "toml: "))
	if walk(&unstable.Parser{}, data, func(*entry) bool { return true }) != nil {
		// The parser refuses it: a syntax error, at the parser's position.
		return &LoadError{Path: source, Line: line, Key: formatKey(syntaxKey(data)),
			Msg: fmt.Sprintf("column %d: %s (fix the TOML syntax; see shim.toml.example)", col, msg)}
	}
	// Valid TOML the schema does not take: a value of the wrong kind
	// (the decoder names the Go type, and not always the right line).
	if lerr := checkShape(data, source); lerr != nil {
		return lerr
	}
	// A key or table defined twice. The decoder's key leaves out the
	// table of a key/value; the parser's has it.
	key := keyAt(data, offsetOf(data, line, col))
	if key == nil {
		key = de.Key()
	}
	return &LoadError{Path: source, Line: line, Key: formatKey(key),
		Msg: msg + " (fix the TOML syntax; see shim.toml.example)"}
}

// oneLine keeps a message on one log line.
func oneLine(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// sortMatches orders conditions by key so decisions and logs are
// deterministic.
func sortMatches(m []Match) {
	for i := 1; i < len(m); i++ {
		for j := i; j > 0 && m[j].Key < m[j-1].Key; j-- {
			m[j], m[j-1] = m[j-1], m[j]
		}
	}
}
