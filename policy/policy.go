// Package policy loads capshim's policy (shim.toml) and decides, for one
// container, which capabilities it may keep.
package policy

import (
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/engine"
	"github.com/capshim/capshim/internal/safetext"
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

// Bounds on one request. Whoever creates the container writes it, and
// capshim parses it and reports what it did not grant on every start, so
// its size must not be the requester's choice. All 41 capabilities written
// out ("CAP_CHOWN, CAP_DAC_OVERRIDE, ...") take 624 bytes; the bounds
// leave room for spaces, repeats and mistakes, and no honest request comes
// near them.
const (
	// MaxRequestBytes bounds the value of one request: an annotation, or
	// all CAPSHIM_CAPABILITIES entries of the environment together.
	MaxRequestBytes = 4096
	// MaxRequestNames bounds the number of names (non-empty items) in it.
	MaxRequestNames = 64
)

// Policy is a loaded shim.toml.
type Policy struct {
	// Source names where the policy came from (a path, or "built-in default").
	Source string
	// Runtime is the absolute path of the real runtime, or "" for runc on PATH.
	Runtime string
	Mode    Mode
	Default capability.Set
	Never   capability.Set
	// FailOnDenied refuses a container whose request goes beyond the rules.
	FailOnDenied bool
	// Log is the path of the JSON-lines decision log: DefaultLog unless
	// the file says otherwise, "" for none.
	Log string
	// StateDir holds learned profiles and recent container records; ""
	// is DefaultStateDir.
	StateDir string
	// Explain records the capability checks enforced containers are
	// refused, where the kernel allows it.
	Explain bool
	// EngineRequests takes a capability the engine granted beyond its
	// own default set (its --cap-add) as a request (engine_requests).
	EngineRequests bool
	Rules          []Rule
}

// DefaultLog is the decision log when the policy has no log key. It is
// written as root only: a rootless engine's capshim cannot write there and
// keeps no log unless the policy names one.
const DefaultLog = "/var/log/capshim/decisions.log"

// DefaultStateDir is the state directory when the policy names none.
const DefaultStateDir = "/var/lib/capshim"

// States returns the state directory in force.
func (p *Policy) States() string {
	if p.StateDir != "" {
		return p.StateDir
	}
	return DefaultStateDir
}

// Rule says what matching containers may ask for, get, or keep, and
// whether they are learned.
type Rule struct {
	Name string
	// Capabilities may be asked for; Grant is given without asking.
	Capabilities capability.Set
	Grant        capability.Set
	// Keep replaces the policy's default for matching containers (when
	// HasKeep: an empty Keep keeps nothing).
	Keep    capability.Set
	HasKeep bool
	// LearnMode learns every matching container; Learn lets matching
	// containers ask to be learned.
	LearnMode bool
	Learn     bool
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
	Requested capability.Set // named by the container
	Allowed   capability.Set // what the matching rules let it ask for
	Granted   capability.Set // requested ∩ allowed
	Denied    capability.Set // requested, but not in the target
	// Given is what matching rules grant without asking; Kept replaces
	// the default when a matching rule has keep (HasKeep).
	Given   capability.Set
	Kept    capability.Set
	HasKeep bool
	// Target is (kept, or default) ∪ given ∪ granted, minus never; for a
	// learned container, everything but never.
	Target capability.Set
	// Learn says the container is learned into the profile Profile
	// (empty: capshim derives the name). LearnDenied is a learn request
	// that no matching rule allows: it is ignored.
	Learn       bool
	Profile     string
	LearnDenied string
	// Engine is the engine that wrote the spec. FromEngine is what its own
	// flag asked for (what it granted beyond its default set; in
	// Requested too). EnginePrivileged says the spec is privileged, so
	// the engine's grant asked for nothing.
	Engine           engine.Engine
	FromEngine       capability.Set
	EnginePrivileged bool
	// Unknown holds requested names that are not capabilities.
	Unknown []string
	// Oversized lists the requests refused unread because they were over
	// MaxRequestBytes or MaxRequestNames; nothing in them is granted.
	Oversized []Oversized
	// Rules names the rules that matched.
	Rules []string
}

// Oversized is a request over the bounds. It holds the request's size,
// never its content.
type Oversized struct {
	// Source names the request: `annotation "capshim.io/capabilities"`,
	// `annotation "io.containers.capabilities"` or `env CAPSHIM_CAPABILITIES`.
	Source string
	// Bytes is the size of its value (for the environment, of all its
	// entries together).
	Bytes int
	// Names is the number of names in it, or 0 when its size alone refused
	// it (it was not read).
	Names int
}

func (o Oversized) String() string {
	what := strconv.Itoa(o.Bytes) + " bytes, over the limit of " + strconv.Itoa(MaxRequestBytes) + " bytes"
	if o.Names > 0 {
		what = strconv.Itoa(o.Names) + " names, over the limit of " + strconv.Itoa(MaxRequestNames) + " names"
	}
	return o.Source + " refused: " + what + "; nothing in it is granted"
}

// Refused reports whether the container asked for something it may not
// have (a denied or unknown capability, or a request over the bounds).
func (d *Decision) Refused() bool {
	return d.Denied != 0 || len(d.Unknown) > 0 || len(d.Oversized) > 0
}

// Decide computes the target set for a container with these annotations
// and process environment.
func (p *Policy) Decide(annotations map[string]string, env []string) Decision {
	return p.DecideEngine(annotations, env, EngineGrant{})
}

// EngineGrant is what an engine's spec grants, as a request of the
// engine's own flag.
type EngineGrant struct {
	Engine engine.Engine
	// Granted is every capability the spec holds, in any set.
	Granted capability.Set
	// Privileged says the spec is a privileged container's.
	Privileged bool
}

// DecideEngine is Decide for a spec the engine wrote: with engine_requests
// on, what it granted beyond its default set is requested too.
func (p *Policy) DecideEngine(annotations map[string]string, env []string, g EngineGrant) Decision {
	d := Decision{Engine: g.Engine}
	if p.EngineRequests && g.Granted != 0 {
		d.EnginePrivileged = g.Privileged
		d.FromEngine = g.Engine.Request(g.Granted, g.Privileged)
		d.Requested = d.FromEngine
	}
	for _, key := range [...]string{AnnotationCaps, PodmanCaps} {
		if v, ok := annotations[key]; ok {
			d.request(`annotation "`+key+`"`, slices.Values([]string{v}))
		}
	}
	d.request("env "+EnvCaps, envValues(env))
	learnMode, learnAllowed := false, false
	for i := range p.Rules {
		r := &p.Rules[i]
		if !r.Matches(annotations) {
			continue
		}
		d.Allowed |= r.Capabilities
		d.Given |= r.Grant
		if r.HasKeep {
			d.HasKeep = true
			d.Kept |= r.Keep
		}
		learnMode = learnMode || r.LearnMode
		learnAllowed = learnAllowed || r.Learn
		d.Rules = append(d.Rules, r.Name)
	}
	d.Allowed &^= p.Never
	d.Granted = d.Requested & d.Allowed
	base := p.Default
	if d.HasKeep {
		base = d.Kept
	}
	d.Target = (base | d.Given | d.Granted) &^ p.Never
	d.Denied = d.Requested &^ d.Target
	// Learning: a rule decides; a container can only ask.
	name := learnRequest(annotations, env)
	switch {
	case learnMode:
		d.Learn, d.Profile = true, name
	case name != "" && learnAllowed:
		d.Learn, d.Profile = true, name
	case name != "":
		d.LearnDenied = name
	}
	if d.Learn {
		// A learned container works as without capshim, less never:
		// what it really uses is what the record is for.
		d.Target = capability.All &^ p.Never
		d.Denied = 0
	}
	return d
}

// Learn request keys: a container asks to be learned into the profile
// NAME with the annotation capshim.io/learn=NAME or the environment
// variable CAPSHIM_LEARN=NAME (Docker 20.10 passes no annotations).
const (
	AnnotationLearn = "capshim.io/learn"
	EnvLearn        = "CAPSHIM_LEARN"
)

// maxLearnName bounds a learn request; the runtime sanitises it into a
// profile name.
const maxLearnName = 256

// learnRequest returns the profile name a container asks to be learned
// into, or "". An over-long request is cut, never grown into the logs.
func learnRequest(annotations map[string]string, env []string) string {
	v, ok := annotations[AnnotationLearn]
	if !ok {
		for _, e := range env {
			if x, found := strings.CutPrefix(e, EnvLearn+"="); found {
				v, ok = x, true
			}
		}
	}
	if !ok {
		return ""
	}
	v = strings.TrimSpace(v)
	if len(v) > maxLearnName {
		v = v[:maxLearnName]
	}
	return v
}

// request adds one request to d: the values of one source (one
// annotation, or every EnvCaps entry of the environment). A request over
// the bounds is refused whole, before it is parsed: a part of it might not
// be what the requester meant, and only its size is recorded, so what it
// costs stays bounded.
func (d *Decision) request(source string, values iter.Seq[string]) {
	size, names := 0, 0
	for v := range values {
		size += len(v)
	}
	if size > MaxRequestBytes {
		d.Oversized = append(d.Oversized, Oversized{Source: source, Bytes: size})
		return
	}
	for v := range values {
		names += countNames(v)
	}
	if names > MaxRequestNames {
		d.Oversized = append(d.Oversized, Oversized{Source: source, Bytes: size, Names: names})
		return
	}
	for v := range values {
		set, unknown := capability.ParseCommaList(v)
		d.Requested |= set
		d.Unknown = append(d.Unknown, unknown...)
	}
}

// envValues yields the value of every EnvCaps entry of env.
func envValues(env []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, e := range env {
			if v, ok := strings.CutPrefix(e, EnvCaps+"="); ok && !yield(v) {
				return
			}
		}
	}
}

