package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/capshim/capshim"
	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/internal/golden"
)

// mustCaps parses capability names for a test.
func mustCaps(t testing.TB, names ...string) capability.Set {
	t.Helper()
	set, unknown := capability.ParseList(names)
	if len(unknown) > 0 {
		t.Fatalf("bad capability names in the test: %v", unknown)
	}
	return set
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		name  string
		toml  string
		check func(t *testing.T, p *Policy)
	}{
		{
			name: "empty file is the defaults",
			toml: "",
			check: func(t *testing.T, p *Policy) {
				if p.Mode != Enforce || p.Runtime != "" || p.Log != DefaultLog || p.FailOnDenied || len(p.Rules) != 0 {
					t.Errorf("got %+v", p)
				}
				if p.Default != capability.OCIDefault {
					t.Errorf("Default = %s, want %s", p.Default, capability.OCIDefault)
				}
				if want := mustCaps(t, "SYS_ADMIN", "SYS_MODULE"); p.Never != want {
					t.Errorf("Never = %s, want %s", p.Never, want)
				}
			},
		},
		{
			name: "all top-level keys",
			toml: `runtime = "/usr/local/sbin/runc"
mode = "audit"
default = ["CAP_KILL"]
never = ["CAP_SYS_ADMIN", "CAP_BPF"]
on_denied_request = "fail"
log = "/var/log/capshim.jsonl"
`,
			check: func(t *testing.T, p *Policy) {
				if p.Runtime != "/usr/local/sbin/runc" || p.Mode != Audit || !p.FailOnDenied || p.Log != "/var/log/capshim.jsonl" {
					t.Errorf("got %+v", p)
				}
				if p.Default != mustCaps(t, "KILL") || p.Never != mustCaps(t, "SYS_ADMIN", "BPF") {
					t.Errorf("Default = %s, Never = %s", p.Default, p.Never)
				}
			},
		},
		{
			name: "state, explain and the rule keys of learning",
			toml: `state_dir = "/srv/capshim"
explain = false
[[rule]]
name = "nginx"
keep = ["CAP_CHOWN", "CAP_SETUID"]
grant = ["CAP_NET_RAW"]
[rule.match.annotations]
"io.kubernetes.cri.image-name" = "docker.io/library/nginx"
[[rule]]
name = "nothing"
keep = []
[[rule]]
name = "learn-ns"
mode = "learn"
[[rule]]
name = "may-learn"
learn = true
`,
			check: func(t *testing.T, p *Policy) {
				if p.States() != "/srv/capshim" || p.Explain {
					t.Errorf("StateDir %q, Explain %v", p.StateDir, p.Explain)
				}
				r := p.Rules
				if len(r) != 4 || !r[0].HasKeep || r[0].Keep != mustCaps(t, "CHOWN", "SETUID") || r[0].Grant != mustCaps(t, "NET_RAW") ||
					!r[1].HasKeep || r[1].Keep != 0 || !r[2].LearnMode || r[2].Learn || !r[3].Learn || r[3].LearnMode {
					t.Errorf("rules %+v", r)
				}
			},
		},
		{
			name: "explain is on by default",
			toml: "",
			check: func(t *testing.T, p *Policy) {
				if !p.Explain || p.States() != DefaultStateDir {
					t.Errorf("Explain %v, state dir %q", p.Explain, p.States())
				}
			},
		},
		{
			name: "engine requests are on by default",
			toml: "mode = \"enforce\"\n",
			check: func(t *testing.T, p *Policy) {
				if !p.EngineRequests {
					t.Errorf("EngineRequests %v", p.EngineRequests)
				}
			},
		},
		{
			name: "engine requests off",
			toml: "engine_requests = false\n",
			check: func(t *testing.T, p *Policy) {
				if p.EngineRequests {
					t.Errorf("EngineRequests %v", p.EngineRequests)
				}
			},
		},
		{
			name: "explicit enforce and drop",
			toml: "mode = \"enforce\"\non_denied_request = \"drop\"\n",
			check: func(t *testing.T, p *Policy) {
				if p.Mode != Enforce || p.FailOnDenied {
					t.Errorf("got %+v", p)
				}
			},
		},
		{
			// log = "" is no log at all, as it always was; leaving log out
			// is the default log.
			name: "empty strings mean the defaults, and no log",
			toml: "runtime = \"\"\nmode = \"\"\non_denied_request = \"\"\nlog = \"\"\n",
			check: func(t *testing.T, p *Policy) {
				if p.Mode != Enforce || p.FailOnDenied || p.Runtime != "" || p.Log != "" {
					t.Errorf("got %+v", p)
				}
			},
		},
		{
			name: "empty default and never",
			toml: "default = []\nnever = []\n",
			check: func(t *testing.T, p *Policy) {
				if p.Default != 0 || p.Never != 0 {
					t.Errorf("Default = %s, Never = %s", p.Default, p.Never)
				}
			},
		},
		{
			name: "capability names in any case, with or without CAP_",
			toml: "default = [\"chown\", \"cap_chown\", \"CAP_CHOWN\", \"Cap_SetUid\", \" kill \"]\n",
			check: func(t *testing.T, p *Policy) {
				if want := mustCaps(t, "CAP_CHOWN", "CAP_SETUID", "CAP_KILL"); p.Default != want {
					t.Errorf("Default = %s, want %s", p.Default, want)
				}
			},
		},
		{
			name: "rules with and without match tables",
			toml: `never = ["CAP_SYS_MODULE"]
[[rule]]
name = "everyone"
capabilities = ["chown"]

[[rule]]
name = "web"
capabilities = ["CAP_SETUID", "setgid"]
[rule.match.annotations]
"io.kubernetes.cri.sandbox-namespace" = "web-*"
"io.kubernetes.cri.container-type" = "container"
`,
			check: func(t *testing.T, p *Policy) {
				want := []Rule{
					{Name: "everyone", Capabilities: mustCaps(t, "CHOWN")},
					{Name: "web", Capabilities: mustCaps(t, "SETUID", "SETGID"), Annotations: []Match{
						{Key: "io.kubernetes.cri.container-type", Glob: "container"},
						{Key: "io.kubernetes.cri.sandbox-namespace", Glob: "web-*"},
					}},
				}
				if !reflect.DeepEqual(p.Rules, want) {
					t.Errorf("Rules = %+v\nwant %+v", p.Rules, want)
				}
			},
		},
		{
			name: "inline match table",
			toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"NET_RAW\"]\nmatch = { annotations = { \"x\" = \"y\" } }\n",
			check: func(t *testing.T, p *Policy) {
				if len(p.Rules) != 1 || !reflect.DeepEqual(p.Rules[0].Annotations, []Match{{Key: "x", Glob: "y"}}) {
					t.Errorf("Rules = %+v", p.Rules)
				}
			},
		},
		{
			name: "rules as an inline array",
			toml: "rule = [\n  { name = \"a\", capabilities = [\"chown\"] },\n  { name = \"b\", capabilities = [\"kill\"], match = { annotations = { x = \"y\" } } },\n]\n",
			check: func(t *testing.T, p *Policy) {
				want := []Rule{
					{Name: "a", Capabilities: mustCaps(t, "CHOWN")},
					{Name: "b", Capabilities: mustCaps(t, "KILL"), Annotations: []Match{{Key: "x", Glob: "y"}}},
				}
				if !reflect.DeepEqual(p.Rules, want) {
					t.Errorf("Rules = %+v\nwant %+v", p.Rules, want)
				}
			},
		},
		{
			name: "dotted keys in a rule",
			toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"chown\"]\nmatch.annotations.\"io.kubernetes.pod.namespace\" = \"web\"\n",
			check: func(t *testing.T, p *Policy) {
				if len(p.Rules) != 1 || !reflect.DeepEqual(p.Rules[0].Annotations, []Match{{Key: "io.kubernetes.pod.namespace", Glob: "web"}}) {
					t.Errorf("Rules = %+v", p.Rules)
				}
			},
		},
		{
			name: "CRLF line ends",
			toml: "mode = \"audit\"\r\n[[rule]]\r\nname = \"a\"\r\ncapabilities = [\"chown\"]\r\n",
			check: func(t *testing.T, p *Policy) {
				if p.Mode != Audit || len(p.Rules) != 1 {
					t.Errorf("got %+v", p)
				}
			},
		},
		{
			name: "comments and blank lines",
			toml: "# a comment\n\nmode = \"audit\" # trailing\n",
			check: func(t *testing.T, p *Policy) {
				if p.Mode != Audit {
					t.Errorf("Mode = %q", p.Mode)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.toml), "good.toml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p.Source != "good.toml" {
				t.Errorf("Source = %q", p.Source)
			}
			tt.check(t, p)
		})
	}
}

