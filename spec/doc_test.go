package spec

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/internal/golden"
)

// The fixtures are real specs captured from Docker 20.10, containerd 1.6
// and runc 1.1.
var fixtures = []struct {
	file string
	kind Kind
}{
	{"config.default.json", Config},
	{"config.privileged.json", Config},
	{"config.cri-container.json", Config},
	{"config.cri-sandbox.json", Config},
	{"config.ctr-run.json", Config},
	{"config.runc-spec.json", Config},
	{"config.runc-spec-rootless.json", Config},
	{"exec-process.json", Process},
	{"exec-process.privileged.json", Process},
	{"exec-process.user1000.json", Process},
}

func TestReduceFixtures(t *testing.T) {
	targets := []struct {
		name   string
		target capability.Set
	}{
		{"oci", capability.OCIDefault},
		{"oci+chown", capability.OCIDefault | 1},
		{"none", 0},
	}
	for _, fx := range fixtures {
		data, err := os.ReadFile(filepath.Join("testdata", fx.file))
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range targets {
			t.Run(fx.file+"/"+tg.name, func(t *testing.T) {
				doc, err := Parse(data, fx.kind)
				if err != nil {
					t.Fatal(err)
				}
				out, sets := doc.Reduce(tg.target)
				if err := checkReduce(data, fx.kind, tg.target, out, sets); err != nil {
					t.Fatal(err)
				}
				golden.Check(t, "golden/"+strings.TrimSuffix(fx.file, ".json")+"."+tg.name+".json", out)
			})
		}
	}
}

