package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/capshim/capshim"
)

// fastCases are policies the fast path must read exactly as the decoder
// does, or leave to it.
var fastCases = []string{
	string(capshim.DefaultPolicy),
	string(rulesPolicy),
	"",
	"mode = \"audit\"\ndefault = []\nnever = []\n",
	"runtime = \"/usr/bin/crun\"\nexplain = false\nstate_dir = \"/srv/c\"\n",
	"engine_requests = false\n",
	"engine_requests = true\nexplain = true\n",
	"engine_requests = \"no\"\n",
	"engine_requests = false\nengine_requests = true\n",
	"ENGINE_REQUESTS = false\n",
	"[[rule]]\nname = \"a\"\nkeep = []\ngrant = [\"CAP_CHOWN\"]\nmode = \"learn\"\nlearn = true\n[rule.match.annotations]\n\"k.x\" = \"v*\"\nk2 = 'lit'\n[[rule]]\nname = \"b\"\ncapabilities = [\"chown\"]\n",
	"mode = \"a\\tb\\u00e9\"\n",
	"MODE = \"audit\"\n",
	"mode = \"audit\"\nmode = \"enforce\"\n",
	"rule.name = \"x\"\n",
	"[rule]\nname = \"x\"\n",
	"[[rule]]\nname = \"x\"\nmatch = { annotations = { a = \"b\" } }\n",
	"[[rule]]\nname = \"x\"\n[rule.match.annotations]\na = \"b\"\n[rule.match.annotations]\nc = \"d\"\n",
	"[[rule]]\nname = \"x\"\n[rule.match.annotations]\na = \"b\"\na = \"c\"\n",
	"[[rule]]\nname = \"x\"\nname = \"y\"\n",
	"default = [\"CAP_KILL\", 5]\n",
	"explain = \"yes\"\n",
	"unknown = 1\n",
	"[x]\n",
	"mode = \n",
	"# only a comment\n\n",
	"[[rule]]\nname = \"x\"\ncapabilities = [\"CAP_CHOWN\"]\n[rule.match]\n",
}

// TestFastDecodeAgrees: wherever the fast path reads a policy, the decoder
// reads the same; where the decoder refuses one, so does the fast path.
func TestFastDecodeAgrees(t *testing.T) {
	inputs := append([]string(nil), fastCases...)
	for _, tc := range parseErrorTests {
		inputs = append(inputs, tc.toml)
	}
	matches, _ := filepath.Glob("../profiles/*.toml")
	for _, m := range matches {
		b, _ := os.ReadFile(m)
		inputs = append(inputs, string(b))
	}
	fast := 0
	for i, in := range inputs {
		checkFastAgrees(t, i, in)
		var f file
		if fastDecode([]byte(in), &f) {
			fast++
		}
	}
	if fast < 6 {
		t.Fatalf("the fast path read only %d of %d policies", fast, len(inputs))
	}
	// Another spelling of a key is the decoder's to read (it matches
	// keys case-insensitively).
	var f file
	if fastDecode([]byte("MODE = \"audit\"\n"), &f) {
		t.Fatal("the fast path took a key spelled in another case")
	}
}

func checkFastAgrees(t *testing.T, i int, in string) {
	t.Helper()
	var fast, slow file
	ok := fastDecode([]byte(in), &fast)
	err := decodeFile([]byte(in), &slow)
	if !ok {
		return
	}
	if err != nil {
		t.Fatalf("case %d: the fast path read a policy the decoder refuses (%v):\n%s", i, err, in)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("case %d: fast path %+v, decoder %+v:\n%s", i, fast, slow, in)
	}
}
