package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/capshim/capshim"
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
func Builtin() *Policy {
	p, err := Parse(capshim.DefaultPolicy, BuiltinSource)
	if err != nil {
		panic("policy: the built-in default does not load: " + err.Error())
	}
	return p
}

// LoadFile reads and parses a policy file.
func LoadFile(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &LoadError{Path: path, Msg: fmt.Sprintf("cannot read the policy: %v", err)}
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
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, &LoadError{Path: source, Line: perr.Position.Line, Key: perr.LastKey,
				Msg: perr.Message + " (fix the TOML syntax; see shim.toml.example)"}
		}
		return nil, &LoadError{Path: source, Msg: err.Error()}
	}
	src := string(data)
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return nil, &LoadError{Path: source, Line: lineOfKey(src, k), Key: k.String(),
			Msg: "unknown key; the keys are runtime, mode, default, never, on_denied_request, log and [[rule]] with name, capabilities and [rule.match.annotations]"}
	}
	p := &Policy{Source: source, Runtime: f.Runtime, Log: f.Log}
	bad := func(key toml.Key, format string, args ...any) error {
		return &LoadError{Path: source, Line: lineOfKey(src, key), Key: key.String(), Msg: fmt.Sprintf(format, args...)}
	}

	if f.Runtime != "" && !filepath.IsAbs(f.Runtime) {
		return nil, bad(toml.Key{"runtime"}, "%q is not an absolute path; write the full path of the real runtime, e.g. \"/usr/bin/runc\", or leave runtime out to use runc on PATH", f.Runtime)
	}
	switch Mode(f.Mode) {
	case "", Enforce:
		p.Mode = Enforce
	case Audit:
		p.Mode = Audit
	default:
		return nil, bad(toml.Key{"mode"}, "%q is not a mode; use \"enforce\" or \"audit\"", f.Mode)
	}
	switch f.OnDeniedRequest {
	case "", "drop":
	case "fail":
		p.FailOnDenied = true
	default:
		return nil, bad(toml.Key{"on_denied_request"}, "%q is not allowed; use \"drop\" or \"fail\"", f.OnDeniedRequest)
	}
	if f.Log != "" && !filepath.IsAbs(f.Log) {
		return nil, bad(toml.Key{"log"}, "%q is not an absolute path; give the full path of the decision log, or \"\" for none", f.Log)
	}

	caps := func(key toml.Key, names []string) (spec.CapSet, error) {
		var set spec.CapSet
		for _, n := range names {
			c, ok := spec.Lookup(n)
			if !ok {
				return 0, bad(key, "%q is not a Linux capability; `capshim caps` lists them", n)
			}
			set = set.Add(c)
		}
		return set, nil
	}
	p.Default = spec.OCIDefault
	if f.Default != nil {
		if p.Default, err = caps(toml.Key{"default"}, *f.Default); err != nil {
			return nil, err
		}
	}
	p.Never, _ = spec.ParseList([]string{"CAP_SYS_ADMIN", "CAP_SYS_MODULE"})
	if f.Never != nil {
		if p.Never, err = caps(toml.Key{"never"}, *f.Never); err != nil {
			return nil, err
		}
	}
	if both := p.Default & p.Never; both != 0 {
		return nil, bad(toml.Key{"default"}, "lists %s, which never forbids; remove it from one of the two", both)
	}

	names := map[string]bool{}
	for i, r := range f.Rule {
		at := func(k string) toml.Key { return toml.Key{"rule", fmt.Sprint(i), k} }
		label := fmt.Sprintf("rule %d", i+1)
		if r.Name != "" {
			label = fmt.Sprintf("rule %q", r.Name)
		}
		if r.Name == "" {
			return nil, bad(at("name"), "%s has no name; give every rule a name = \"...\" (it appears in the decision log)", label)
		}
		if names[r.Name] {
			return nil, bad(at("name"), "%s appears twice; rule names must be unique", label)
		}
		names[r.Name] = true
		set, err := caps(at("capabilities"), r.Capabilities)
		if err != nil {
			return nil, err
		}
		if set == 0 {
			return nil, bad(at("capabilities"), "%s grants nothing; list the capabilities it lets containers ask for", label)
		}
		if both := set & p.Never; both != 0 {
			return nil, bad(at("capabilities"), "%s lists %s, which never forbids; no rule may grant it", label, both)
		}
		rule := Rule{Name: r.Name, Capabilities: set}
		for k, g := range r.Match.Annotations {
			if err := checkGlob(g); err != nil {
				return nil, bad(at("match"), "%s: the glob %q for annotation %q %v", label, g, k, err)
			}
			rule.Annotations = append(rule.Annotations, Match{Key: k, Glob: g})
		}
		sortMatches(rule.Annotations)
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

// lineOfKey finds the line where a key is set, for error messages: for
// rule keys ("rule", N, key) the key after the N-th [[rule]] header. It
// returns 0 when it cannot tell.
func lineOfKey(src string, k toml.Key) int {
	lines := strings.Split(src, "\n")
	from, key := 0, k[len(k)-1]
	if n, err := strconv.Atoi(k[1%len(k)]); err == nil && len(k) >= 3 && k[0] == "rule" {
		seen := -1
		for i, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), "[[rule]]") {
				seen++
				if seen == n {
					from = i + 1
					break
				}
			}
		}
		if seen != n {
			return 0
		}
		if key == "match" {
			return from
		}
	}
	for i := from; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if i > from && strings.HasPrefix(l, "[") && from > 0 && !strings.HasPrefix(l, "[rule.match") {
			break
		}
		if rest, ok := strings.CutPrefix(l, key); ok {
			rest = strings.TrimSpace(rest)
			if strings.HasPrefix(rest, "=") {
				return i + 1
			}
		}
		if l == "["+key+"]" || l == "[["+key+"]]" {
			return i + 1
		}
	}
	return 0
}