// parseErrorTests are the policies Parse refuses. Their messages are in
// testdata/errors.golden.
var parseErrorTests = []struct {
	name string
	toml string
	line int    // 0: the message has no line
	key  string // LoadError.Key
	hint string // part of the message that says what to do
}{
	{
		name: "syntax error unterminated array",
		toml: "mode = \"enforce\"\ndefault = [\"CAP_KILL\"\nlog = \"\"\n",
		line: 3, key: "default", hint: "fix the TOML syntax",
	},
	{
		name: "syntax error unterminated string",
		toml: "# policy\n\nmode = \"enforce\n",
		line: 3, key: "mode", hint: "fix the TOML syntax",
	},
	{
		name: "syntax error duplicate key",
		toml: "mode = \"enforce\"\nmode = \"audit\"\n",
		line: 2, key: "mode", hint: "fix the TOML syntax",
	},
	{
		name: "syntax error missing value",
		toml: "log =\n",
		line: 1, key: "log", hint: "fix the TOML syntax",
	},
	{
		name: "syntax error duplicate key in a rule",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"chown\"]\n[[rule]]\nname = \"b\"\nname = \"c\"\n",
		line: 6, key: "rule.name", hint: "fix the TOML syntax",
	},
	{
		name: "unknown top-level key",
		toml: "mode = \"enforce\"\ndefaults = [\"CAP_KILL\"]\n",
		line: 2, key: "defaults", hint: "the keys are runtime, mode, default",
	},
	{
		name: "unknown top-level table",
		toml: "mode = \"enforce\"\n\n[policy]\nmode = \"audit\"\n",
		line: 3, key: "policy", hint: "the keys are",
	},
	{
		name: "unknown key in rule",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"CHOWN\"]\n\n[[rule]]\nname = \"b\"\ncapabilities = [\"CHOWN\"]\ncapabilties = [\"SETUID\"]\n",
		line: 8, key: "rule.capabilties", hint: "[[rule]] with name, capabilities, grant, keep, mode, learn and [rule.match.annotations]",
	},
	{
		name: "unknown key in rule.match",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"CHOWN\"]\n[rule.match]\nnamespace = \"web\"\n",
		line: 5, key: "rule.match.namespace", hint: "[rule.match.annotations]",
	},
	{
		name: "unknown capability in default",
		toml: "mode = \"enforce\"\ndefault = [\"CAP_KILL\", \"CAP_NET_BIND\"]\n",
		line: 2, key: "default", hint: "`capshim caps` lists them",
	},
	{
		name: "unknown capability in a multi-line default",
		toml: "mode = \"enforce\"\ndefault = [\n  \"CAP_KILL\",\n  \"CAP_KIL\",\n]\n",
		line: 4, key: "default", hint: "`capshim caps` lists them",
	},
	{
		name: "unknown capability in never",
		toml: "never = [\"CAP_SYS_ADMIN\", \"CAP_ROOT\"]\n",
		line: 1, key: "never", hint: "`capshim caps` lists them",
	},
	{
		name: "unknown capability in rule",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"CHOWN\"]\n\n[[rule]]\nname = \"b\"\ncapabilities = [\"CAP_CHOWN\", \"CAP_EVERYTHING\"]\n",
		line: 7, key: "rule.capabilities", hint: "`capshim caps` lists them",
	},
	{
		name: "never capability in rule",
		toml: "[[rule]]\nname = \"admin\"\ncapabilities = [\"sys_admin\", \"chown\"]\n",
		line: 3, key: "rule.capabilities", hint: "no rule may grant it",
	},
	{
		name: "never capability in default",
		toml: "default = [\"CAP_KILL\", \"CAP_SYS_MODULE\"]\n",
		line: 1, key: "default", hint: "remove it from one of the two",
	},
	{
		name: "never capability in explicit never and default",
		toml: "never = [\"KILL\"]\ndefault = [\"KILL\", \"CHOWN\"]\n",
		line: 2, key: "default", hint: "remove it from one of the two",
	},
	{
		name: "never forbids the implicit default",
		toml: "never = [\"CAP_SYS_ADMIN\", \"CAP_NET_BIND_SERVICE\"]\n",
		line: 1, key: "never", hint: "remove it from never or set default",
	},
	{
		name: "bad glob unclosed class",
		toml: "[[rule]]\nname = \"web\"\ncapabilities = [\"SETUID\"]\n[rule.match.annotations]\n\"io.kubernetes.cri.container-type\" = \"container\"\n\"io.kubernetes.cri.sandbox-namespace\" = \"web-[0-9\"\n",
		line: 6, key: `rule.match.annotations."io.kubernetes.cri.sandbox-namespace"`, hint: `write '\[' for a literal bracket`,
	},
	{
		name: "bad glob lone backslash",
		toml: "[[rule]]\nname = \"web\"\ncapabilities = [\"SETUID\"]\n[rule.match.annotations]\nteam = 'web\\'\n",
		line: 5, key: "rule.match.annotations.team", hint: `write '\\' for a backslash`,
	},
	{
		name: "relative runtime path",
		toml: "# the runtime\nruntime = \"runc\"\n",
		line: 2, key: "runtime", hint: "write the full path of the real runtime",
	},
	{
		name: "relative log path",
		toml: "mode = \"audit\"\nlog = \"capshim.log\"\n",
		line: 2, key: "log", hint: "give the full path of the decision log",
	}, {
		name: "log names a directory",
		toml: "mode = \"audit\"\nlog = \"/var/log/capshim/\"\n",
		line: 2, key: "log", hint: "names a directory; give the path of the log file in it",
	}, {
		name: "log ends in a dot-dot",
		toml: "log = \"/var/log/capshim/..\"\n",
		line: 1, key: "log", hint: "names a directory",
	},
	{
		name: "bad mode",
		toml: "mode = \"Enforce\"\n",
		line: 1, key: "mode", hint: `use "enforce" or "audit"`,
	},
	{
		name: "bad on_denied_request",
		toml: "mode = \"enforce\"\non_denied_request = \"deny\"\n",
		line: 2, key: "on_denied_request", hint: `use "drop" or "fail"`,
	},
	{
		name: "rule without name",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"CHOWN\"]\n\n[[rule]]\ncapabilities = [\"SETUID\"]\n",
		line: 5, key: "rule.name", hint: `give every rule a name = "..."`,
	},
	{
		name: "rule without name, header with blanks and a comment",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"CHOWN\"]\n[rule.match.annotations]\nx = \"y\"\n\n  [[ rule ]]  # second\ncapabilities = [\"SETUID\"]\n",
		line: 7, key: "rule.name", hint: `give every rule a name = "..."`,
	},
	{
		name: "rule with empty name",
		toml: "[[rule]]\nname = \"\"\ncapabilities = [\"SETUID\"]\n",
		line: 2, key: "rule.name", hint: `give every rule a name = "..."`,
	},
	{
		name: "duplicate rule names",
		toml: "[[rule]]\nname = \"web\"\ncapabilities = [\"CHOWN\"]\n\n[[rule]]\nname = \"web\"\ncapabilities = [\"SETUID\"]\n",
		line: 6, key: "rule.name", hint: "rule names must be unique",
	},
	{
		name: "empty capabilities",
		toml: "[[rule]]\nname = \"nothing\"\ncapabilities = []\n",
		line: 3, key: "rule.capabilities", hint: "list the capabilities it lets containers ask for",
	},
	{
		name: "missing capabilities",
		toml: "[[rule]]\nname = \"nothing\"\n[rule.match.annotations]\nx = \"y\"\n",
		line: 1, key: "rule.capabilities", hint: "list the capabilities it lets containers ask for",
	},
	{
		name: "relative state_dir",
		toml: "state_dir = \"var/lib/capshim\"\n",
		line: 1, key: "state_dir", hint: "give the full path of capshim's state directory",
	},
	{
		name: "wrong type explain",
		toml: "\nexplain = \"yes\"\n",
		line: 2, key: "explain", hint: "it must be true or false",
	},
	{
		name: "wrong type engine_requests",
		toml: "mode = \"enforce\"\nengine_requests = \"off\"\n",
		line: 2, key: "engine_requests", hint: "it must be true or false",
	},
	{
		name: "wrong type engine_requests integer",
		toml: "engine_requests = 0\n",
		line: 1, key: "engine_requests", hint: "it must be true or false",
	},
	{
		name: "engine_requests misspelled",
		toml: "engine_request = false\n",
		line: 1, key: "engine_request", hint: "engine_requests",
	},
	{
		name: "bad rule mode",
		toml: "[[rule]]\nname = \"r\"\nmode = \"audit\"\n",
		line: 3, key: "rule.mode", hint: `use "learn"`,
	},
	{
		name: "wrong type learn",
		toml: "[[rule]]\nname = \"r\"\nlearn = 1\n",
		line: 3, key: "rule.learn", hint: "it must be true or false",
	},
	{
		name: "keep lists a never capability",
		toml: "[[rule]]\nname = \"r\"\nkeep = [\"CAP_KILL\", \"CAP_SYS_ADMIN\"]\n",
		line: 3, key: "rule.keep", hint: "which never forbids",
	},
	{
		name: "grant names no capability",
		toml: "[[rule]]\nname = \"r\"\ngrant = [\n  \"CAP_KIL\",\n]\n",
		line: 4, key: "rule.grant", hint: "is not a Linux capability",
	},
	{
		name: "wrong type mode",
		toml: "\nmode = 1\n",
		line: 2, key: "mode", hint: "it must be a string in quotes",
	},
	{
		name: "wrong type default",
		toml: "default = \"CAP_KILL\"\n",
		line: 1, key: "default", hint: `it must be a list of capability names, e.g. ["CAP_CHOWN", "CAP_SETUID"]`,
	},
	{
		name: "wrong type never element",
		toml: "never = [\"CAP_SYS_ADMIN\", 21]\n",
		line: 1, key: "never", hint: "it must be a list of capability names",
	},
	{
		name: "wrong type rule",
		toml: "rule = \"web\"\n",
		line: 1, key: "rule", hint: "it must be [[rule]] tables",
	},
	{
		name: "wrong type element of an inline rule array",
		toml: "rule = [{ name = \"a\", capabilities = [\"chown\"] }, \"b\"]\n",
		line: 1, key: "rule", hint: "it must be [[rule]] tables",
	},
	{
		name: "wrong type rule name",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"CHOWN\"]\n[[rule]]\nname = 2\ncapabilities = [\"CHOWN\"]\n",
		line: 5, key: "rule.name", hint: "it must be a string in quotes",
	},
	{
		name: "wrong type rule capabilities",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = \"CHOWN\"\n",
		line: 3, key: "rule.capabilities", hint: "it must be a list of capability names",
	},
	{
		name: "wrong type match",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"CHOWN\"]\nmatch = \"web-*\"\n",
		line: 4, key: "rule.match", hint: "it must be a table",
	},
	{
		name: "wrong type annotation glob",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"CHOWN\"]\n[rule.match.annotations]\nreplicas = 3\n",
		line: 5, key: "rule.match.annotations.replicas", hint: "it must be a glob in quotes",
	},
	{
		name: "syntax error unclosed table header",
		toml: "mode = \"audit\"\n[policy\nmode = \"audit\"\n",
		line: 2, key: "policy", hint: "fix the TOML syntax",
	},
	{
		name: "syntax error bad character at the start of a key",
		toml: "mode = \"audit\"\n!x = 1\n",
		line: 2, key: "", hint: "fix the TOML syntax",
	},
	{
		name: "syntax error unterminated inline table in a rule",
		toml: "[[rule]]\nname = \"a\"\nmatch = { annotations = { x = \"y\" }\ncapabilities = [\"chown\"]\n",
		line: 4, key: "rule.match", hint: "fix the TOML syntax",
	},
	{
		name: "syntax error after a commented header",
		toml: "[[rule]] # web\nname = \"a\"\n\n# the capabilities\ncapabilities = [\"chown\",\n",
		line: 5, key: "rule.capabilities", hint: "fix the TOML syntax",
	},
	{
		name: "unknown key in an inline match table",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"NET_RAW\"]\nmatch = { annotations = { \"x\" = \"y\" }, foo = 1 }\n",
		line: 4, key: "rule.match.foo", hint: "the keys are",
	},
	{
		name: "never capability on its own line in a rule",
		toml: "[[rule]]\nname = \"admin\"\ncapabilities = [\n  \"chown\",\n  \"sys_admin\",\n]\n",
		line: 5, key: "rule.capabilities", hint: "no rule may grant it",
	},
	{
		name: "unknown capability in an inline rule",
		toml: "rule = [\n  { name = \"a\", capabilities = [\"chown\"] },\n  { name = \"b\", capabilities = [\"kil\"] },\n]\n",
		line: 3, key: "rule.capabilities", hint: "`capshim caps` lists them",
	},
	{
		name: "inline rule without name",
		toml: "rule = [\n  { name = \"a\", capabilities = [\"chown\"] },\n  { capabilities = [\"kill\"] },\n]\n",
		line: 3, key: "rule.name", hint: `give every rule a name = "..."`,
	},
	{
		name: "bad glob under a dotted key",
		toml: "[[rule]]\nname = \"a\"\nmatch.annotations.x = \"[\"\ncapabilities = [\"NET_RAW\"]\n",
		line: 3, key: "rule.match.annotations.x", hint: `write '\[' for a literal bracket`,
	},
	{
		name: "relative runtime path with CRLF line ends",
		toml: "mode = \"audit\"\r\nruntime = \"runc\"\r\n",
		line: 2, key: "runtime", hint: "write the full path of the real runtime",
	},
	{
		name: "rule as a table",
		toml: "[rule]\nname = \"a\"\ncapabilities = [\"chown\"]\n",
		line: 1, key: "rule", hint: "it must be [[rule]] tables",
	},
	{
		name: "rule keys at the top level",
		toml: "rule.name = \"a\"\nrule.capabilities = [\"chown\"]\n",
		line: 1, key: "rule", hint: "it must be [[rule]] tables",
	},
	{
		name: "match table before any rule",
		toml: "mode = \"audit\"\n[rule.match.annotations]\nx = \"y\"\n",
		line: 2, key: "rule", hint: "it must be [[rule]] tables",
	},
	{
		name: "rule table and a rule array",
		toml: "[rule]\nname = \"a\"\n[[rule]]\nname = \"b\"\n",
		line: 1, key: "rule", hint: "it must be [[rule]] tables",
	},
	{
		name: "wrong type log table",
		toml: "mode = \"audit\"\n[log]\npath = \"/var/log/capshim.jsonl\"\n",
		line: 2, key: "log", hint: "it must be a string in quotes",
	},
	{
		name: "wrong type match array of tables",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"chown\"]\n[[rule.match.annotations]]\nx = \"y\"\n",
		line: 4, key: "rule.match.annotations", hint: "it must be a table",
	},
	{
		name: "wrong type element on its own line",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"chown\"]\n[[rule]]\nname = \"b\"\ncapabilities = [\n  \"chown\",\n  7,\n]\n",
		line: 8, key: "rule.capabilities", hint: "it must be a list of capability names",
	},
	{
		name: "wrong type integer too large",
		toml: "mode = 99999999999999999999\n",
		line: 1, key: "mode", hint: "it must be a string in quotes",
	},
	{
		name: "dotted annotation key without quotes",
		toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"CHOWN\"]\n[rule.match.annotations]\nio.kubernetes.cri.sandbox-namespace = \"web\"\n",
		line: 5, key: "rule.match.annotations.io", hint: "write a dotted annotation name in quotes",
	},
}

