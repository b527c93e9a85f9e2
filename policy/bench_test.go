package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/capshim/capshim"
)

// BenchmarkParseExample measures Parse of the embedded example policy, the
// work a container start does when it loads a policy file without a cache.
func BenchmarkParseExample(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(capshim.DefaultPolicy, "shim.toml"); err != nil {
			b.Fatal(err)
		}
	}
}

// rulesPolicy is a policy with rules and match tables, which the example
// leaves commented out.
var rulesPolicy = []byte(`mode = "enforce"
default = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
never = ["CAP_SYS_ADMIN", "CAP_SYS_MODULE"]
on_denied_request = "fail"
log = "/var/log/capshim.jsonl"

[[rule]]
name = "web"
capabilities = ["CAP_SETUID", "CAP_SETGID"]
[rule.match.annotations]
"io.kubernetes.cri.sandbox-namespace" = "web-*"
"io.kubernetes.cri.container-type" = "container"

[[rule]]
name = "net"
capabilities = ["CAP_NET_RAW", "CAP_NET_ADMIN"]
[rule.match.annotations]
"io.kubernetes.cri.sandbox-namespace" = "net-[a-z]*"

[[rule]]
name = "everyone"
capabilities = ["CAP_CHOWN"]
`)

// BenchmarkParseRules measures Parse of a policy with rules.
func BenchmarkParseRules(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(rulesPolicy, "shim.toml"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadTrusted is a runtime call's whole policy load: the checked
// open of the file, the read and the parse.
func BenchmarkLoadTrusted(b *testing.B) {
	path := filepath.Join(b.TempDir(), "shim.toml")
	if err := os.WriteFile(path, rulesPolicy, 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadTrusted(path); err != nil {
			b.Fatal(err)
		}
	}
}