// countNames counts the items capability.ParseCommaList parses: those that are
// not empty or blank.
func countNames(list string) int {
	n := 0
	for {
		item, rest, more := strings.Cut(list, ",")
		if strings.TrimSpace(item) != "" {
			n++
		}
		if !more {
			return n
		}
		list = rest
	}
}

// Check returns an error when the decision must stop the container
// (on_denied_request = "fail" and the request went beyond the rules).
func (p *Policy) Check(d *Decision) error {
	if !p.FailOnDenied || !d.Refused() {
		return nil
	}
	var parts []string
	for _, o := range d.Oversized {
		parts = append(parts, o.String())
	}
	if d.Denied != 0 {
		part := "not allowed by any matching rule: " + d.Denied.String()
		if e := d.Denied & d.FromEngine; e != 0 {
			part += " (" + e.String() + " added by " + d.Engine.Flag() + ")"
		}
		parts = append(parts, part)
	}
	if len(d.Unknown) > 0 {
		parts = append(parts, "not capabilities: "+strings.Join(safetext.Names(d.Unknown), ","))
	}
	return fmt.Errorf("request refused (on_denied_request = \"fail\" in %s): %s", p.Source, strings.Join(parts, "; "))
}

// Outcome is a policy applied to one spec.
type Outcome struct {
	Decision Decision
	// Out is the reduced document: the input itself when nothing changes.
	Out []byte
	// Sets are the capability sets the runtime will read from Out.
	Sets spec.Sets
	// Dropped lists, by set name, what the reduction removed (only sets
	// that lost something).
	Dropped map[string][]string
}