func TestParseErrors(t *testing.T) {
	const source = "/etc/capshim/test.toml"
	var all bytes.Buffer
	for _, tt := range parseErrorTests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.toml), source)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", p)
			}
			fmt := err.Error()
			all.WriteString(tt.name + ":\n\t" + fmt + "\n")
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T is not a *LoadError: %v", err, err)
			}
			if le.Path != source {
				t.Errorf("Path = %q, want %q", le.Path, source)
			}
			if le.Line != tt.line {
				t.Errorf("Line = %d, want %d (%v)", le.Line, tt.line, err)
			}
			if le.Key != tt.key {
				t.Errorf("Key = %q, want %q (%v)", le.Key, tt.key, err)
			}
			prefix := source + ": "
			if tt.line > 0 {
				prefix = source + ":" + itoa(tt.line) + ": "
			}
			if tt.key != "" {
				prefix += tt.key + ": "
			}
			if !strings.HasPrefix(fmt, prefix) {
				t.Errorf("message %q does not start with %q", fmt, prefix)
			}
			if !strings.Contains(fmt, tt.hint) {
				t.Errorf("message %q does not say what to do (%q)", fmt, tt.hint)
			}
			if strings.Contains(fmt, "\n") {
				t.Errorf("message %q has a newline; it must fit one log line", fmt)
			}
		})
	}
	golden.Check(t, "errors.golden", all.Bytes())
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestBuiltin(t *testing.T) {
	b := Builtin()
	data, err := os.ReadFile("../shim.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, capshim.DefaultPolicy) {
		t.Errorf("the embedded default differs from shim.toml.example")
	}
	p, err := Parse(data, BuiltinSource)
	if err != nil {
		t.Fatalf("shim.toml.example does not load: %v", err)
	}
	if !reflect.DeepEqual(b, p) {
		t.Errorf("Builtin() = %+v\nParse(shim.toml.example) = %+v", b, p)
	}
	if b.Source != BuiltinSource {
		t.Errorf("Source = %q, want %q", b.Source, BuiltinSource)
	}
	if b.Runtime != "" {
		t.Errorf("Runtime = %q, want \"\" (runc on PATH)", b.Runtime)
	}
	if b.Mode != Enforce {
		t.Errorf("Mode = %q, want enforce", b.Mode)
	}
	if want := mustCaps(t, "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"); b.Default != want || b.Default != capability.OCIDefault {
		t.Errorf("Default = %s, want %s", b.Default, want)
	}
	if want := mustCaps(t, "CAP_SYS_ADMIN", "CAP_SYS_MODULE"); b.Never != want {
		t.Errorf("Never = %s, want %s", b.Never, want)
	}
	if b.FailOnDenied || b.Log != DefaultLog || len(b.Rules) != 0 {
		t.Errorf("FailOnDenied = %v, Log = %q, Rules = %v; want false, %q, none", b.FailOnDenied, b.Log, b.Rules, DefaultLog)
	}
}

func TestLoadTrustedErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "shim.toml")
	if err := os.WriteFile(good, []byte("mode = \"audit\"\ndefault = [\"chown\", \"cap_chown\", \"CAP_CHOWN\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("mode = \"audit\"\nmode = \"enforce\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		path     string
		wantErr  string // "" for success
		wantLine int    // for a *LoadError
	}{
		{name: "good file", path: good},
		{name: "missing file", path: filepath.Join(dir, "missing.toml"), wantErr: "no such file or directory"},
		{name: "directory", path: dir, wantErr: "not a regular file"},
		{name: "syntax error names the file and line", path: bad, wantErr: "key mode is already defined", wantLine: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := LoadTrusted(tt.path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadTrusted: %v", err)
				}
				if p.Source != tt.path || p.Mode != Audit || p.Default != mustCaps(t, "CHOWN") {
					t.Errorf("got Source %q, Mode %q, Default %s", p.Source, p.Mode, p.Default)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			var le *LoadError
			if tt.wantLine > 0 && (!errors.As(err, &le) || le.Path != tt.path || le.Line != tt.wantLine) {
				t.Errorf("err = %#v; want a *LoadError for %s line %d", err, tt.path, tt.wantLine)
			}
		})
	}
}

func TestSyntaxKey(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want string // formatKey of the key, "" for none
	}{
		{name: "first expression", toml: "mode = \"audit\n", want: "mode"},
		{name: "array left open across lines", toml: "mode = \"audit\"\ndefault = [\"kill\",\n\"chown\"\nlog = \"\"\n", want: "default"},
		{name: "after comments and blank lines", toml: "mode = \"audit\" # m\n\n# c\n  log =\n", want: "log"},
		{name: "in a rule table", toml: "[[rule]]\nname = \"a\"\ncapabilities = [\"chown\"\n", want: "rule.capabilities"},
		{name: "in a commented rule table", toml: "[[ rule ]] # r\nname =\n", want: "rule.name"},
		{name: "dotted and quoted key", toml: "[[rule]]\nmatch.annotations.\"a.b\" = \"x\n", want: `rule.match.annotations."a.b"`},
		{name: "key without =", toml: "mode \"audit\"\n", want: "mode"},
		{name: "unclosed header", toml: "mode = \"audit\"\n[rule.match\n", want: "rule.match"},
		{name: "text after a header", toml: "[[rule]] x\n", want: "rule"},
		{name: "no key", toml: "mode = \"audit\"\n= 1\n", want: ""},
		{name: "bad key character", toml: "!mode = 1\n", want: ""},
		{name: "unterminated quoted key", toml: "\"mode = 1\n", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatKey(syntaxKey([]byte(tt.toml))); got != tt.want {
				t.Errorf("syntaxKey = %q, want %q", got, tt.want)
			}
		})
	}
}