// TestDockerDefault is the acceptance case: Docker's default spec
// keeps exactly the three minimal capabilities in bounding, effective and
// permitted, and nothing else changes.
func TestDockerDefault(t *testing.T) {
	data, err := os.ReadFile("testdata/config.default.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(data, Config)
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.Sets()[Bounding]; got != capability.DockerDefault {
		t.Fatalf("input bounding = %s, want Docker's 14", got)
	}
	out, sets := doc.Reduce(capability.OCIDefault)
	for _, s := range []Set{Bounding, Effective, Permitted} {
		if sets[s] != capability.OCIDefault {
			t.Errorf("%s = %s, want %s", s, sets[s], capability.OCIDefault)
		}
	}
	if sets[Inheritable] != 0 || sets[Ambient] != 0 {
		t.Errorf("inheritable/ambient = %s/%s, want none", sets[Inheritable], sets[Ambient])
	}
	if len(out) >= len(data) {
		t.Errorf("output is not shorter than input")
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name string
		kind Kind
		doc  string
		want string // part of the error
	}{
		{"empty", Config, ``, "empty document"},
		{"blank", Config, "  \n", "empty document"},
		{"not an object", Config, `[1,2]`, "not a JSON object"},
		{"null", Config, `null`, "not a JSON object"},
		{"truncated", Config, `{"process":{"capabilities":{"bounding":["CAP_KILL"`, "unexpected end of input"},
		{"trailing data", Config, `{"process":{}} {"process":{}}`, "data after the end"},
		{"trailing garbage", Config, `{}x`, "data after the end"},
		{"bom", Config, "\xef\xbb\xbf{}", "unexpected character"},
		{"trailing comma", Config, `{"a":1,}`, "expected a string"},
		{"single quotes", Config, `{'a':1}`, "expected a string"},
		{"leading zero", Config, `{"a":01}`, "expected ',' or '}'"},
		{"bad escape", Config, `{"a":"\x"}`, "invalid escape"},
		{"short unicode escape", Config, `{"a":"\u12"}`, "invalid \\u escape"},
		{"control char", Config, "{\"a\":\"\x01\"}", "control character"},
		{"duplicate process", Config, `{"process":{},"process":{}}`, "appears twice"},
		{"process in other case", Config, `{"Process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}`, "only in case"},
		{"process with long s", Config, `{"proceſs":{}}`, "only in case"},
		{"escaped process key duplicate", Config, `{"process":{},"pr\u006fcess":{}}`, "appears twice"},
		{"duplicate capabilities", Config, `{"process":{"capabilities":{},"capabilities":null}}`, "appears twice"},
		{"duplicate bounding", Config, `{"process":{"capabilities":{"bounding":[],"bounding":["CAP_SYS_ADMIN"]}}}`, "appears twice"},
		{"bounding in other case", Config, `{"process":{"capabilities":{"Bounding":["CAP_SYS_ADMIN"]}}}`, "only in case"},
		{"kelvin sign", Process, `{"capabilities":{"bounding":[],"effective":[],"Kelvin":1}}`, ""},
		{"set not an array", Config, `{"process":{"capabilities":{"bounding":"CAP_KILL"}}}`, "not an array of strings"},
		{"element not a string", Config, `{"process":{"capabilities":{"bounding":[5]}}}`, "not a string"},
		{"capabilities not an object", Config, `{"process":{"capabilities":[]}}`, "not a JSON object"},
		{"process not an object", Config, `{"process":"x"}`, "not a JSON object"},
		{"annotation not a string", Config, `{"annotations":{"a":1}}`, "not a string"},
		{"annotations not an object", Config, `{"annotations":[]}`, "not an object"},
		{"duplicate annotations", Config, `{"annotations":{},"annotations":{}}`, "appears twice"},
		{"env not strings", Config, `{"process":{"env":[1]}}`, "not a string"},
		{"process.json capabilities in other case", Process, `{"CAPABILITIES":{"bounding":["CAP_SYS_ADMIN"]}}`, "only in case"},
		{"process with NUL, before the real one", Config, `{"process\u0000":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}},"process":{}}`, "NUL character"},
		{"process with NUL, alone", Config, `{"process\u0000x":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}`, "NUL character"},
		{"process with NUL in other case", Config, `{"PROCESS\u0000":{}}`, "NUL character"},
		{"capabilities with NUL", Config, `{"process":{"capabilities\u0000":{"bounding":["CAP_SYS_ADMIN"]},"capabilities":{}}}`, "NUL character"},
		{"bounding with NUL", Config, `{"process":{"capabilities":{"bounding\u0000":["CAP_SYS_ADMIN"],"bounding":[]}}}`, "NUL character"},
		{"process.json capabilities with NUL", Process, `{"capabilities\u0000":{"bounding":["CAP_SYS_ADMIN"]}}`, "NUL character"},
		{"process.json ambient with NUL", Process, `{"capabilities":{"ambient\u0000z":["CAP_SYS_ADMIN"]}}`, "NUL character"},
		{"annotations with NUL", Config, `{"annotations\u0000":{}}`, "NUL character"},
		{"NUL before a field name is harmless", Config, `{"\u0000process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}`, ""},
		{"comment (crun reads it, runc refuses)", Config, `{/* c */"process":{}}`, "expected a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), tt.kind)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted %q", tt.doc)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestParseDeepNesting(t *testing.T) {
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	if _, err := Parse([]byte(`{"x":`+deep+`}`), Config); err == nil || !strings.Contains(err.Error(), "nesting") {
		t.Fatalf("deep nesting: err = %v", err)
	}
	ok := strings.Repeat("[", maxDepth-2) + strings.Repeat("]", maxDepth-2)
	if _, err := Parse([]byte(`{"x":`+ok+`}`), Config); err != nil {
		t.Fatalf("nesting within the limit: %v", err)
	}
}

func TestReduceCases(t *testing.T) {
	tests := []struct {
		name   string
		kind   Kind
		doc    string
		target capability.Set
		want   string
	}{
		{"unchanged when within target", Config,
			`{"process":{"capabilities":{"bounding":["CAP_KILL"]}}}`, capability.OCIDefault,
			`{"process":{"capabilities":{"bounding":["CAP_KILL"]}}}`},
		{"null sets stay null", Config,
			`{"process":{"capabilities":{"bounding":null,"ambient":null}}}`, 0,
			`{"process":{"capabilities":{"bounding":null,"ambient":null}}}`},
		{"no process", Config, `{"ociVersion":"1.0.2"}`, 0, `{"ociVersion":"1.0.2"}`},
		{"lower-case names are unknown to runc and dropped", Config,
			`{"process":{"capabilities":{"bounding":["kill","cap_kill","CAP_KILL"]}}}`, capability.OCIDefault,
			`{"process":{"capabilities":{"bounding":["CAP_KILL"]}}}`},
		{"escaped names are read like runc reads them", Config,
			`{"process":{"capabilities":{"bounding":["CAP_\u004bILL","CAP_SYS_ADMIN"]}}}`, capability.OCIDefault,
			`{"process":{"capabilities":{"bounding":["CAP_KILL"]}}}`},
		{"escaped name kept as written when nothing changes", Config,
			`{"process":{"capabilities":{"bounding":["CAP_\u004bILL"]}}}`, capability.OCIDefault,
			`{"process":{"capabilities":{"bounding":["CAP_\u004bILL"]}}}`},
		{"duplicates removed", Config,
			`{"process":{"capabilities":{"bounding":["CAP_KILL","CAP_KILL"]}}}`, capability.OCIDefault,
			`{"process":{"capabilities":{"bounding":["CAP_KILL"]}}}`},
		{"null element dropped", Config,
			`{"process":{"capabilities":{"bounding":[null,"CAP_KILL"]}}}`, capability.OCIDefault,
			`{"process":{"capabilities":{"bounding":["CAP_KILL"]}}}`},
		{"ambient needs permitted and inheritable", Config,
			`{"process":{"capabilities":{"bounding":["CAP_KILL"],"permitted":["CAP_KILL"],"ambient":["CAP_KILL"]}}}`, capability.OCIDefault,
			`{"process":{"capabilities":{"bounding":["CAP_KILL"],"permitted":["CAP_KILL"],"ambient":[]}}}`},
		{"effective needs permitted", Config,
			`{"process":{"capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"]}}}`, capability.OCIDefault,
			`{"process":{"capabilities":{"bounding":["CAP_KILL"],"effective":[]}}}`},
		{"permitted needs bounding", Config,
			`{"process":{"capabilities":{"permitted":["CAP_KILL"]}}}`, capability.OCIDefault,
			`{"process":{"capabilities":{"permitted":[]}}}`},
		{"big integers and unknown fields untouched", Config,
			`{"x-future":{"n":18446744073709551615,"f":1e400},"process":{"capabilities":{"bounding":["CAP_CHOWN"]}},"s":"\u0000\ud800"}`, capability.OCIDefault,
			`{"x-future":{"n":18446744073709551615,"f":1e400},"process":{"capabilities":{"bounding":[]}},"s":"\u0000\ud800"}`},
		{"indented arrays stay indented", Config,
			"{\"process\": {\"capabilities\": {\"bounding\": [\n\t\"CAP_CHOWN\",\n\t\"CAP_KILL\",\n\t\"CAP_NET_BIND_SERVICE\"\n]}}}", capability.OCIDefault,
			"{\"process\": {\"capabilities\": {\"bounding\": [\n\t\"CAP_KILL\",\n\t\"CAP_NET_BIND_SERVICE\"\n]}}}"},
		{"spaced arrays keep their spacing", Config,
			`{"process":{"capabilities":{"bounding":[ "CAP_CHOWN", "CAP_KILL", "CAP_AUDIT_WRITE" ]}}}`, capability.OCIDefault,
			`{"process":{"capabilities":{"bounding":[ "CAP_KILL", "CAP_AUDIT_WRITE" ]}}}`},
		{"process.json", Process,
			`{"args":["sh"],"capabilities":{"bounding":["CAP_SYS_ADMIN","CAP_KILL"]}}`, capability.OCIDefault,
			`{"args":["sh"],"capabilities":{"bounding":["CAP_KILL"]}}`},
		{"capabilities keys elsewhere are not ours", Config,
			`{"linux":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}},"process":{"user":{"capabilities":1}}}`, 0,
			`{"linux":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}},"process":{"user":{"capabilities":1}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse([]byte(tt.doc), tt.kind)
			if err != nil {
				t.Fatal(err)
			}
			out, sets := doc.Reduce(tt.target)
			if string(out) != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", out, tt.want)
			}
			if err := checkReduce([]byte(tt.doc), tt.kind, tt.target, out, sets); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAnnotationsAndEnv(t *testing.T) {
	doc, err := Parse([]byte(`{"annotations":{"a":"1","a":"2","b":null,"c":"\u00e9"},"process":{"env":["A=1","CAPSHIM_CAPABILITIES=chown"]}}`), Config)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "2", "b": "", "c": "é"}
	if fmt.Sprint(doc.Annotations) != fmt.Sprint(want) {
		t.Errorf("annotations = %v, want %v (the last duplicate wins, as in encoding/json)", doc.Annotations, want)
	}
	if len(doc.Env) != 2 || doc.Env[1] != "CAPSHIM_CAPABILITIES=chown" {
		t.Errorf("env = %q", doc.Env)
	}
}

// genDoc writes a random spec: random key order and layout, unknown
// fields, big integers, escapes, and capability lists with known, unknown,
// lower-case, escaped, duplicate and null names, and names only crun
// reads. With hostile set, some keys on the path to the capability sets
// are written so that one runtime could read them as another key (a NUL,
// another case, a second copy), sometimes as a decoy member that grants
// CAP_SYS_ADMIN; it reports whether it wrote one.
func genDoc(r *rand.Rand, kind Kind, hostile bool) ([]byte, bool) {
	var b bytes.Buffer
	wrote := false
	// The keys on the path to the capability sets, and those a decision
	// reads.
	onPath := map[string]bool{"process": true, "capabilities": true, "env": true, "annotations": true}
	for s := Bounding; s < NumSets; s++ {
		onPath[s.String()] = true
	}
	// key returns k, or with hostile a spelling another runtime reads as k.
	key := func(k string) string {
		if !onPath[k] || r.Intn(8) != 0 {
			return k
		}
		if !hostile {
			// Harmless (in a document without hostile keys, so that no
			// decoy hides below it): neither runtime reads this as any
			// spec field.
			return k[:1] + `\u0000` + k[1:]
		}
		wrote = true
		switch r.Intn(4) {
		case 0:
			return k + `\u0000`
		case 1:
			return k + `\u0000x`
		case 2:
			return strings.ToUpper(k[:1]) + k[1:]
		}
		return strings.ToUpper(k)
	}
	indent := r.Intn(3) // 0 compact, 1 tabs, 2 spaces after commas
	nl := func(depth int) {
		switch indent {
		case 1:
			b.WriteString("\n" + strings.Repeat("\t", depth))
		case 2:
			b.WriteString(" ")
		}
	}
	name := func() string {
		c := capability.Cap(r.Intn(capability.NumCaps))
		switch r.Intn(12) {
		case 0:
			return strings.ToLower(c.String())
		case 1:
			return "CAP_FUTURE_" + fmt.Sprint(r.Intn(3))
		case 2:
			s := c.String()
			return s[:4] + `\u00` + fmt.Sprintf("%x", s[4]) + s[5:]
		case 3:
			return `CAP_\u004bILL`
		case 4:
			return c.String() + `\u0000x` // crun reads c
		case 5:
			return c.String() + ",x" // crun reads c
		case 6:
			return fmt.Sprint(int(c)) // crun reads c
		}
		return c.String()
	}
	array := func(depth int) {
		switch r.Intn(8) {
		case 0:
			b.WriteString("null")
			return
		case 1:
			b.WriteString("[]")
			return
		}
		b.WriteString("[")
		n := r.Intn(16)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			nl(depth + 1)
			if r.Intn(30) == 0 {
				b.WriteString("null")
			} else {
				b.WriteString(`"` + name() + `"`)
			}
		}
		nl(depth)
		b.WriteString("]")
	}
	object := func(depth int, members []func(int)) {
		r.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
		b.WriteString("{")
		for i, m := range members {
			if i > 0 {
				b.WriteString(",")
			}
			nl(depth + 1)
			m(depth + 1)
		}
		nl(depth)
		b.WriteString("}")
	}
	field := func(k string, value func(int)) func(int) {
		return func(depth int) {
			b.WriteString(`"` + key(k) + `":`)
			if indent > 0 {
				b.WriteString(" ")
			}
			value(depth)
		}
	}
	lit := func(s string) func(int) { return func(int) { b.WriteString(s) } }
	caps := func(depth int) {
		var ms []func(int)
		for s := Bounding; s < NumSets; s++ {
			if r.Intn(5) > 0 {
				ms = append(ms, field(s.String(), array))
			}
		}
		if r.Intn(3) == 0 {
			ms = append(ms, field("x-caps-future", lit(`[18446744073709551615]`)))
		}
		if hostile && r.Intn(6) == 0 {
			wrote = true
			ms = append(ms, lit(`"bounding\u0000":["CAP_SYS_ADMIN"]`))
		}
		object(depth, ms)
	}
	process := func(depth int) {
		ms := []func(int){
			field("args", lit(`["sh","-c","echo \"\u00e9\\n\""]`)),
			field("env", lit(`["PATH=/bin","CAPSHIM_CAPABILITIES=chown"]`)),
			field("user", lit(`{"uid":0,"gid":0}`)),
		}
		if r.Intn(10) > 0 {
			ms = append(ms, field("capabilities", caps))
		} else if r.Intn(2) == 0 {
			ms = append(ms, field("capabilities", lit("null")))
		}
		if hostile && r.Intn(6) == 0 {
			wrote = true
			ms = append(ms, lit(`"capabilities\u0000":{"bounding":["CAP_SYS_ADMIN"],"effective":["CAP_SYS_ADMIN"],"permitted":["CAP_SYS_ADMIN"]}`))
		}
		object(depth, ms)
	}
	if kind == Process {
		process(0)
		return b.Bytes(), wrote
	}
	ms := []func(int){
		field("ociVersion", lit(`"1.0.2-dev"`)),
		field("hostname", lit(`"h\u0000\ud83d\ude00"`)),
		field("linux", lit(`{"resources":{"memory":{"limit":9223372036854775807,"swap":-1}},"seccomp":{"syscalls":[{"args":[{"value":18446744073709551614}]}]}}`)),
		field("x-future", lit(`{"nested":[18446744073709551615,1.5e300,-0,true,false,null,{}]}`)),
		field("annotations", lit(`{"capshim.io/capabilities":"CAP_CHOWN"}`)),
	}
	if r.Intn(10) > 0 {
		ms = append(ms, field("process", process))
	}
	if hostile && r.Intn(6) == 0 {
		wrote = true
		ms = append(ms, lit(`"process\u0000":{"capabilities":{"bounding":["CAP_SYS_ADMIN"],"effective":["CAP_SYS_ADMIN"],"permitted":["CAP_SYS_ADMIN"]}}`))
	}
	object(0, ms)
	return b.Bytes(), wrote
}

// TestReduceProperties checks the reduction's invariants on generated
// specs against random targets: never escalate, within target,
// consistent sets, nothing else changes, idempotent, deterministic, for
// runc's reading and crun's. Half the specs carry keys that runc and crun
// could read differently: those must all be refused, and every other spec
// accepted.
func TestReduceProperties(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	n := 4000
	if testing.Short() {
		n = 400
	}
	var refused, accepted int
	for i := 0; i < n; i++ {
		kind := Kind(r.Intn(2))
		data, hostile := genDoc(r, kind, i%2 == 1)
		target := capability.Set(r.Uint64()) & capability.All
		if r.Intn(3) == 0 {
			target = capability.OCIDefault
		}
		doc, err := Parse(data, kind)
		if hostile {
			if err == nil {
				t.Fatalf("case %d: spec with a key the runtimes read differently accepted:\n%s", i, data)
			}
			refused++
			continue
		}
		if err != nil {
			t.Fatalf("case %d: generated spec refused: %v\n%s", i, err, data)
		}
		accepted++
		want, err := runcSets(data, kind)
		if err != nil {
			t.Fatalf("case %d: runc cannot decode the generated spec: %v", i, err)
		}
		if got := doc.Sets(); got != want {
			t.Fatalf("case %d: capshim reads %v, runc reads %v\n%s", i, got, want, data)
		}
		out, sets := doc.Reduce(target)
		if err := checkReduce(data, kind, target, out, sets); err != nil {
			t.Fatalf("case %d (target %s): %v\nin:  %s\nout: %s", i, target, err, data, out)
		}
		if want := Tidy(want, target); sets != want {
			t.Fatalf("case %d: sets %v, want %v", i, sets, want)
		}
	}
	if refused < n/10 || accepted < n/2 {
		t.Fatalf("generator too one-sided: %d refused, %d accepted of %d", refused, accepted, n)
	}
}

func TestDropped(t *testing.T) {
	doc, err := Parse([]byte(`{"process":{"capabilities":{"bounding":["CAP_CHOWN","kill","CAP_KILL"],"ambient":["CAP_KILL"]}}}`), Config)
	if err != nil {
		t.Fatal(err)
	}
	_, out := doc.Reduce(capability.OCIDefault)
	got := doc.Dropped(out)
	if fmt.Sprint(got[Bounding]) != "[CAP_CHOWN kill]" || fmt.Sprint(got[Ambient]) != "[CAP_KILL]" || len(got[Effective]) != 0 {
		t.Fatalf("Dropped = %q", got)
	}
}

// TestReduceWithinProperties: with a ceiling per set, every invariant of
// Reduce still holds, and no set leaves its ceiling.
func TestReduceWithinProperties(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 1000; i++ {
		kind := Kind(r.Intn(2))
		data, _ := genDoc(r, kind, false)
		target := capability.Set(r.Uint64()) & capability.All
		var ceiling Sets
		for s := range ceiling {
			ceiling[s] = capability.Set(r.Uint64()) & capability.All
		}
		doc, err := Parse(data, kind)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		out, sets := doc.ReduceWithin(target, ceiling)
		after, err := runcSets(out, kind)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if after != sets {
			t.Fatalf("case %d: ReduceWithin reports %v, runc reads %v", i, sets, after)
		}
		crunAfter, err := checkCrun(doc, data, kind, target, out)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		for s := Bounding; s < NumSets; s++ {
			if extra := (after[s] | crunAfter[s]) &^ ceiling[s]; extra != 0 {
				t.Fatalf("case %d: %s keeps %s above the ceiling", i, s, extra)
			}
		}
		if want := Tidy(doc.Sets().Within(ceiling), target); sets != want {
			t.Fatalf("case %d: sets %v, want %v", i, sets, want)
		}
		doc2, err := Parse(out, kind)
		if err != nil {
			t.Fatalf("case %d: output does not parse: %v", i, err)
		}
		if out2, _ := doc2.ReduceWithin(target, ceiling); !bytes.Equal(out, out2) {
			t.Fatalf("case %d: not idempotent", i)
		}
	}
}

// TestMaskedPaths: MaskedPaths is true only for exactly spelled, single
// linux and maskedPaths keys with at least one path; the engines' specs
// have them but for a privileged container (and a CRI client other than
// kubelet may set none).
func TestMaskedPaths(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want bool
	}{
		{name: "masked", doc: `{"linux":{"maskedPaths":["/proc/kcore"]}}`, want: true},
		{name: "masked with white space", doc: `{"linux":{"maskedPaths":[ "/proc/kcore" ]}}`, want: true},
		{name: "no linux", doc: `{"process":{}}`},
		{name: "no maskedPaths", doc: `{"linux":{"readonlyPaths":["/proc/bus"]}}`},
		{name: "empty", doc: `{"linux":{"maskedPaths":[ ]}}`},
		{name: "null", doc: `{"linux":{"maskedPaths":null}}`},
		{name: "not an array", doc: `{"linux":{"maskedPaths":"/proc/kcore"}}`},
		{name: "linux null", doc: `{"linux":null}`},
		{name: "linux in another case", doc: `{"Linux":{"maskedPaths":["/proc/kcore"]}}`},
		{name: "maskedPaths in another case", doc: `{"linux":{"maskedpaths":["/proc/kcore"]}}`},
		{name: "linux twice", doc: `{"linux":{"maskedPaths":["/proc/kcore"]},"linux":{}}`},
		{name: "linux twice, masked last", doc: `{"linux":{},"linux":{"maskedPaths":["/proc/kcore"]}}`},
		{name: "maskedPaths twice", doc: `{"linux":{"maskedPaths":["/proc/kcore"],"maskedPaths":[]}}`},
		{name: "maskedPaths twice, both set", doc: `{"linux":{"maskedPaths":["/a"],"maskedPaths":["/b"]}}`},
		{name: "maskedPaths with a NUL", doc: `{"linux":{"maskedPaths\u0000":["/proc/kcore"]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.doc), Config)
			if err != nil {
				t.Fatal(err)
			}
			if d.MaskedPaths != tt.want {
				t.Fatalf("MaskedPaths = %v, want %v", d.MaskedPaths, tt.want)
			}
		})
	}
	for file, want := range map[string]bool{
		// The CRI container was created by a client that, unlike kubelet,
		// set no masked paths: containerd then writes none.
		"config.default.json": true, "config.privileged.json": false, "config.cri-container.json": false,
		"config.cri-sandbox.json": true, "config.ctr-run.json": true, "config.runc-spec.json": true,
	} {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		d, err := Parse(data, Config)
		if err != nil {
			t.Fatal(err)
		}
		if d.MaskedPaths != want {
			t.Errorf("%s: MaskedPaths = %v, want %v", file, d.MaskedPaths, want)
		}
	}
}
