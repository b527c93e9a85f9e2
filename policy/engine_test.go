package policy

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/engine"
	"github.com/capshim/capshim/spec"
)

// engineSpec is a config.json with these sets in bounding, effective and
// permitted, and masked paths unless privileged (a privileged spec is one
// that also grants CAP_SYS_ADMIN).
func engineSpec(t *testing.T, granted capability.Set, privileged bool, annotations map[string]string) *spec.Doc {
	t.Helper()
	names := granted.Names()
	if names == nil {
		names = []string{}
	}
	linux := map[string]any{"namespaces": []any{map[string]string{"type": "pid"}}}
	if !privileged {
		linux["maskedPaths"] = []string{"/proc/kcore", "/sys/firmware"}
	}
	doc := map[string]any{
		"ociVersion": "1.0.2-dev",
		"process": map[string]any{
			"args": []string{"sh"}, "cwd": "/",
			"capabilities": map[string][]string{"bounding": names, "effective": names, "permitted": names},
		},
		"linux": linux,
	}
	if annotations != nil {
		doc["annotations"] = annotations
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	d, err := spec.Parse(data, spec.Config)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestApplyEngineRequests: what an engine added beyond its default is a
// request the rules grant or deny; a privileged spec asks for nothing;
// engine_requests = false gives the old decision.
func TestApplyEngineRequests(t *testing.T) {
	netAdmin, ptrace := mustCaps(t, "NET_ADMIN"), mustCaps(t, "SYS_PTRACE")
	allowNetAdmin := []Rule{{Name: "net", Capabilities: netAdmin}}
	podman := map[string]string{engine.PodmanManager: "libpod"}
	cri := map[string]string{engine.CRIContainerType: "container"}
	tests := []struct {
		name        string
		rules       []Rule
		off         bool
		fail        bool
		engine      engine.Engine
		annotations map[string]string
		granted     capability.Set
		privileged  bool
		ceiling     *spec.Sets
		want        capability.Set // the target
		fromEngine  capability.Set
		denied      capability.Set
		err         string
	}{
		{name: "docker default asks nothing", engine: engine.Docker, granted: capability.DockerDefault, rules: allowNetAdmin,
			want: capability.OCIDefault},
		{name: "docker --cap-add allowed", engine: engine.Docker, granted: capability.DockerDefault | netAdmin, rules: allowNetAdmin,
			want: capability.OCIDefault | netAdmin, fromEngine: netAdmin},
		{name: "docker --cap-add without a rule", engine: engine.Docker, granted: capability.DockerDefault | netAdmin,
			want: capability.OCIDefault, fromEngine: netAdmin, denied: netAdmin},
		{name: "docker --cap-add of two, one allowed", engine: engine.Docker, granted: capability.DockerDefault | netAdmin | ptrace, rules: allowNetAdmin,
			want: capability.OCIDefault | netAdmin, fromEngine: netAdmin | ptrace, denied: ptrace},
		{name: "docker --cap-add SYS_ADMIN is never", engine: engine.Docker, granted: capability.DockerDefault | mustCaps(t, "SYS_ADMIN"),
			rules: []Rule{{Name: "all", Capabilities: capability.All &^ mustCaps(t, "SYS_ADMIN", "SYS_MODULE")}},
			want:  capability.OCIDefault, fromEngine: mustCaps(t, "SYS_ADMIN"), denied: mustCaps(t, "SYS_ADMIN")},
		{name: "docker --privileged asks nothing", engine: engine.Docker, granted: capability.All, privileged: true,
			rules: []Rule{{Name: "all", Capabilities: capability.All &^ mustCaps(t, "SYS_ADMIN", "SYS_MODULE")}},
			want:  capability.OCIDefault},
		{name: "no masked paths without CAP_SYS_ADMIN still asks", annotations: cri, granted: capability.DockerDefault | netAdmin, privileged: true, rules: allowNetAdmin,
			want: capability.OCIDefault | netAdmin, fromEngine: netAdmin},
		{name: "engine_requests off", off: true, engine: engine.Docker, granted: capability.DockerDefault | netAdmin, rules: allowNetAdmin,
			want: capability.OCIDefault},
		{name: "podman --cap-add NET_RAW", annotations: podman, granted: capability.PodmanDefault.Add(capability.NetRaw),
			rules: []Rule{{Name: "raw", Capabilities: mustCaps(t, "NET_RAW")}},
			want:  capability.OCIDefault | mustCaps(t, "NET_RAW"), fromEngine: mustCaps(t, "NET_RAW")},
		{name: "unknown engine: Docker's NET_RAW is no request", granted: capability.DockerDefault,
			rules: []Rule{{Name: "raw", Capabilities: mustCaps(t, "NET_RAW")}},
			want:  capability.OCIDefault},
		{name: "cri capabilities.add", annotations: cri, granted: capability.DockerDefault | netAdmin, rules: allowNetAdmin,
			want: capability.OCIDefault | netAdmin, fromEngine: netAdmin},
		{name: "denied with on_denied_request = fail", fail: true, engine: engine.Docker, granted: capability.DockerDefault | netAdmin,
			err: "not allowed by any matching rule: CAP_NET_ADMIN (CAP_NET_ADMIN added by docker --cap-add)"},
		{name: "privileged with on_denied_request = fail starts", fail: true, engine: engine.Docker, granted: capability.All, privileged: true,
			want: capability.OCIDefault},
		{name: "exec asks only for what its container holds", engine: engine.Docker, granted: capability.All, rules: allowNetAdmin,
			ceiling: &spec.Sets{capability.OCIDefault | netAdmin, capability.OCIDefault | netAdmin, 0, capability.OCIDefault | netAdmin, 0},
			want:    capability.OCIDefault | netAdmin, fromEngine: netAdmin},
		{name: "privileged exec into a default container asks nothing", fail: true, engine: engine.Docker, granted: capability.All,
			ceiling: &spec.Sets{capability.OCIDefault, capability.OCIDefault, 0, capability.OCIDefault, 0},
			want:    capability.OCIDefault},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Builtin()
			p.Rules, p.EngineRequests, p.FailOnDenied = tt.rules, !tt.off, tt.fail
			doc := engineSpec(t, tt.granted, tt.privileged, tt.annotations)
			e := tt.engine
			if tt.annotations != nil {
				e = engine.Identify(tt.annotations, "")
			}
			o, err := p.Apply(doc, doc.Annotations, tt.ceiling, e)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q in it", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := o.Decision
			if d.Target != tt.want || d.FromEngine != tt.fromEngine || d.Denied != tt.denied {
				t.Fatalf("target %s engine request %s denied %s; want %s %s %s", d.Target, d.FromEngine, d.Denied, tt.want, tt.fromEngine, tt.denied)
			}
			if got := o.Sets[spec.Bounding]; got != tt.want&tt.granted {
				t.Fatalf("bounding %s, want %s", got, tt.want&tt.granted)
			}
		})
	}
}

