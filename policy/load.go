package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/capshim/capshim/spec"
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
	Log             string     `toml:"log"`
	Rule            []fileRule `toml:"rule"`
}

type fileRule struct {
	Name         string   `toml:"name"`
	Capabilities []string `toml:"capabilities"`
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
		Default: spec.OCIDefault,
		Never:   1<<21 | 1<<16, // CAP_SYS_ADMIN, CAP_SYS_MODULE
	}
}

// LoadFile reads and parses a policy file.
func LoadFile(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &LoadError{Path: path, Msg: fmt.Sprintf("cannot read the policy: %v; name a readable policy file (see shim.toml.example)", err)}
	}
	return Parse(data, path)
}

// LoadDefault loads DefaultPath, or the built-in default when that file
// does not exist. Any other failure is an error: a policy that exists but
// cannot be read is never silently replaced.
func LoadDefault() (*Policy, error) {
	p, err := LoadFile(DefaultPath)
	if err != nil {
		if _, statErr := os.Lstat(DefaultPath); errors.Is(statErr, os.ErrNotExist) {
			return Builtin(), nil
		}
		return nil, err
	}
	return p, nil
}

// Parse parses policy text; source names it in errors.
func Parse(data []byte, source string) (*Policy, error) {
	var f file
	src := string(data)
	md, err := toml.Decode(src, &f)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, &LoadError{Path: source, Line: perr.Position.Line, Key: perr.LastKey,
				Msg: perr.Message + " (fix the TOML syntax; see shim.toml.example)"}
		}
		// A value of the wrong type: BurntSushi/toml reports it without a
		// usable position, so find it ourselves.
		if lerr := checkTypes(src, source); lerr != nil {
			return nil, lerr
		}
		return nil, &LoadError{Path: source, Msg: err.Error() + " (see shim.toml.example)"}
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return nil, &LoadError{Path: source, Line: undecodedLine(src, k), Key: k.String(),
			Msg: "unknown key; the keys are runtime, mode, default, never, on_denied_request, log and [[rule]] with name, capabilities and [rule.match.annotations]"}
	}
	p := &Policy{Source: source, Runtime: f.Runtime, Log: f.Log}
	bad := func(key string, format string, args ...any) error {
		return &LoadError{Path: source, Line: lineOf(src, key), Key: key, Msg: fmt.Sprintf(format, args...)}
	}

	if f.Runtime != "" && !filepath.IsAbs(f.Runtime) {
		return nil, bad("runtime", "%q is not an absolute path; write the full path of the real runtime, e.g. \"/usr/bin/runc\", or leave runtime out to use runc on PATH", f.Runtime)
	}
	switch Mode(f.Mode) {
	case "", Enforce:
		p.Mode = Enforce
	case Audit:
		p.Mode = Audit
	default:
		return nil, bad("mode", "%q is not a mode; use \"enforce\" or \"audit\"", f.Mode)
	}
	switch f.OnDeniedRequest {
	case "", "drop":
	case "fail":
		p.FailOnDenied = true
	default:
		return nil, bad("on_denied_request", "%q is not allowed; use \"drop\" or \"fail\"", f.OnDeniedRequest)
	}
	if f.Log != "" && !filepath.IsAbs(f.Log) {
		return nil, bad("log", "%q is not an absolute path; give the full path of the decision log, or \"\" for none", f.Log)
	}

	caps := func(names []string, fail func(format string, args ...any) error) (spec.CapSet, error) {
		var set spec.CapSet
		for _, n := range names {
			c, ok := spec.Lookup(n)
			if !ok {
				return 0, fail("%q is not a Linux capability; `capshim caps` lists them", n)
			}
			set = set.Add(c)
		}
		return set, nil
	}
	topBad := func(key string) func(string, ...any) error {
		return func(format string, args ...any) error { return bad(key, format, args...) }
	}
	p.Default = spec.OCIDefault
	if f.Default != nil {
		if p.Default, err = caps(*f.Default, topBad("default")); err != nil {
			return nil, err
		}
	}
	p.Never, _ = spec.ParseList([]string{"CAP_SYS_ADMIN", "CAP_SYS_MODULE"})
	if f.Never != nil {
		if p.Never, err = caps(*f.Never, topBad("never")); err != nil {
			return nil, err
		}
	}
	if both := p.Default & p.Never; both != 0 {
		if f.Default == nil {
			// The file has no default key: the conflict is with the
			// built-in default, and never is what the file says.
			return nil, bad("never", "lists %s, which is in the default set (default is not set, so it is %s); remove it from never or set default", both, spec.OCIDefault)
		}
		return nil, bad("default", "lists %s, which never forbids; remove it from one of the two", both)
	}

	names := map[string]bool{}
	for i, r := range f.Rule {
		ruleBad := func(path []string, format string, args ...any) error {
			return &LoadError{Path: source, Line: ruleLine(src, i, path), Key: toml.Key(append([]string{"rule"}, path...)).String(),
				Msg: fmt.Sprintf(format, args...)}
		}
		label := fmt.Sprintf("rule %d", i+1)
		if r.Name != "" {
			label = fmt.Sprintf("rule %q", r.Name)
		}
		if r.Name == "" {
			return nil, ruleBad([]string{"name"}, "%s has no name; give every rule a name = \"...\" (it appears in the decision log)", label)
		}
		if names[r.Name] {
			return nil, ruleBad([]string{"name"}, "%s appears twice; rule names must be unique", label)
		}
		names[r.Name] = true
		set, err := caps(r.Capabilities, func(format string, args ...any) error {
			return ruleBad([]string{"capabilities"}, label+": "+format, args...)
		})
		if err != nil {
			return nil, err
		}
		if set == 0 {
			return nil, ruleBad([]string{"capabilities"}, "%s grants nothing; list the capabilities it lets containers ask for", label)
		}
		if both := set & p.Never; both != 0 {
			return nil, ruleBad([]string{"capabilities"}, "%s lists %s, which never forbids; no rule may grant it", label, both)
		}
		rule := Rule{Name: r.Name, Capabilities: set}
		for k, g := range r.Match.Annotations {
			rule.Annotations = append(rule.Annotations, Match{Key: k, Glob: g})
		}
		sortMatches(rule.Annotations) // deterministic: the first bad glob in key order
		for _, m := range rule.Annotations {
			if err := checkGlob(m.Glob); err != nil {
				return nil, ruleBad([]string{"match", "annotations", m.Key}, "%s: the glob %q for annotation %q %v", label, m.Glob, m.Key, err)
			}
		}
		p.Rules = append(p.Rules, rule)
	}
	return p, nil
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

