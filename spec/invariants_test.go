package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capshim/capshim/capability"
)

// runcSets decodes data exactly as runc does (encoding/json into
// specs.Spec or specs.Process) and returns the capability sets it would
// grant: only exact names count.
func runcSets(data []byte, kind Kind) (Sets, error) {
	var caps *rspec.LinuxCapabilities
	dec := json.NewDecoder(bytes.NewReader(data))
	if kind == Process {
		var p rspec.Process
		if err := dec.Decode(&p); err != nil {
			return Sets{}, err
		}
		caps = p.Capabilities
	} else {
		var s rspec.Spec
		if err := dec.Decode(&s); err != nil {
			return Sets{}, err
		}
		if s.Process != nil {
			caps = s.Process.Capabilities
		}
	}
	var out Sets
	if caps == nil {
		return out, nil
	}
	lists := [NumSets][]string{caps.Bounding, caps.Effective, caps.Inheritable, caps.Permitted, caps.Ambient}
	for s, l := range lists {
		for _, n := range l {
			if c, ok := capability.Exact(n); ok {
				out[s] = out[s].Add(c)
			}
		}
	}
	return out, nil
}

// withoutCaps decodes a document losslessly (numbers kept as text) and
// removes the capabilities node, so two documents can be compared on
// everything else.
func withoutCaps(data []byte, kind Kind) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	root, ok := v.(map[string]any)
	if !ok {
		return v, nil
	}
	proc := root
	if kind == Config {
		proc, _ = root["process"].(map[string]any)
	}
	if proc != nil {
		delete(proc, "capabilities")
	}
	return v, nil
}

// checkReduce verifies every invariant of a reduction of in to target
// (out, sets as returned by Reduce). It returns the first violation.
func checkReduce(in []byte, kind Kind, target capability.Set, out []byte, sets Sets) error {
	before, err := runcSets(in, kind)
	if err != nil {
		return fmt.Errorf("capshim accepted a document runc cannot decode: %v", err)
	}
	after, err := runcSets(out, kind)
	if err != nil {
		return fmt.Errorf("output does not decode the way runc decodes: %v", err)
	}
	if after != sets {
		return fmt.Errorf("Reduce reports %v but runc reads %v", sets, after)
	}
	for s := Bounding; s < NumSets; s++ {
		if extra := after[s] &^ before[s]; extra != 0 {
			return fmt.Errorf("%s gained %s (never escalate)", s, extra)
		}
		if extra := after[s] &^ target; extra != 0 {
			return fmt.Errorf("%s keeps %s outside the target", s, extra)
		}
		if want := before[s] & target; s == Bounding || s == Inheritable {
			if after[s] != want {
				return fmt.Errorf("%s = %s, want in ∩ target = %s", s, after[s], want)
			}
		}
	}
	if want := Tidy(before, target); after != want {
		return fmt.Errorf("runc reads %v, want Tidy(in, target) = %v", after, want)
	}
	if after[Effective]&^after[Permitted] != 0 || after[Permitted]&^after[Bounding] != 0 {
		return fmt.Errorf("not effective ⊆ permitted ⊆ bounding: %v", after)
	}
	if after[Ambient]&^(after[Permitted]&after[Inheritable]) != 0 {
		return fmt.Errorf("ambient not within permitted ∩ inheritable: %v", after)
	}
	a, err := withoutCaps(in, kind)
	if err != nil {
		return err
	}
	b, err := withoutCaps(out, kind)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Errorf("something outside process.capabilities changed")
	}
	doc2, err := Parse(out, kind)
	if err != nil {
		return fmt.Errorf("output does not parse again: %v", err)
	}
	out2, _ := doc2.Reduce(target)
	if !bytes.Equal(out, out2) {
		return fmt.Errorf("not idempotent:\n%s\n%s", out, out2)
	}
	doc3, _ := Parse(in, kind)
	out3, _ := doc3.Reduce(target)
	if !bytes.Equal(out, out3) {
		return fmt.Errorf("not deterministic")
	}
	return checkBothRuntimes(doc3, in, kind, target, out)
}

// crunNode is one value of crun's JSON tree: objects keep every member in
// document order, duplicates included, as yajl's tree does.
type crunNode struct {
	kind byte // '{', '[', '"', or 0 for any other value
	keys []string
	vals []*crunNode
	elem []*crunNode
	str  string
}

// crunTree builds the tree crun parses: the document is handed to yajl as
// a C string, so it ends at the first NUL byte.
func crunTree(data []byte) (*crunNode, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		data = data[:i]
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := crunValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("data after the document")
	}
	return n, nil
}

func crunValue(dec *json.Decoder) (*crunNode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			n := &crunNode{kind: '{'}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				val, err := crunValue(dec)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
				n.vals = append(n.vals, val)
			}
			_, err := dec.Token()
			return n, err
		}
		n := &crunNode{kind: '['}
		for dec.More() {
			e, err := crunValue(dec)
			if err != nil {
				return nil, err
			}
			n.elem = append(n.elem, e)
		}
		_, err := dec.Token()
		return n, err
	case string:
		return &crunNode{kind: '"', str: v}, nil
	}
	return &crunNode{}, nil
}

