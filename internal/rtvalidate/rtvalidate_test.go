package rtvalidate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSpec(t *testing.T) {
	data, err := os.ReadFile("../../spec/testdata/config.runc-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	out := Spec(data, t.TempDir())
	var msgs []string
	for _, f := range out {
		msgs = append(msgs, f.Msg)
	}
	joined := strings.Join(msgs, "\n")
	// runc spec's ambient set lacks inheritable, and the bundle has no rootfs.
	for _, want := range []string{"ambient capability", "root path"} {
		if !strings.Contains(joined, want) {
			t.Errorf("findings lack %q:\n%s", want, joined)
		}
	}
	if got := Spec([]byte(`{"process":`), "."); len(got) != 1 || !strings.Contains(got[0].Msg, "does not decode") || got[0].Common != "" {
		t.Errorf("truncated spec: %q", got)
	}
}

// TestRealSpecsCommon: every finding runtime-tools has for the specs real
// engines wrote (Docker's default and --privileged, containerd's CRI
// sandbox and container and ctr run, runc spec and runc spec --rootless)
// is one that such specs have as a matter of course.
func TestRealSpecsCommon(t *testing.T) {
	files, err := filepath.Glob("../../spec/testdata/config.*.json")
	if err != nil || len(files) < 7 {
		t.Fatalf("fixtures: %v, %v", files, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			out := Spec(data, filepath.Dir(file))
			if len(out) == 0 {
				t.Fatal("no findings at all: the test no longer shows anything")
			}
			for _, f := range out {
				if f.Common == "" {
					t.Errorf("a real engine's spec has the finding %q", f.Msg)
				}
			}
		})
	}
}

// TestSpecFindings: broken specs keep their findings; what real specs
// have is marked, with a reason.
func TestSpecFindings(t *testing.T) {
	const base = `"ociVersion":"1.0.2","root":{"path":"rootfs"}`
	tests := []struct {
		name   string
		spec   string
		msg    string // a finding's message
		common bool   // whether it is marked common
	}{
		{name: "relative cwd", spec: `{` + base + `,"process":{"cwd":"relative","args":["sh"]}}`,
			msg: `cwd "relative" is not an absolute path`},
		{name: "no args", spec: `{` + base + `,"process":{"cwd":"/","args":[]}}`, msg: "args must not be empty"},
		{name: "no root", spec: `{"ociVersion":"1.0.2","process":{"cwd":"/","args":["sh"]}}`, msg: "on all other platforms, Root is REQUIRED"},
		{name: "bad version", spec: `{"ociVersion":"one","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"]}}`, msg: `"one" is not valid SemVer`},
		{name: "relative mount", spec: `{` + base + `,"process":{"cwd":"/","args":["sh"]},"mounts":[{"destination":"rel","type":"bind","source":"/x"}]}`,
			msg: `mounts[0].destination "rel" is not absolute`},
		{name: "reserved annotation", spec: `{` + base + `,"process":{"cwd":"/","args":["sh"]},"annotations":{"org.opencontainers.x":"1"}}`,
			msg: `key "org.opencontainers.x" is reserved`},
		{name: "device major 0", spec: `{` + base + `,"process":{"cwd":"/","args":["sh"]},"linux":{"devices":[{"path":"/dev/null","type":"c","major":0,"minor":3}]}}`,
			msg: "device /dev/null (c 0:3) is invalid"},
		{name: "device minor 0", spec: `{` + base + `,"process":{"cwd":"/","args":["sh"]},"linux":{"devices":[{"path":"/dev/tty","type":"c","major":5,"minor":0}]}}`,
			msg: "device /dev/tty (c 5:0) is invalid", common: true},
		{name: "device of a type that is none", spec: `{` + base + `,"process":{"cwd":"/","args":["sh"]},"linux":{"devices":[{"path":"/dev/x","type":"z","major":5,"minor":0}]}}`,
			msg: "device /dev/x (z 5:0) is invalid"},
		{name: "prefix/name annotation", spec: `{` + base + `,"process":{"cwd":"/","args":["sh"]},"annotations":{"capshim.io/capabilities":"CAP_CHOWN"}}`,
			msg: `key "capshim.io/capabilities" SHOULD be named using a reverse domain notation`, common: true},
		{name: "spec version", spec: `{"ociVersion":"1.0.2-dev","root":{"path":"rootfs"},"process":{"cwd":"/","args":["sh"]}}`,
			msg: "validate currently only handles version", common: true},
		{name: "missing root file system", spec: `{` + base + `,"process":{"cwd":"/","args":["sh"]}}`,
			msg: `cannot find the root path`, common: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var found bool
			var all []string
			for _, f := range Spec([]byte(tt.spec), t.TempDir()) {
				all = append(all, f.Msg)
				if strings.HasPrefix(f.Msg, tt.msg) {
					found = true
					if (f.Common != "") != tt.common {
						t.Errorf("%q marked common %q, want %v", f.Msg, f.Common, tt.common)
					}
				}
			}
			if !found {
				t.Errorf("no finding %q in %q", tt.msg, all)
			}
		})
	}
}
