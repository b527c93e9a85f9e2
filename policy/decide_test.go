package policy

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/engine"
)

// TestDecideKeepGrantLearn: the precedence of default, keep, grant,
// requests and learning, as tables.
func TestDecideKeepGrantLearn(t *testing.T) {
	chown, setuid, netraw := mustCaps(t, "CHOWN"), mustCaps(t, "SETUID"), mustCaps(t, "NET_RAW")
	web := []Match{{Key: "app", Glob: "web"}}
	p := &Policy{
		Default: capability.OCIDefault, Never: mustCaps(t, "SYS_ADMIN"),
		Rules: []Rule{
			{Name: "keep-web", Annotations: web, HasKeep: true, Keep: chown},
			{Name: "grant-web", Annotations: web, Grant: setuid},
			{Name: "ask-raw", Capabilities: netraw},
			{Name: "empty-keep", Annotations: []Match{{Key: "app", Glob: "none"}}, HasKeep: true},
			{Name: "learn-ns", Annotations: []Match{{Key: "ns", Glob: "learn-*"}}, LearnMode: true},
			{Name: "may-learn", Annotations: []Match{{Key: "ns", Glob: "dev"}}, Learn: true},
		},
	}
	tests := []struct {
		name        string
		annotations map[string]string
		env         []string
		target      capability.Set
		learn       bool
		profile     string
		learnDenied string
	}{
		{name: "default", target: capability.OCIDefault},
		{name: "keep replaces the default, grant adds", annotations: map[string]string{"app": "web"}, target: chown | setuid},
		{name: "a request on top of keep", annotations: map[string]string{"app": "web", AnnotationCaps: "NET_RAW"}, target: chown | setuid | netraw},
		{name: "an empty keep keeps nothing", annotations: map[string]string{"app": "none"}, target: 0},
		{name: "learn mode", annotations: map[string]string{"ns": "learn-1"}, target: capability.All &^ mustCaps(t, "SYS_ADMIN"), learn: true},
		{name: "learn mode with a name", annotations: map[string]string{"ns": "learn-1", AnnotationLearn: "web"}, target: capability.All &^ mustCaps(t, "SYS_ADMIN"), learn: true, profile: "web"},
		{name: "asked and allowed", annotations: map[string]string{"ns": "dev"}, env: []string{EnvLearn + "=mine"}, target: capability.All &^ mustCaps(t, "SYS_ADMIN"), learn: true, profile: "mine"},
		{name: "asked, not allowed", env: []string{EnvLearn + "=mine"}, target: capability.OCIDefault, learnDenied: "mine"},
		{name: "asked by annotation, not allowed", annotations: map[string]string{AnnotationLearn: strings.Repeat("x", 1000)}, target: capability.OCIDefault, learnDenied: strings.Repeat("x", maxLearnName)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.annotations, tt.env)
			if d.Target != tt.target || d.Learn != tt.learn || d.Profile != tt.profile || d.LearnDenied != tt.learnDenied {
				t.Fatalf("target %s learn %v profile %q denied %q; want %s %v %q %q",
					d.Target, d.Learn, d.Profile, d.LearnDenied, tt.target, tt.learn, tt.profile, tt.learnDenied)
			}
		})
	}
}

// engines are the engines a spec can come from.
var engines = []engine.Engine{engine.Unknown, engine.Docker, engine.CRI, engine.Podman}

// TestDecideNeverEscalates: over random policies and requests, the target
// never holds a never capability, holds only what the default or keep,
// grant and granted requests name (or, learned, what the engine gave,
// less never), and a container is learned only where a matching rule says
// so. Requests come from the annotation and from the engine's own flag
// (what a random engine granted beyond its default), which a privileged
// spec or engine_requests = false leaves out.
func TestDecideNeverEscalates(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	set := func() capability.Set { return capability.Set(r.Uint64()) & capability.All }
	// sparse is about a quarter of all capabilities.
	sparse := func() capability.Set { return set() & capability.Set(r.Uint64()) }
	for i := 0; i < 5000; i++ {
		never := sparse()
		p := &Policy{Default: set() &^ never, Never: never}
		for j := 0; j < r.Intn(5); j++ {
			rule := Rule{Name: "r", Capabilities: set() &^ never, Grant: sparse() &^ never,
				LearnMode: r.Intn(6) == 0, Learn: r.Intn(3) == 0}
			if r.Intn(2) == 0 {
				rule.HasKeep, rule.Keep = true, set()&^never
			}
			if r.Intn(2) == 0 {
				rule.Annotations = []Match{{Key: "k", Glob: "v"}}
			}
			p.Rules = append(p.Rules, rule)
		}
		ann := map[string]string{}
		if r.Intn(2) == 0 {
			ann["k"] = "v"
		}
		req := set()
		ann[AnnotationCaps] = strings.Join(req.Names(), ",")
		if r.Intn(2) == 0 {
			ann[AnnotationLearn] = "p"
		}
		// The engine's own flag: what a spec of a random engine grants,
		// now and then privileged, with engine_requests on or off.
		p.EngineRequests = r.Intn(4) > 0
		g := EngineGrant{Engine: engines[r.Intn(len(engines))], Granted: set(), Privileged: r.Intn(4) == 0}
		var fromEngine capability.Set
		if p.EngineRequests && !g.Privileged {
			fromEngine = g.Granted &^ g.Engine.Default()
		}
		d := p.DecideEngine(ann, nil, g)
		if d.FromEngine != fromEngine {
			t.Fatalf("case %d: engine request %s, want %s (%+v)", i, d.FromEngine, fromEngine, g)
		}
		if d.FromEngine&g.Engine.Default() != 0 {
			t.Fatalf("case %d: the engine's own default %s counts as asked for", i, d.FromEngine&g.Engine.Default())
		}
		if d.Requested != req|fromEngine {
			t.Fatalf("case %d: requested %s, want %s", i, d.Requested, req|fromEngine)
		}
		if d.Target&never != 0 {
			t.Fatalf("case %d: target %s holds never %s", i, d.Target, d.Target&never)
		}
		var allowed, given, kept capability.Set
		hasKeep, mayLearn := false, false
		for _, rule := range p.Rules {
			if rule.Matches(ann) {
				allowed |= rule.Capabilities
				given |= rule.Grant
				if rule.HasKeep {
					hasKeep, kept = true, kept|rule.Keep
				}
				mayLearn = mayLearn || rule.LearnMode || rule.Learn && ann[AnnotationLearn] != ""
			}
		}
		if d.Learn != mayLearn {
			t.Fatalf("case %d: learn %v, rules allow it: %v", i, d.Learn, mayLearn)
		}
		if d.Learn {
			continue
		}
		base := p.Default
		if hasKeep {
			base = kept
		}
		if extra := d.Target &^ (base | given | (req|fromEngine)&allowed); extra != 0 {
			t.Fatalf("case %d: target holds %s that nothing granted", i, extra)
		}
		if d.Denied != d.Requested&^d.Target {
			t.Fatalf("case %d: denied %s, want %s", i, d.Denied, d.Requested&^d.Target)
		}
		// A privileged spec, or engine_requests off, decides as if the
		// engine had asked for nothing.
		if fromEngine == 0 {
			if plain := p.Decide(ann, nil); plain.Target != d.Target || plain.Denied != d.Denied {
				t.Fatalf("case %d: target %s denied %s, without the engine %s %s", i, d.Target, d.Denied, plain.Target, plain.Denied)
			}
		}
	}
}