// TestApplyEngineNeverEscalates: over random specs of random engines,
// privileged or not, with random rules, what the runtime gets is never
// more than the engine granted, never more than (default ∪ grant ∪
// (requested ∩ allowed)) less never, and a privileged spec, or
// engine_requests off, gets exactly what it would without the engine's
// request.
func TestApplyEngineNeverEscalates(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	set := func() capability.Set { return capability.Set(r.Uint64()) & capability.All }
	sparse := func() capability.Set { return set() & capability.Set(r.Uint64()) }
	annotations := []map[string]string{nil, {engine.PodmanManager: "libpod"}, {engine.CRIContainerType: "container"}}
	for i := 0; i < 2000; i++ {
		never := sparse()
		p := &Policy{Mode: Enforce, Default: sparse() &^ never, Never: never, EngineRequests: r.Intn(4) > 0}
		for j := r.Intn(3); j > 0; j-- {
			p.Rules = append(p.Rules, Rule{Name: fmt.Sprint("r", j), Capabilities: set() &^ never, Grant: sparse() &^ never})
		}
		granted, privileged := set(), r.Intn(4) == 0
		if r.Intn(2) == 0 {
			granted |= capability.DockerDefault
		}
		doc := engineSpec(t, granted, privileged, annotations[r.Intn(len(annotations))])
		e := engine.Identify(doc.Annotations, []string{"", "/run/docker/runtime-runc/moby"}[r.Intn(2)])
		o, err := p.Apply(doc, doc.Annotations, nil, e)
		if err != nil {
			t.Fatal(err)
		}
		d := o.Decision
		var allowed, given capability.Set
		for _, rule := range p.Rules {
			allowed |= rule.Capabilities
			given |= rule.Grant
		}
		asked := capability.Set(0)
		// Privileged: no masked paths and CAP_SYS_ADMIN granted.
		if p.EngineRequests && !(privileged && granted.Has(capability.SysAdmin)) {
			asked = granted &^ e.Default()
		}
		bound := (p.Default | given | asked&allowed) &^ never
		for s := spec.Bounding; s < spec.NumSets; s++ {
			if extra := o.Sets[s] &^ doc.Sets()[s]; extra != 0 {
				t.Fatalf("case %d: %s gained %s the engine did not grant", i, s, extra)
			}
			if extra := o.Sets[s] &^ bound; extra != 0 {
				t.Fatalf("case %d: %s holds %s beyond default ∪ grant ∪ (requested ∩ allowed)", i, s, extra)
			}
		}
		if d.FromEngine != asked {
			t.Fatalf("case %d: engine request %s, want %s", i, d.FromEngine, asked)
		}
		if asked == 0 {
			plain := p.Decide(doc.Annotations, doc.Env)
			if plain.Target != d.Target {
				t.Fatalf("case %d: target %s, %s without the engine's request", i, d.Target, plain.Target)
			}
		}
	}
}