// cString is a Go string as C code sees it: up to the first NUL.
func cString(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

// crunGet is libocispec's field lookup (yajl_tree_get): the first key equal
// as a C string wins, and a value of the wrong type reads as absent.
func crunGet(n *crunNode, name string, kind byte) *crunNode {
	if n == nil || n.kind != '{' {
		return nil
	}
	for i, k := range n.keys {
		if cString(k) == name {
			if n.vals[i].kind != kind {
				return nil
			}
			return n.vals[i]
		}
	}
	return nil
}

// crunCapName is libcap's cap_from_name as crun 1.8 calls it: the name may
// be a number, and otherwise only its leading letters and underscores are
// compared, case-insensitively, so "cap_kill", "CAP_KILL,x" and
// "CAP_KILL\u0000x" all mean CAP_KILL.
func crunCapName(s string) (capability.Cap, bool) {
	s = cString(s)
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		return strtoulCap(s)
	}
	end := 0
	for end < len(s) && (s[end] == '_' || s[end] >= 'a' && s[end] <= 'z' || s[end] >= 'A' && s[end] <= 'Z') {
		end++
	}
	for c := capability.Cap(0); c < capability.NumCaps; c++ {
		if strings.EqualFold(s[:end], c.String()) {
			return c, true
		}
	}
	return 0, false
}

// crunRead reads data as crun does and returns the sets crun would grant
// and, per set, the strings of the array it took (nil when absent).
func crunRead(data []byte, kind Kind) (Sets, [NumSets][]string, error) {
	var sets Sets
	var raw [NumSets][]string
	root, err := crunTree(data)
	if err != nil {
		return sets, raw, err
	}
	proc := root
	if kind == Config {
		proc = crunGet(root, "process", '{')
	}
	caps := crunGet(proc, "capabilities", '{')
	for s := Bounding; s < NumSets; s++ {
		arr := crunGet(caps, setNames[s], '[')
		if arr == nil {
			continue
		}
		raw[s] = []string{}
		for _, e := range arr.elem {
			raw[s] = append(raw[s], e.str)
			if c, ok := crunCapName(e.str); ok {
				sets[s] = sets[s].Add(c)
			}
		}
	}
	return sets, raw, nil
}

// checkBothRuntimes is the differential oracle for a document capshim
// accepted: crun must take the very arrays capshim found, and the reduced
// document must give crun exactly what it gives runc, within the target
// and the input.
func checkBothRuntimes(doc *Doc, in []byte, kind Kind, target capability.Set, out []byte) error {
	crunOut, err := checkCrun(doc, in, kind, target, out)
	if err != nil {
		return err
	}
	runcOut, err := runcSets(out, kind)
	if err != nil {
		return fmt.Errorf("runc cannot read the output: %v", err)
	}
	if crunOut != runcOut {
		return fmt.Errorf("on the output crun reads %v, runc reads %v", crunOut, runcOut)
	}
	return nil
}

// checkCrun is the crun half of checkBothRuntimes, on its own for
// documents runc refuses but crun might still run. It returns the sets
// crun reads from out.
func checkCrun(doc *Doc, in []byte, kind Kind, target capability.Set, out []byte) (Sets, error) {
	crunIn, rawIn, err := crunRead(in, kind)
	if err != nil {
		return Sets{}, fmt.Errorf("crun model cannot read an accepted document: %v", err)
	}
	for s := Bounding; s < NumSets; s++ {
		// A null set is a place capshim may write to but grants nothing,
		// so only the names are compared.
		names, _ := doc.Names(s)
		if !slices.Equal(names, rawIn[s]) && (len(names) > 0 || len(rawIn[s]) > 0) {
			return Sets{}, fmt.Errorf("%s: capshim reads %q, crun reads %q", s, names, rawIn[s])
		}
	}
	crunOut, _, err := crunRead(out, kind)
	if err != nil {
		return Sets{}, fmt.Errorf("crun model cannot read the output: %v", err)
	}
	for s := Bounding; s < NumSets; s++ {
		if extra := crunOut[s] &^ target; extra != 0 {
			return Sets{}, fmt.Errorf("crun: %s keeps %s outside the target", s, extra)
		}
		if extra := crunOut[s] &^ crunIn[s]; extra != 0 {
			return Sets{}, fmt.Errorf("crun: %s gained %s", s, extra)
		}
	}
	return crunOut, nil
}

// strtoulCap reads a leading number the way strtoul(s, &end, 0) does
// (hexadecimal after 0x, octal after 0, else decimal; the rest ignored).
func strtoulCap(s string) (capability.Cap, bool) {
	base, digits := uint64(10), s
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		base, digits = 16, s[2:]
	case s[0] == '0':
		base = 8
	}
	var n uint64
	for _, c := range []byte(digits) {
		d := base
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		}
		if d >= base {
			break
		}
		n = n*base + d
		if n >= capability.NumCaps {
			return 0, false
		}
	}
	return capability.Cap(n), true
}
