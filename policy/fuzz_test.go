package policy

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/capshim/capshim/capability"
)

// FuzzParse feeds arbitrary policy text to Parse. It must return a
// *LoadError or a policy that keeps the load-time guarantees, and deciding
// with it must hold the decision invariants.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../shim.toml.example")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example, "capshim.io/capabilities", "CAP_CHOWN, setuid", "web-1")
	f.Add([]byte("default = [\"kill\"]\nnever = []\n[[rule]]\nname = \"a\"\ncapabilities = [\"chown\"]\n[rule.match.annotations]\n\"ns\" = \"web-[a-c]*\"\n"), "ns", "chown", "web-b1")
	f.Add([]byte("mode = \"audit\"\non_denied_request = \"fail\"\nlog = \"/var/log/capshim.jsonl\"\n"), "x", "sys_admin", "")
	// The refused policies reach the code that finds lines and keys.
	for _, tt := range parseErrorTests {
		f.Add([]byte(tt.toml), "x", "chown", "y")
	}
	for _, c := range fastCases {
		f.Add([]byte(c), "k", "chown", "v")
	}
	f.Fuzz(func(t *testing.T, data []byte, key, request, value string) {
		// The fast path and the decoder read every policy alike.
		checkFastAgrees(t, 0, string(data))
		p, err := Parse(data, "fuzz.toml")
		if err != nil {
			le, ok := err.(*LoadError)
			if !ok {
				t.Fatalf("error %T is not a *LoadError: %v", err, err)
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			if lines := bytes.Count(data, []byte("\n")) + 1; le.Line < 0 || le.Line > lines {
				t.Fatalf("line %d of a %d-line policy: %v", le.Line, lines, err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("message %q is not one line", err)
			}
			return
		}
		// Parse checks the layout only for a loose rule table, on the
		// grounds that the decoder refuses every other misfit.
		if lerr := checkShape(data, "fuzz.toml"); lerr != nil {
			t.Fatalf("Parse took a policy that does not fit the schema: %v", lerr)
		}
		if p.Default&p.Never != 0 {
			t.Fatalf("default and never overlap: %s", p.Default&p.Never)
		}
		// What any rule may give or keep, whichever of them match.
		var grants, keeps capability.Set
		for _, r := range p.Rules {
			if (r.Capabilities|r.Grant|r.Keep)&p.Never != 0 {
				t.Fatalf("rule %q grants or keeps never-capabilities", r.Name)
			}
			grants |= r.Grant
			keeps |= r.Keep
		}
		d := p.Decide(map[string]string{key: value, AnnotationCaps: request}, []string{EnvCaps + "=" + request})
		if d.Target&p.Never != 0 {
			t.Fatalf("target holds never-capabilities %s", d.Target&p.Never)
		}
		if d.Given&^grants != 0 || d.Kept&^keeps != 0 {
			t.Fatalf("given %s or kept %s is in no rule", d.Given, d.Kept)
		}
		base := p.Default
		if d.HasKeep {
			base = d.Kept
		}
		switch {
		case d.Learn:
			if d.Target != capability.All&^p.Never {
				t.Fatalf("a learned container's target %s is not everything but never", d.Target)
			}
		case d.Target&^(base|d.Given|d.Allowed) != 0:
			t.Fatalf("target %s beyond (kept or default) ∪ given ∪ allowed", d.Target)
		}
		if d.Granted&^d.Requested != 0 || d.Target&^capability.All != 0 {
			t.Fatalf("bad decision %+v", d)
		}
	})
}