// SpecGrant is what doc, written by engine e, grants as the engine's
// request. A config.json is a privileged container's when it grants
// CAP_SYS_ADMIN and masks no paths: privileged containers get every
// capability and (Docker, Podman, containerd alike) no masked paths,
// while every engine masks paths otherwise, unless told not to. Taking
// such a spec for privileged only ever counts less as asked for. An
// exec's process.json asks only for what its container holds (the
// ceiling): the exec can get nothing else, so asking for more is no
// request (a privileged exec asks for everything).
func SpecGrant(doc *spec.Doc, ceiling *spec.Sets, e engine.Engine) EngineGrant {
	g := EngineGrant{Engine: e, Granted: doc.Sets().Union()}
	if ceiling != nil {
		g.Granted &= ceiling.Union()
	} else {
		g.Privileged = !doc.MaskedPaths && g.Granted.Has(capability.SysAdmin)
	}
	return g
}

// Changed reports whether Out differs from the document it came from.
func (o *Outcome) Changed(in []byte) bool { return string(o.Out) != string(in) }

// Apply decides for doc, written by engine e, with these annotations (the
// spec's own at create, the container's at exec) and the spec's
// environment, refuses what Check refuses, and reduces the document; a
// non-nil ceiling holds every set to the same set of it. The runtime and
// capshim's commands both come here, so they reach the same decision on
// the same spec.
func (p *Policy) Apply(doc *spec.Doc, annotations map[string]string, ceiling *spec.Sets, e engine.Engine) (*Outcome, error) {
	o := &Outcome{Decision: p.DecideEngine(annotations, doc.Env, SpecGrant(doc, ceiling, e))}
	if err := p.Check(&o.Decision); err != nil {
		return nil, err
	}
	if ceiling != nil {
		o.Out, o.Sets = doc.ReduceWithin(o.Decision.Target, *ceiling)
	} else {
		o.Out, o.Sets = doc.Reduce(o.Decision.Target)
	}
	for s, names := range doc.Dropped(o.Sets) {
		if len(names) > 0 {
			if o.Dropped == nil {
				o.Dropped = map[string][]string{}
			}
			o.Dropped[spec.Set(s).String()] = names
		}
	}
	return o, nil
}
