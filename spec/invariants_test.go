package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
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
			if c, ok := Exact(n); ok {
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
func checkReduce(in []byte, kind Kind, target CapSet, out []byte, sets Sets) error {
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
	return nil
}