// checkTypes finds the first value of the wrong type in a policy that is
// valid TOML, in a fixed order (top-level keys, then each rule), and
// returns a LoadError for it, or nil.
func checkTypes(src, source string) error {
	var raw map[string]any
	if _, err := toml.Decode(src, &raw); err != nil {
		return nil
	}
	wrong := func(line int, key toml.Key, want string, v any) error {
		return &LoadError{Path: source, Line: line, Key: key.String(),
			Msg: fmt.Sprintf("is %s; it must be %s (see shim.toml.example)", tomlType(v), want)}
	}
	const str = `a string in quotes`
	const list = `a list of capability names, e.g. ["CAP_CHOWN", "CAP_SETUID"]`
	for _, k := range []string{"runtime", "mode", "on_denied_request", "log", "default", "never", "rule"} {
		v, ok := raw[k]
		if !ok {
			continue
		}
		switch k {
		case "default", "never":
			if !isStringList(v) {
				return wrong(lineOf(src, k), toml.Key{k}, list, v)
			}
		case "rule":
			if _, ok := v.([]map[string]any); !ok {
				return wrong(lineOf(src, k), toml.Key{k}, `[[rule]] tables`, v)
			}
		default:
			if _, ok := v.(string); !ok {
				return wrong(lineOf(src, k), toml.Key{k}, str, v)
			}
		}
	}
	rules, _ := raw["rule"].([]map[string]any)
	for i, r := range rules {
		at := func(path ...string) (int, toml.Key) {
			return ruleLine(src, i, path), append(toml.Key{"rule"}, path...)
		}
		if v, ok := r["name"]; ok {
			if _, ok := v.(string); !ok {
				line, key := at("name")
				return wrong(line, key, str, v)
			}
		}
		if v, ok := r["capabilities"]; ok && !isStringList(v) {
			line, key := at("capabilities")
			return wrong(line, key, list, v)
		}
		v, ok := r["match"]
		if !ok {
			continue
		}
		match, ok := v.(map[string]any)
		if !ok {
			line, key := at("match")
			return wrong(line, key, `a table: [rule.match.annotations] followed by "annotation" = "glob" lines`, v)
		}
		v, ok = match["annotations"]
		if !ok {
			continue
		}
		ann, ok := v.(map[string]any)
		if !ok {
			line, key := at("match", "annotations")
			return wrong(line, key, `a table: [rule.match.annotations] followed by "annotation" = "glob" lines`, v)
		}
		keys := make([]string, 0, len(ann))
		for k := range ann {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if _, ok := ann[k].(string); !ok {
				line, key := at("match", "annotations", k)
				return wrong(line, key, `a glob in quotes, e.g. "web-*" (write a dotted annotation name in quotes: "io.kubernetes.cri.sandbox-namespace" = "...")`, ann[k])
			}
		}
	}
	return nil
}

func isStringList(v any) bool {
	l, ok := v.([]any)
	if !ok {
		return false
	}
	for _, e := range l {
		if _, ok := e.(string); !ok {
			return false
		}
	}
	return true
}

