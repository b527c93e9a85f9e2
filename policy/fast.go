package policy

import (
	"github.com/pelletier/go-toml/v2/unstable"
)

// fastDecode fills f from a policy written in the plain form shim.toml
// documents, walking go-toml's parse tree directly. It exists for speed:
// every runtime call parses the policy in a fresh process, where the
// decoder's first use (building its reflection tables) costs a few tenths
// of a millisecond, and walking the tree costs next to nothing.
//
// It accepts only what it is sure of: lower-case keys of the schema, each
// once, with values of the schema's kinds, [[rule]] tables and their
// [rule.match.annotations] tables. For anything else (a syntax error, an
// unknown or repeated key, a dotted key, an inline table, another spelling
// of a key) it returns false and Parse asks the decoder, which accepts the
// same documents the same way (FuzzParse compares the two) and gives the
// precise error.
func fastDecode(data []byte, f *file) bool {
	var p unstable.Parser
	p.Reset(data)
	var rule *fileRule
	inAnnotations := false
	seen := map[string]bool{}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.KeyValue:
			key, ok := plainKey(e.Key())
			if !ok {
				return false
			}
			v := e.Value()
			switch {
			case inAnnotations:
				if v.Kind != unstable.String || seen["annotation:"+key] {
					return false
				}
				seen["annotation:"+key] = true
				if rule.Match.Annotations == nil {
					rule.Match.Annotations = map[string]string{}
				}
				rule.Match.Annotations[key] = string(v.Data)
			case rule != nil:
				if seen["rule:"+key] || !ruleKey(rule, key, v) {
					return false
				}
				seen["rule:"+key] = true
			default:
				if seen[key] || !topKey(f, key, v) {
					return false
				}
				seen[key] = true
			}
		case unstable.ArrayTable:
			key := tableKey(e)
			if len(key) != 1 || key[0] != "rule" {
				return false
			}
			f.Rule = append(f.Rule, fileRule{})
			rule = &f.Rule[len(f.Rule)-1]
			inAnnotations = false
			for k := range seen {
				if len(k) > 5 && (k[:5] == "rule:" || k[:5] == "annot") {
					delete(seen, k)
				}
			}
		case unstable.Table:
			key := tableKey(e)
			if rule == nil || inAnnotations || len(key) != 3 || key[0] != "rule" || key[1] != "match" || key[2] != "annotations" {
				return false
			}
			inAnnotations = true
		default:
			return false
		}
	}
	return p.Error() == nil
}

// plainKey returns a key of one part.
func plainKey(it unstable.Iterator) (string, bool) {
	if !it.Next() {
		return "", false
	}
	k := string(it.Node().Data)
	if it.Next() {
		return "", false // dotted
	}
	return k, true
}

// tableKey returns the parts of a table header.
func tableKey(e *unstable.Node) []string {
	var parts []string
	for it := e.Key(); it.Next(); {
		parts = append(parts, string(it.Node().Data))
	}
	return parts
}

func topKey(f *file, key string, v *unstable.Node) bool {
	switch key {
	case "runtime", "mode", "on_denied_request", "log", "state_dir":
		if v.Kind != unstable.String {
			return false
		}
		s := string(v.Data)
		switch key {
		case "runtime":
			f.Runtime = s
		case "mode":
			f.Mode = s
		case "on_denied_request":
			f.OnDeniedRequest = s
		case "log":
			f.Log = &s
		case "state_dir":
			f.StateDir = s
		}
	case "default", "never":
		list, ok := stringList(v)
		if !ok {
			return false
		}
		if key == "default" {
			f.Default = &list
		} else {
			f.Never = &list
		}
	case "explain", "engine_requests":
		b, ok := boolValue(v)
		if !ok {
			return false
		}
		if key == "explain" {
			f.Explain = &b
		} else {
			f.EngineRequests = &b
		}
	default:
		return false
	}
	return true
}

func ruleKey(r *fileRule, key string, v *unstable.Node) bool {
	switch key {
	case "name", "mode":
		if v.Kind != unstable.String {
			return false
		}
		if key == "name" {
			r.Name = string(v.Data)
		} else {
			r.Mode = string(v.Data)
		}
	case "capabilities", "keep", "grant":
		list, ok := stringList(v)
		if !ok {
			return false
		}
		switch key {
		case "capabilities":
			r.Capabilities = list
		case "keep":
			r.Keep = &list
		case "grant":
			r.Grant = list
		}
	case "learn":
		b, ok := boolValue(v)
		if !ok {
			return false
		}
		r.Learn = b
	default:
		return false
	}
	return true
}

// stringList reads an array of strings (an empty array is an empty, not
// a missing, list).
func stringList(v *unstable.Node) ([]string, bool) {
	if v.Kind != unstable.Array {
		return nil, false
	}
	list := []string{}
	for it := v.Children(); it.Next(); {
		n := it.Node()
		if n.Kind != unstable.String {
			return nil, false
		}
		list = append(list, string(n.Data))
	}
	return list, true
}

func boolValue(v *unstable.Node) (bool, bool) {
	if v.Kind != unstable.Bool {
		return false, false
	}
	return string(v.Data) == "true", true
}
