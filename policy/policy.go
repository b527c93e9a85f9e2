// Package policy loads capshim's policy (shim.toml) and decides, for one
// container, which capabilities it may keep.
package policy

import (
	"fmt"
	"strings"

	"github.com/capshim/capshim/spec"
)

// Mode says whether capshim rewrites specs or only reports.
type Mode string

// The policy modes.
const (
	Enforce Mode = "enforce"
	Audit   Mode = "audit"
)

// Request annotation and environment keys.
const (
	AnnotationCaps = "capshim.io/capabilities"
	PodmanCaps     = "io.containers.capabilities"
	EnvCaps        = "CAPSHIM_CAPABILITIES"
)

// Policy is a loaded shim.toml.
type Policy struct {
	// Source names where the policy came from (a path, or "built-in default").
	Source string
	// Runtime is the absolute path of the real runtime, or "" for runc on PATH.
	Runtime string
	Mode    Mode
	Default spec.CapSet
	Never   spec.CapSet
	// FailOnDenied refuses a container whose request goes beyond the rules.
	FailOnDenied bool
	// Log is the path of the JSON-lines decision log, or "".
	Log   string
	Rules []Rule
}

// Rule lets matching containers ask for capabilities.
type Rule struct {
	Name         string
	Capabilities spec.CapSet
	// Annotations must all match (glob on the value); none matches all.
	Annotations []Match
}

// Match is one annotation condition of a rule.
type Match struct {
	Key  string
	Glob string
}

// Matches reports whether every condition of r holds for annotations.
func (r *Rule) Matches(annotations map[string]string) bool {
	for _, m := range r.Annotations {
		v, ok := annotations[m.Key]
		if !ok || !globMatch(m.Glob, v) {
			return false
		}
	}
	return true
}

// Decision is what the policy grants one container.
type Decision struct {
	Requested spec.CapSet // named by the container
	Allowed   spec.CapSet // what the matching rules let it ask for
	Granted   spec.CapSet // requested ∩ allowed
	Denied    spec.CapSet // requested, but not in the target
	Target    spec.CapSet // default ∪ granted
	// Unknown holds requested names that are not capabilities.
	Unknown []string
	// Rules names the rules that matched.
	Rules []string
}

// Refused reports whether the container asked for something it may not
// have (a denied or unknown capability).
func (d *Decision) Refused() bool { return d.Denied != 0 || len(d.Unknown) > 0 }

// Decide computes the target set for a container with these annotations
// and process environment.
func (p *Policy) Decide(annotations map[string]string, env []string) Decision {
	var d Decision
	add := func(list string) {
		set, unknown := spec.ParseCommaList(list)
		d.Requested |= set
		d.Unknown = append(d.Unknown, unknown...)
	}
	if v, ok := annotations[AnnotationCaps]; ok {
		add(v)
	}
	if v, ok := annotations[PodmanCaps]; ok {
		add(v)
	}
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, EnvCaps+"="); ok {
			add(v)
		}
	}
	for i := range p.Rules {
		if p.Rules[i].Matches(annotations) {
			d.Allowed |= p.Rules[i].Capabilities
			d.Rules = append(d.Rules, p.Rules[i].Name)
		}
	}
	d.Allowed &^= p.Never
	d.Granted = d.Requested & d.Allowed
	d.Target = (p.Default | d.Granted) &^ p.Never
	d.Denied = d.Requested &^ d.Target
	return d
}

// Check returns an error when the decision must stop the container
// (on_denied_request = "fail" and the request went beyond the rules).
func (p *Policy) Check(d *Decision) error {
	if !p.FailOnDenied || !d.Refused() {
		return nil
	}
	var parts []string
	if d.Denied != 0 {
		parts = append(parts, "not allowed by any matching rule: "+d.Denied.String())
	}
	if len(d.Unknown) > 0 {
		parts = append(parts, "not capabilities: "+strings.Join(d.Unknown, ","))
	}
	return fmt.Errorf("request refused (on_denied_request = \"fail\" in %s): %s", p.Source, strings.Join(parts, "; "))
}
