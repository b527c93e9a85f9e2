package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capshim/capshim/capability"
)

// TestHostileWrongTypes puts a value of every wrong JSON type at every
// level on the path to the capability sets: each must be refused with an
// error (runc could not decode it either), never a panic.
func TestHostileWrongTypes(t *testing.T) {
	values := []string{`1`, `-0.5e3`, `"s"`, `true`, `false`, `[]`, `[1]`, `{}`, `null`}
	paths := []struct {
		name string
		kind Kind
		doc  string // %s is replaced by the value
		ok   map[string]bool
	}{
		{"process", Config, `{"process":%s}`, map[string]bool{`{}`: true, `null`: true}},
		{"capabilities", Config, `{"process":{"capabilities":%s}}`, map[string]bool{`{}`: true, `null`: true}},
		{"bounding", Config, `{"process":{"capabilities":{"bounding":%s}}}`, map[string]bool{`[]`: true, `null`: true}},
		{"bounding element", Config, `{"process":{"capabilities":{"bounding":[%s]}}}`, map[string]bool{`"s"`: true, `null`: true}},
		{"ambient of process.json", Process, `{"capabilities":{"ambient":%s}}`, map[string]bool{`[]`: true, `null`: true}},
		{"env", Config, `{"process":{"env":%s}}`, map[string]bool{`[]`: true, `null`: true}},
		{"annotations", Config, `{"annotations":%s}`, map[string]bool{`{}`: true, `null`: true}},
		{"annotation value", Config, `{"annotations":{"k":%s}}`, map[string]bool{`"s"`: true, `null`: true}},
		{"top level", Config, `%s`, map[string]bool{`{}`: true}},
	}
	for _, p := range paths {
		for _, v := range values {
			doc := strings.Replace(p.doc, "%s", v, 1)
			t.Run(p.name+"="+v, func(t *testing.T) {
				d, err := Parse([]byte(doc), p.kind)
				if p.ok[v] {
					if err != nil {
						t.Fatalf("refused %s: %v", doc, err)
					}
					out, sets := d.Reduce(capability.OCIDefault)
					if err := checkReduce([]byte(doc), p.kind, capability.OCIDefault, out, sets); err != nil {
						t.Fatal(err)
					}
					return
				}
				if err == nil {
					t.Fatalf("accepted %s", doc)
				}
				if _, rerr := runcSets([]byte(doc), p.kind); rerr == nil && p.name != "top level" {
					t.Fatalf("capshim refuses %s but runc decodes it", doc)
				}
			})
		}
	}
}

// TestHostileLarge reduces a 30 MB spec: a correct result, in one pass.
func TestHostileLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("30 MB spec")
	}
	base, err := os.ReadFile(filepath.Join("testdata", "config.default.json"))
	if err != nil {
		t.Fatal(err)
	}
	pad := bytes.Repeat([]byte(`"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\u00e9",`), 30<<20/70)
	big := bytes.Replace(base, []byte(`"env":[`), append([]byte(`"env":[`), pad...), 1)
	if len(big) < 30<<20 {
		t.Fatalf("built only %d bytes", len(big))
	}
	doc, err := Parse(big, Config)
	if err != nil {
		t.Fatal(err)
	}
	out, sets := doc.Reduce(capability.OCIDefault)
	if sets[Bounding] != capability.OCIDefault || len(out) != len(big)-(len(base)-8591) {
		t.Fatalf("sets %v, %d bytes out of %d", sets, len(out), len(big))
	}
}

// TestHostileInputs covers the remaining hostile shapes: each is either
// refused with a clear error or reduced correctly.
func TestHostileInputs(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		refuse string // "" = must be accepted and reduce correctly
	}{
		{"NUL escapes in names", `{"process":{"capabilities":{"bounding":["CAP_KILL\u0000","CAP_\u0000KILL","CAP_KILL"]}}}`, ""},
		{"raw NUL byte in a string", "{\"a\":\"\x00\"}", "control character"},
		{"NUL byte outside strings", "{\x00}", "expected a string"},
		{"invalid UTF-8 in a name", "{\"process\":{\"capabilities\":{\"bounding\":[\"CAP_KILL\xff\",\"CAP_KILL\"]}}}", ""},
		{"invalid UTF-8 in a key", "{\"process\xff\":{\"capabilities\":{\"bounding\":[\"CAP_SYS_ADMIN\"]}}}", ""},
		{"lone surrogate escape", `{"process":{"capabilities":{"bounding":["CAP_KILL\ud800"]}}}`, ""},
		{"UTF-16 BOM", "\xfe\xff{}", "unexpected character"},
		{"UTF-8 BOM", "\xef\xbb\xbf{}", "unexpected character"},
		{"trailing NUL", "{}\x00", "data after the end"},
		{"second document", `{"process":{"capabilities":{"bounding":[]}}}{"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}`, "data after the end"},
		{"duplicate process, second wins in runc", `{"process":{"capabilities":{"bounding":[]}},"process":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}`, "appears twice"},
		{"process via escapes", `{"\u0050rocess":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}`, "only in case"},
		{"capabilities via kelvin sign is not a field", `{"process":{"capabilities":{"bounding":["CAP_KILL"],"\u212aill":1}}}`, ""},
		{"long s folds to s", `{"process":{"capabilitieſ":{"bounding":["CAP_SYS_ADMIN"]}}}`, "only in case"},
		{"huge number", `{"x":1e999999999,"process":{}}`, ""},
		{"minus zero and exponents", `{"x":[-0,0.0e+0,1E-7],"process":{}}`, ""},
		{"deep but legal nesting elsewhere", `{"x":` + strings.Repeat(`{"a":`, 500) + `1` + strings.Repeat(`}`, 500) + `}`, ""},
		{"unterminated string", `{"process":"`, "unexpected end"},
		{"only whitespace", " \t\r\n", "empty document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.doc), Config)
			if tt.refuse != "" {
				if err == nil || !strings.Contains(err.Error(), tt.refuse) {
					t.Fatalf("err = %v, want %q", err, tt.refuse)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			out, sets := d.Reduce(capability.OCIDefault)
			if err := checkReduce([]byte(tt.doc), Config, capability.OCIDefault, out, sets); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestReadFileLimits: ReadFile refuses links, non-regular files and files
// over MaxSize before reading them into memory.
func TestReadFileLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.json")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := ReadFile(big); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("oversized file: err = %v", err)
	}
	link := filepath.Join(dir, "link.json")
	os.Symlink(big, link)
	if _, err := ReadFile(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlink: err = %v", err)
	}
	if _, err := ReadFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: err = %v", err)
	}
}