// tomlType names the TOML type of a decoded value.
func tomlType(v any) string {
	switch v := v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		for _, e := range v {
			if _, ok := e.(string); !ok {
				return fmt.Sprintf("an array holding %s (%v)", tomlType(e), e)
			}
		}
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	return "a date or time"
}

// section is one part of a TOML file: the top level (name "") or a table.
type section struct {
	name       string // dotted table name, e.g. "rule.match.annotations"
	array      bool   // [[name]]
	header     int    // line of the header (1-based), 0 for the top level
	start, end int    // the lines after the header: [start, end), 0-based
}

// sections splits src at its table headers. It is a line scanner good
// enough for error messages, not a TOML parser.
func sections(lines []string) []section {
	secs := []section{{}}
	for i, l := range lines {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "[") {
			continue
		}
		if c := strings.IndexByte(l, '#'); c >= 0 {
			l = l[:c]
		}
		l = strings.Join(strings.Fields(l), "")
		array := strings.HasPrefix(l, "[[") && strings.HasSuffix(l, "]]")
		name := strings.TrimSuffix(strings.TrimPrefix(l, "["), "]")
		if array {
			name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
		}
		if strings.ContainsAny(name, "[]") {
			continue // not a header (a multi-line array, say)
		}
		secs[len(secs)-1].end = i
		secs = append(secs, section{name: name, array: array, header: i + 1, start: i + 1})
	}
	secs[len(secs)-1].end = len(lines)
	return secs
}

// keyLine returns the line (1-based) in lines[s.start:s.end] that sets key,
// or 0.
func keyLine(lines []string, s section, key string) int {
	forms := []string{strconv.Quote(key), "'" + key + "'"}
	if key != "" && strings.IndexFunc(key, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) < 0 {
		forms = append(forms, key)
	}
	for i := s.start; i < s.end; i++ {
		l := strings.TrimSpace(lines[i])
		for _, f := range forms {
			// "key =", or a dotted key "key.sub =" that makes key a table.
			if rest, ok := strings.CutPrefix(l, f); ok && strings.IndexAny(strings.TrimSpace(rest), "=.") == 0 {
				return i + 1
			}
		}
	}
	return 0
}

// find returns the line that sets path (a dotted key: the last element is
// the key, the others its table) among secs, or 0.
func find(lines []string, secs []section, prefix string, path []string) int {
	table := strings.Join(append([]string{prefix}, path[:len(path)-1]...), ".")
	table = strings.TrimPrefix(table, ".")
	full := strings.TrimPrefix(table+"."+path[len(path)-1], ".")
	for _, s := range secs {
		if s.name == table {
			if n := keyLine(lines, s, path[len(path)-1]); n > 0 {
				return n
			}
		}
		if s.name == full && s.header > 0 {
			return s.header
		}
	}
	return 0
}

// ruleGroups splits secs into the sections of each [[rule]] (its header
// section first, then its [rule.*] sub-tables).
func ruleGroups(secs []section) [][]section {
	var groups [][]section
	in := false
	for _, s := range secs {
		switch {
		case s.name == "rule" && s.array:
			groups = append(groups, []section{s})
			in = true
		case in && strings.HasPrefix(s.name, "rule."):
			groups[len(groups)-1] = append(groups[len(groups)-1], s)
		default:
			in = false
		}
	}
	return groups
}

// lineOf finds the line where a top-level key is set, for error messages.
// It returns 0 when it cannot tell.
func lineOf(src string, key string) int {
	lines := strings.Split(src, "\n")
	return find(lines, sections(lines)[:1], "", []string{key})
}

// ruleLine finds the line where path (e.g. "name", or "match",
// "annotations", KEY) is set in the rule-th [[rule]]; when the key is
// absent, the line of its table header, else of the [[rule]] header. It
// returns 0 when it cannot tell.
func ruleLine(src string, rule int, path []string) int {
	lines := strings.Split(src, "\n")
	groups := ruleGroups(sections(lines))
	if rule >= len(groups) {
		return 0
	}
	g := groups[rule]
	if n := find(lines, g, "rule", path); n > 0 {
		return n
	}
	for k := len(path) - 1; k > 0; k-- {
		table := "rule." + strings.Join(path[:k], ".")
		for _, s := range g {
			if s.name == table {
				return s.header
			}
		}
	}
	return g[0].header
}

// undecodedLine finds the line of an unknown key reported by the decoder,
// which does not say in which [[rule]] it is: the first one that sets it.
func undecodedLine(src string, k toml.Key) int {
	lines := strings.Split(src, "\n")
	secs := sections(lines)
	if len(k) > 1 && k[0] == "rule" {
		for _, g := range ruleGroups(secs) {
			if n := find(lines, g, "rule", k[1:]); n > 0 {
				return n
			}
		}
		return 0
	}
	return find(lines, secs, "", k)
}
