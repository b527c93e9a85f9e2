package policy

import (
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/capshim/capshim/capability"
)

// mustParse parses a policy for a test.
func mustParse(t testing.TB, text string) *Policy {
	t.Helper()
	p, err := Parse([]byte(text), "test.toml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

const nsKey = "io.kubernetes.cri.sandbox-namespace"

// decidePolicy has a match-all rule, a namespace rule and a rule on two
// annotations.
const decidePolicy = `
default = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
never = ["CAP_SYS_ADMIN", "CAP_SYS_MODULE"]

[[rule]]
name = "everyone"
capabilities = ["CAP_CHOWN"]

[[rule]]
name = "web"
capabilities = ["CAP_SETUID", "CAP_SETGID"]
[rule.match.annotations]
"io.kubernetes.cri.sandbox-namespace" = "web-*"

[[rule]]
name = "net-tools"
capabilities = ["CAP_NET_RAW", "CAP_NET_ADMIN"]
[rule.match.annotations]
"io.kubernetes.cri.sandbox-namespace" = "[nN]et-??"
"io.kubernetes.cri.container-type" = "container"
`

func TestDecide(t *testing.T) {
	caps := func(names ...string) capability.Set { return mustCaps(t, names...) }
	oci := capability.OCIDefault
	tests := []struct {
		name        string
		policy      string // "" for decidePolicy
		annotations map[string]string
		env         []string

		requested, allowed, granted, denied, target capability.Set
		unknown                                     []string
		rules                                       []string
	}{
		{
			name:      "no request: the default",
			allowed:   caps("CHOWN"),
			target:    oci,
			rules:     []string{"everyone"},
			requested: 0,
		},
		{
			name:        "capshim annotation",
			annotations: map[string]string{AnnotationCaps: "CAP_CHOWN"},
			requested:   caps("CHOWN"), allowed: caps("CHOWN"), granted: caps("CHOWN"),
			target: oci | caps("CHOWN"), rules: []string{"everyone"},
		},
		{
			name:        "podman annotation",
			annotations: map[string]string{PodmanCaps: "CAP_CHOWN,CAP_SETUID"},
			requested:   caps("CHOWN", "SETUID"), allowed: caps("CHOWN"), granted: caps("CHOWN"),
			denied: caps("SETUID"), target: oci | caps("CHOWN"), rules: []string{"everyone"},
		},
		{
			name:        "both annotations add up",
			annotations: map[string]string{AnnotationCaps: "CAP_CHOWN", PodmanCaps: "CAP_SETUID", nsKey: "web-1"},
			requested:   caps("CHOWN", "SETUID"), allowed: caps("CHOWN", "SETUID", "SETGID"), granted: caps("CHOWN", "SETUID"),
			target: oci | caps("CHOWN", "SETUID"), rules: []string{"everyone", "web"},
		},
		{
			name:      "env var",
			env:       []string{"PATH=/usr/bin", "CAPSHIM_CAPABILITIES=CAP_CHOWN"},
			requested: caps("CHOWN"), allowed: caps("CHOWN"), granted: caps("CHOWN"),
			target: oci | caps("CHOWN"), rules: []string{"everyone"},
		},
		{
			name:      "several env entries add up",
			env:       []string{"CAPSHIM_CAPABILITIES=CAP_CHOWN", "HOME=/root", "CAPSHIM_CAPABILITIES=CAP_NET_RAW"},
			requested: caps("CHOWN", "NET_RAW"), allowed: caps("CHOWN"), granted: caps("CHOWN"),
			denied: caps("NET_RAW"), target: oci | caps("CHOWN"), rules: []string{"everyone"},
		},
		{
			name:    "env var names are exact",
			env:     []string{"capshim_capabilities=CAP_CHOWN", "CAPSHIM_CAPABILITIES_EXTRA=CAP_CHOWN", "XCAPSHIM_CAPABILITIES=CAP_CHOWN", "CAPSHIM_CAPABILITIES"},
			allowed: caps("CHOWN"),
			target:  oci, rules: []string{"everyone"},
		},
		{
			name:        "annotation and env add up",
			annotations: map[string]string{AnnotationCaps: "CAP_SETUID", nsKey: "web-a"},
			env:         []string{"CAPSHIM_CAPABILITIES=CAP_CHOWN"},
			requested:   caps("CHOWN", "SETUID"), allowed: caps("CHOWN", "SETUID", "SETGID"), granted: caps("CHOWN", "SETUID"),
			target: oci | caps("CHOWN", "SETUID"), rules: []string{"everyone", "web"},
		},
		{
			name:        "mixed case, no CAP_, spaces, empty items",
			annotations: map[string]string{AnnotationCaps: " chown, ,Cap_SetUid,,  CAP_setgid ,", nsKey: "web-x"},
			requested:   caps("CHOWN", "SETUID", "SETGID"), allowed: caps("CHOWN", "SETUID", "SETGID"),
			granted: caps("CHOWN", "SETUID", "SETGID"), target: oci | caps("CHOWN", "SETUID", "SETGID"),
			rules: []string{"everyone", "web"},
		},
		{
			name:        "empty request",
			annotations: map[string]string{AnnotationCaps: ""},
			env:         []string{"CAPSHIM_CAPABILITIES=", "CAPSHIM_CAPABILITIES= , ,"},
			allowed:     caps("CHOWN"), target: oci, rules: []string{"everyone"},
		},
		{
			name:        "unknown names",
			annotations: map[string]string{AnnotationCaps: "CAP_CHOWN, CAP_ROOT ,everything"},
			env:         []string{"CAPSHIM_CAPABILITIES=cap_"},
			requested:   caps("CHOWN"), allowed: caps("CHOWN"), granted: caps("CHOWN"),
			target: oci | caps("CHOWN"), unknown: []string{"CAP_ROOT", "everything", "cap_"}, rules: []string{"everyone"},
		},
		{
			name:        "request of a default capability is not denied",
			annotations: map[string]string{AnnotationCaps: "CAP_KILL"},
			requested:   caps("KILL"), allowed: caps("CHOWN"), target: oci, rules: []string{"everyone"},
		},
		{
			name:        "glob on namespace matches",
			annotations: map[string]string{AnnotationCaps: "SETUID", nsKey: "web-frontend"},
			requested:   caps("SETUID"), allowed: caps("CHOWN", "SETUID", "SETGID"), granted: caps("SETUID"),
			target: oci | caps("SETUID"), rules: []string{"everyone", "web"},
		},
		{
			name:        "glob on namespace does not match",
			annotations: map[string]string{AnnotationCaps: "SETUID", nsKey: "api-web-frontend"},
			requested:   caps("SETUID"), allowed: caps("CHOWN"), denied: caps("SETUID"),
			target: oci, rules: []string{"everyone"},
		},
		{
			name:        "matched annotation missing",
			annotations: map[string]string{AnnotationCaps: "SETUID", "io.kubernetes.cri.sandbox-name": "web-1"},
			requested:   caps("SETUID"), allowed: caps("CHOWN"), denied: caps("SETUID"),
			target: oci, rules: []string{"everyone"},
		},
		{
			name:        "rule with two conditions, both hold",
			annotations: map[string]string{AnnotationCaps: "NET_RAW", nsKey: "Net-01", "io.kubernetes.cri.container-type": "container"},
			requested:   caps("NET_RAW"), allowed: caps("CHOWN", "NET_RAW", "NET_ADMIN"), granted: caps("NET_RAW"),
			target: oci | caps("NET_RAW"), rules: []string{"everyone", "net-tools"},
		},
		{
			name:        "rule with two conditions, one fails",
			annotations: map[string]string{AnnotationCaps: "NET_RAW", nsKey: "net-01", "io.kubernetes.cri.container-type": "sandbox"},
			requested:   caps("NET_RAW"), allowed: caps("CHOWN"), denied: caps("NET_RAW"),
			target: oci, rules: []string{"everyone"},
		},
		{
			name:        "never wins over a rule",
			policy:      "[[rule]]\nname = \"all\"\ncapabilities = [\"CHOWN\"]\n",
			annotations: map[string]string{AnnotationCaps: "CAP_SYS_ADMIN,CAP_CHOWN"},
			requested:   caps("SYS_ADMIN", "CHOWN"), allowed: caps("CHOWN"), granted: caps("CHOWN"),
			denied: caps("SYS_ADMIN"), target: oci | caps("CHOWN"), rules: []string{"all"},
		},
		{
			name:        "no rules: only the default",
			policy:      "default = [\"KILL\"]\n",
			annotations: map[string]string{AnnotationCaps: "KILL,CHOWN"},
			requested:   caps("KILL", "CHOWN"), denied: caps("CHOWN"), target: caps("KILL"),
		},
		{
			name:        "empty default",
			policy:      "default = []\n[[rule]]\nname = \"a\"\ncapabilities = [\"CHOWN\"]\n",
			annotations: map[string]string{AnnotationCaps: "CHOWN"},
			requested:   caps("CHOWN"), allowed: caps("CHOWN"), granted: caps("CHOWN"), target: caps("CHOWN"), rules: []string{"a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.policy
			if text == "" {
				text = decidePolicy
			}
			p := mustParse(t, text)
			d := p.Decide(tt.annotations, tt.env)
			want := Decision{
				Requested: tt.requested, Allowed: tt.allowed, Granted: tt.granted,
				Denied: tt.denied, Target: tt.target, Unknown: tt.unknown, Rules: tt.rules,
			}
			if !reflect.DeepEqual(d, want) {
				t.Errorf("Decide:\n got %s\nwant %s", fmtDecision(d), fmtDecision(want))
			}
			if refused := tt.denied != 0 || len(tt.unknown) > 0; d.Refused() != refused {
				t.Errorf("Refused() = %v, want %v", d.Refused(), refused)
			}
		})
	}
}

func fmtDecision(d Decision) string {
	return "requested=" + d.Requested.String() + " allowed=" + d.Allowed.String() + " granted=" + d.Granted.String() +
		" denied=" + d.Denied.String() + " target=" + d.Target.String() +
		" unknown=[" + strings.Join(d.Unknown, "|") + "] rules=[" + strings.Join(d.Rules, "|") + "]"
}

// TestDecideNeverInHandBuiltPolicy: a Policy built in code (not loaded)
// with a never capability in a rule and in the default still never grants
// it.
func TestDecideNeverInHandBuiltPolicy(t *testing.T) {
	p := &Policy{
		Source:  "code",
		Mode:    Enforce,
		Default: mustCaps(t, "KILL", "SYS_ADMIN"),
		Never:   mustCaps(t, "SYS_ADMIN", "SYS_MODULE"),
		Rules:   []Rule{{Name: "bad", Capabilities: mustCaps(t, "SYS_MODULE", "CHOWN")}},
	}
	d := p.Decide(map[string]string{AnnotationCaps: "SYS_MODULE,CHOWN,SYS_ADMIN"}, nil)
	if d.Target != mustCaps(t, "KILL", "CHOWN") {
		t.Errorf("Target = %s, want CAP_CHOWN,CAP_KILL", d.Target)
	}
	if d.Allowed != mustCaps(t, "CHOWN") || d.Granted != mustCaps(t, "CHOWN") {
		t.Errorf("Allowed = %s, Granted = %s; want CAP_CHOWN", d.Allowed, d.Granted)
	}
	if d.Denied != mustCaps(t, "SYS_MODULE", "SYS_ADMIN") {
		t.Errorf("Denied = %s", d.Denied)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		policy  string
		ann     map[string]string
		wantErr []string // nil: no error
	}{
		{
			name:   "drop: denied request passes",
			policy: "on_denied_request = \"drop\"\n",
			ann:    map[string]string{AnnotationCaps: "CAP_SETUID"},
		},
		{
			name:   "default is drop",
			policy: "",
			ann:    map[string]string{AnnotationCaps: "CAP_SETUID,nonsense"},
		},
		{
			name:   "fail: nothing refused",
			policy: "on_denied_request = \"fail\"\n[[rule]]\nname = \"a\"\ncapabilities = [\"SETUID\"]\n",
			ann:    map[string]string{AnnotationCaps: "setuid,kill"},
		},
		{
			name:   "fail: no request",
			policy: "on_denied_request = \"fail\"\n",
		},
		{
			name:    "fail: denied",
			policy:  "on_denied_request = \"fail\"\n",
			ann:     map[string]string{AnnotationCaps: "CAP_SETUID,CAP_KILL,net_raw"},
			wantErr: []string{`request refused (on_denied_request = "fail" in test.toml): not allowed by any matching rule: CAP_SETUID,CAP_NET_RAW`},
		},
		{
			name:    "fail: unknown",
			policy:  "on_denied_request = \"fail\"\n",
			ann:     map[string]string{AnnotationCaps: "CAP_KILL, CAP_ROOT"},
			wantErr: []string{`request refused (on_denied_request = "fail" in test.toml): not capabilities: CAP_ROOT`},
		},
		{
			name:    "fail: many long unknown names are cut in the message",
			policy:  "on_denied_request = \"fail\"\n",
			ann:     map[string]string{AnnotationCaps: strings.Repeat("n"+strings.Repeat("x", 70)+",", 50)},
			wantErr: []string{"not capabilities: n" + strings.Repeat("x", 63) + "...(71 bytes),", ",...(42 more)"},
		},
		{
			name:    "fail: oversized",
			policy:  "on_denied_request = \"fail\"\n",
			ann:     map[string]string{PodmanCaps: strings.Repeat("CAP_CHOWN,", 1000)},
			wantErr: []string{`request refused (on_denied_request = "fail" in test.toml): annotation "io.containers.capabilities" refused: 10000 bytes, over the limit of 4096 bytes; nothing in it is granted`},
		},
		{
			name:    "fail: denied and unknown",
			policy:  "on_denied_request = \"fail\"\n",
			ann:     map[string]string{AnnotationCaps: "SYS_ADMIN,foo,bar"},
			wantErr: []string{`not allowed by any matching rule: CAP_SYS_ADMIN; not capabilities: foo,bar`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.policy)
			d := p.Decide(tt.ann, nil)
			err := p.Check(&d)
			if tt.wantErr == nil {
				if err != nil {
					t.Errorf("Check = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check = nil, want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// randomSet returns a random subset of the capabilities, biased towards
// small sets.
func randomSet(rnd *rand.Rand) capability.Set {
	switch rnd.Intn(4) {
	case 0:
		return 0
	case 1:
		return capability.Set(rnd.Uint64()) & capability.All
	}
	var s capability.Set
	for n := rnd.Intn(5); n > 0; n-- {
		s = s.Add(capability.Cap(rnd.Intn(capability.NumCaps)))
	}
	return s
}

// randomRequest renders a random request the way people write them.
func randomRequest(rnd *rand.Rand) string {
	var items []string
	for n := rnd.Intn(6); n > 0; n-- {
		c := capability.Cap(rnd.Intn(capability.NumCaps))
		name := c.String()
		switch rnd.Intn(6) {
		case 0:
			name = strings.ToLower(name)
		case 1:
			name = strings.TrimPrefix(name, "CAP_")
		case 2:
			name = " " + strings.ToLower(strings.TrimPrefix(name, "CAP_")) + " "
		case 3:
			name = []string{"", " ", "CAP_NOPE", "root", "CAP_"}[rnd.Intn(5)]
		}
		items = append(items, name)
	}
	return strings.Join(items, ",")
}

// TestDecideProperties checks the decision invariants over random
// policies (built in code, so never may overlap rules and default) and
// random requests.
func TestDecideProperties(t *testing.T) {
	rnd := rand.New(rand.NewSource(42))
	namespaces := []string{"web-1", "web-2", "api", "kube-system", "net-01"}
	globs := []string{"*", "web-*", "api", "net-??", "[!w]*", "kube-*", "nothing"}
	for i := 0; i < 5000; i++ {
		p := &Policy{Source: "random", Mode: Enforce, Default: randomSet(rnd), Never: randomSet(rnd)}
		for r := rnd.Intn(4); r > 0; r-- {
			rule := Rule{Name: "r" + itoa(r), Capabilities: randomSet(rnd)}
			if rnd.Intn(2) == 0 {
				rule.Annotations = []Match{{Key: nsKey, Glob: globs[rnd.Intn(len(globs))]}}
			}
			p.Rules = append(p.Rules, rule)
		}
		ann := map[string]string{}
		if rnd.Intn(3) > 0 {
			ann[nsKey] = namespaces[rnd.Intn(len(namespaces))]
		}
		if rnd.Intn(2) == 0 {
			ann[AnnotationCaps] = randomRequest(rnd)
		}
		if rnd.Intn(4) == 0 {
			ann[PodmanCaps] = randomRequest(rnd)
		}
		var env []string
		for n := rnd.Intn(3); n > 0; n-- {
			env = append(env, EnvCaps+"="+randomRequest(rnd))
		}
		// Now and then a request over the bounds, by size or by count.
		switch rnd.Intn(10) {
		case 0:
			ann[AnnotationCaps] = strings.Repeat(randomRequest(rnd)+",", 200+rnd.Intn(2000))
		case 1:
			ann[PodmanCaps] = strings.Repeat("chown,", MaxRequestNames-2+rnd.Intn(5))
		case 2:
			for n := 10 + rnd.Intn(30); n > 0; n-- {
				env = append(env, EnvCaps+"="+strings.Repeat("kill,", 1+rnd.Intn(4)))
			}
		}
		// The model of the request: a source over either bound counts
		// for nothing, every other source adds what it names.
		var wantReq capability.Set
		var wantOver []string
		model := func(source string, values []string) {
			size, names := 0, 0
			for _, v := range values {
				size += len(v)
				for _, item := range strings.Split(v, ",") {
					if strings.TrimSpace(item) != "" {
						names++
					}
				}
			}
			if size > MaxRequestBytes || names > MaxRequestNames {
				wantOver = append(wantOver, source)
				return
			}
			for _, v := range values {
				set, _ := capability.ParseCommaList(v)
				wantReq |= set
			}
		}
		for _, key := range []string{AnnotationCaps, PodmanCaps} {
			if v, ok := ann[key]; ok {
				model(`annotation "`+key+`"`, []string{v})
			}
		}
		var envVals []string
		for _, e := range env {
			envVals = append(envVals, strings.TrimPrefix(e, EnvCaps+"="))
		}
		model("env "+EnvCaps, envVals)

		d := p.Decide(ann, env)
		fail := func(what string) {
			t.Helper()
			t.Fatalf("iteration %d: %s\npolicy default=%s never=%s rules=%+v\nannotations=%v env=%q\ndecision %s",
				i, what, p.Default, p.Never, p.Rules, ann, env, fmtDecision(d))
		}
		if d.Requested != wantReq {
			fail("Requested ≠ what the sources within the bounds name")
		}
		var over []string
		for _, o := range d.Oversized {
			over = append(over, o.Source)
		}
		if !reflect.DeepEqual(over, wantOver) {
			fail(fmt.Sprintf("Oversized sources %q, want %q", over, wantOver))
		}
		if len(d.Oversized) > 0 && !d.Refused() {
			fail("an oversized request is not Refused")
		}
		if d.Target&^(p.Default|d.Allowed) != 0 {
			fail("Target ⊄ Default ∪ Allowed")
		}
		if d.Target&p.Never != 0 {
			fail("Target ∩ Never ≠ ∅")
		}
		if d.Allowed&p.Never != 0 {
			fail("Allowed ∩ Never ≠ ∅")
		}
		if d.Granted&^d.Requested != 0 {
			fail("Granted ⊄ Requested")
		}
		if d.Granted&^d.Allowed != 0 {
			fail("Granted ⊄ Allowed")
		}
		if p.Default&p.Never == 0 && p.Default&^d.Target != 0 {
			fail("Default ⊄ Target although Default ∩ Never = ∅")
		}
		if d.Denied != d.Requested&^d.Target {
			fail("Denied ≠ Requested − Target")
		}
		if d.Target != (p.Default|d.Requested&d.Allowed)&^p.Never {
			fail("Target ≠ (Default ∪ (Requested ∩ Allowed)) − Never")
		}
		var matched []string
		for _, r := range p.Rules {
			if r.Matches(ann) {
				matched = append(matched, r.Name)
			}
		}
		if !reflect.DeepEqual(d.Rules, matched) {
			fail("Rules are not the matching rules in order")
		}
		if again := p.Decide(ann, env); !reflect.DeepEqual(again, d) {
			fail("Decide is not deterministic")
		}
	}
}

// TestDecideBounds: a request over MaxRequestBytes or MaxRequestNames is
// refused whole, reported by its size only, and grants nothing; the other
// requests of the same container still count.
func TestDecideBounds(t *testing.T) {
	caps := func(names ...string) capability.Set { return mustCaps(t, names...) }
	all := strings.Join(capability.All.Names(), ", ")
	mega := strings.Repeat("A", 1<<20)
	atBytes := "CAP_CHOWN," + strings.Repeat(" ", MaxRequestBytes-len("CAP_CHOWN,"))
	names := func(n int) string { return "CAP_CHOWN" + strings.Repeat(",kill", n-1) }
	ann := `annotation "` + AnnotationCaps + `"`
	tests := []struct {
		name        string
		annotations map[string]string
		env         []string

		requested capability.Set
		unknown   []string
		oversized []Oversized
	}{
		{
			name:        "every capability written out is well within the bounds",
			annotations: map[string]string{AnnotationCaps: all},
			requested:   capability.All,
		},
		{
			name:        "exactly MaxRequestBytes",
			annotations: map[string]string{AnnotationCaps: atBytes},
			requested:   caps("CHOWN"),
		},
		{
			name:        "one byte over MaxRequestBytes",
			annotations: map[string]string{AnnotationCaps: atBytes + " "},
			oversized:   []Oversized{{Source: ann, Bytes: MaxRequestBytes + 1}},
		},
		{
			name:        "a megabyte of one name",
			annotations: map[string]string{AnnotationCaps: mega},
			oversized:   []Oversized{{Source: ann, Bytes: 1 << 20}},
		},
		{
			name:        "a megabyte that starts with a real capability grants nothing",
			annotations: map[string]string{AnnotationCaps: "CAP_CHOWN," + mega},
			oversized:   []Oversized{{Source: ann, Bytes: 1<<20 + 10}},
		},
		{
			name:        "exactly MaxRequestNames",
			annotations: map[string]string{AnnotationCaps: names(MaxRequestNames)},
			requested:   caps("CHOWN", "KILL"),
		},
		{
			name:        "one name over MaxRequestNames",
			annotations: map[string]string{AnnotationCaps: names(MaxRequestNames + 1)},
			oversized:   []Oversized{{Source: ann, Bytes: len(names(MaxRequestNames + 1)), Names: MaxRequestNames + 1}},
		},
		{
			name:        "empty items are not names",
			annotations: map[string]string{AnnotationCaps: "chown" + strings.Repeat(", ,", 500)},
			requested:   caps("CHOWN"),
		},
		{
			name:        "podman annotation over the bounds; the capshim one still counts",
			annotations: map[string]string{AnnotationCaps: "CAP_KILL", PodmanCaps: mega},
			requested:   caps("KILL"),
			oversized:   []Oversized{{Source: `annotation "` + PodmanCaps + `"`, Bytes: 1 << 20}},
		},
		{
			name:      "env entries add up to one request",
			env:       []string{EnvCaps + "=" + atBytes[:3000], "PATH=/bin", EnvCaps + "=" + strings.Repeat(" ", 2000)},
			oversized: []Oversized{{Source: "env " + EnvCaps, Bytes: 5000}},
		},
		{
			name:      "env names add up across entries",
			env:       []string{EnvCaps + "=" + names(40), EnvCaps + "=" + names(40)},
			oversized: []Oversized{{Source: "env " + EnvCaps, Bytes: 2 * len(names(40)), Names: 80}},
		},
		{
			name:        "env over the bounds; the annotation still counts",
			annotations: map[string]string{AnnotationCaps: "CAP_CHOWN,CAP_ROOT"},
			env:         []string{EnvCaps + "=" + mega},
			requested:   caps("CHOWN"),
			unknown:     []string{"CAP_ROOT"},
			oversized:   []Oversized{{Source: "env " + EnvCaps, Bytes: 1 << 20}},
		},
		{
			name:        "all three over the bounds",
			annotations: map[string]string{AnnotationCaps: mega, PodmanCaps: names(100)},
			env:         []string{EnvCaps + "=" + mega},
			oversized: []Oversized{
				{Source: ann, Bytes: 1 << 20},
				{Source: `annotation "` + PodmanCaps + `"`, Bytes: len(names(100)), Names: 100},
				{Source: "env " + EnvCaps, Bytes: 1 << 20},
			},
		},
		{
			name:        "names at the bound, each long: unknown names are at most the request",
			annotations: map[string]string{AnnotationCaps: strings.Repeat(strings.Repeat("x", 60)+",", MaxRequestNames)},
			unknown:     slicesRepeat(strings.Repeat("x", 60), MaxRequestNames),
		},
	}
	p := mustParse(t, "on_denied_request = \"fail\"\n[[rule]]\nname = \"all\"\ncapabilities = [\"CHOWN\", \"KILL\"]\n")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.annotations, tt.env)
			if d.Requested != tt.requested {
				t.Errorf("Requested = %s, want %s", d.Requested, tt.requested)
			}
			if !reflect.DeepEqual(d.Unknown, tt.unknown) {
				t.Errorf("Unknown = %q, want %q", d.Unknown, tt.unknown)
			}
			if !reflect.DeepEqual(d.Oversized, tt.oversized) {
				t.Errorf("Oversized = %+v, want %+v", d.Oversized, tt.oversized)
			}
			if d.Granted&^d.Requested != 0 {
				t.Errorf("Granted %s beyond Requested %s", d.Granted, d.Requested)
			}
			err := p.Check(&d)
			if refused := len(tt.oversized) > 0 || len(tt.unknown) > 0 || d.Denied != 0; (err != nil) != refused {
				t.Fatalf("Check = %v, want an error: %v", err, refused)
			}
			if err == nil {
				return
			}
			// The error says what was refused and how large it was, never
			// what it held, and stays short whatever the request.
			for _, o := range tt.oversized {
				if !strings.Contains(err.Error(), o.String()) {
					t.Errorf("Check = %q lacks %q", err, o.String())
				}
			}
			if len(err.Error()) > 1024 {
				t.Errorf("Check error is %d bytes: %.200q...", len(err.Error()), err)
			}
			if strings.Contains(err.Error(), "AAAA") || strings.Contains(err.Error(), "kill,kill") {
				t.Errorf("Check error echoes the refused request: %.200q", err)
			}
		})
	}
}

func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestOversizedString(t *testing.T) {
	tests := []struct {
		name string
		o    Oversized
		want string
	}{
		{"by size", Oversized{Source: `annotation "capshim.io/capabilities"`, Bytes: 1 << 20},
			`annotation "capshim.io/capabilities" refused: 1048576 bytes, over the limit of 4096 bytes; nothing in it is granted`},
		{"by names", Oversized{Source: "env CAPSHIM_CAPABILITIES", Bytes: 400, Names: 65},
			`env CAPSHIM_CAPABILITIES refused: 65 names, over the limit of 64 names; nothing in it is granted`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.o.String(); got != tt.want {
				t.Errorf("String = %q, want %q", got, tt.want)
			}
		})
	}
}
