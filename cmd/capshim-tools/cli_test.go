package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capshim/capshim/internal/golden"
)

// runCmd runs capshim in process and returns its exit code and output.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"capshim"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// fixture copies a spec fixture of package spec into a temp dir.
func fixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "spec", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, data, 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const chownPolicy = `default = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
[[rule]]
name = "chown"
capabilities = ["CAP_CHOWN"]
`

func TestRewriteGolden(t *testing.T) {
	t.Setenv("CAPSHIM_CONFIG", "")
	pol := writeTemp(t, "shim.toml", chownPolicy)
	tests := []struct {
		name   string
		file   string
		args   []string
		golden string
	}{
		{"docker default diff", "config.default.json", []string{"--builtin", "--diff"}, "rewrite/docker-default.diff"},
		{"docker privileged diff", "config.privileged.json", []string{"--builtin", "--diff"}, "rewrite/docker-privileged.diff"},
		{"cri container with chown rule", "config.cri-container.json", []string{"--config", pol, "--diff"}, "rewrite/cri-container-chown.diff"},
		{"runc spec", "config.runc-spec.json", []string{"--builtin", "--diff"}, "rewrite/runc-spec.diff"},
		{"exec process privileged", "exec-process.privileged.json", []string{"--builtin", "--diff"}, "rewrite/exec-privileged.diff"},
		{"docker default spec", "config.default.json", []string{"--builtin"}, "rewrite/docker-default.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fixture(t, tt.file)
			before, _ := os.ReadFile(p)
			code, out, errOut := runCmd(t, append(append([]string{"rewrite"}, tt.args...), p)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			out = strings.ReplaceAll(out, p, "config.json")
			out = strings.ReplaceAll(out, pol, "shim.toml")
			golden.Check(t, tt.golden, []byte(out))
			after, _ := os.ReadFile(p)
			if !bytes.Equal(before, after) {
				t.Error("rewrite without --in-place changed the file")
			}
		})
	}
}

func TestRewriteInPlace(t *testing.T) {
	p := fixture(t, "config.default.json")
	code, out, errOut := runCmd(t, "rewrite", "--builtin", "--in-place", p)
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, want 0640 kept", st.Mode().Perm())
	}
	first, _ := os.ReadFile(p)
	// Idempotent: a second run changes nothing.
	if code, _, errOut := runCmd(t, "rewrite", "--builtin", "--in-place", p); code != 0 {
		t.Fatalf("second run: exit %d: %s", code, errOut)
	}
	second, _ := os.ReadFile(p)
	if !bytes.Equal(first, second) {
		t.Error("second rewrite changed the file")
	}
	// Nothing left behind in the directory.
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after rewrite, want only config.json", len(entries))
	}
	// check agrees: nothing more to drop.
	if code, out, _ := runCmd(t, "check", "--builtin", "--no-validate", p); code != 0 {
		t.Errorf("check after rewrite: exit %d: %s", code, out)
	}
}

func TestRewriteOutputAndStdin(t *testing.T) {
	p := fixture(t, "config.default.json")
	outPath := filepath.Join(t.TempDir(), "out.json")
	if code, _, errOut := runCmd(t, "rewrite", "--builtin", "-o", outPath, p); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	viaFile, _ := os.ReadFile(outPath)
	_, viaStdout, _ := runCmd(t, "rewrite", "--builtin", p)
	if string(viaFile) != viaStdout {
		t.Error("-o and stdout differ")
	}
}

func TestCLIBadInput(t *testing.T) {
	dir := t.TempDir()
	good := fixture(t, "config.default.json")
	goodBytes, _ := os.ReadFile(good)
	truncated := writeTemp(t, "config.json", string(goodBytes[:len(goodBytes)/2]))
	malformed := writeTemp(t, "config.json", `{"process": {"capabilities": {"bounding": ["CAP_KILL",]}}}`)
	badPolicy := writeTemp(t, "shim.toml", "mode = \"enforce\"\nnever = [\"CAP_NOPE\"]\n")
	syntaxPolicy := writeTemp(t, "shim.toml", "mode = enforce\n")
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		file string // must be unchanged afterwards
		want []string
	}{
		{"missing file", []string{"rewrite", "--builtin", "--in-place", filepath.Join(dir, "nope.json")}, "", []string{"nope.json", "no such file"}},
		{"truncated", []string{"rewrite", "--builtin", "--in-place", truncated}, truncated, []string{truncated, "unexpected end of input"}},
		{"malformed", []string{"rewrite", "--builtin", "--in-place", malformed}, malformed, []string{malformed, "invalid JSON at byte"}},
		{"unknown capability in policy", []string{"rewrite", "--config", badPolicy, "--in-place", good}, good, []string{badPolicy, "never", "CAP_NOPE", "capshim caps"}},
		{"policy syntax error", []string{"rewrite", "--config", syntaxPolicy, "--in-place", good}, good, []string{syntaxPolicy + ":1", "TOML"}},
		{"missing policy", []string{"check", "--config", filepath.Join(dir, "none.toml"), good}, good, []string{"none.toml", "policy not found"}},
		{"symlink", []string{"rewrite", "--builtin", "--in-place", link}, good, []string{"symbolic link"}},
		{"check truncated", []string{"check", "--builtin", truncated}, truncated, []string{truncated, "error"}},
		{"two files for rewrite", []string{"rewrite", "--builtin", good, good}, good, []string{"one FILE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []byte
			if tt.file != "" {
				before, _ = os.ReadFile(tt.file)
			}
			code, out, errOut := runCmd(t, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			msg := out + errOut
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("output does not name %q:\n%s", w, msg)
				}
			}
			if tt.file != "" {
				after, _ := os.ReadFile(tt.file)
				if !bytes.Equal(before, after) {
					t.Errorf("%s changed", tt.file)
				}
			}
		})
	}
}

func TestCheckExitCodes(t *testing.T) {
	reduced := writeTemp(t, "config.json", `{"process":{"capabilities":{"bounding":["CAP_KILL"]}}}`)
	wide := fixture(t, "config.default.json")
	tests := []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"nothing to drop", []string{"check", "--builtin", "--no-validate", reduced}, 0, []string{"ok: nothing to drop"}},
		{"something to drop", []string{"check", "--builtin", "--no-validate", wide}, 1, []string{"bounding: would drop CAP_CHOWN"}},
		{"json", []string{"check", "--builtin", "--no-validate", "--format", "json", wide, reduced}, 1, []string{`"drop"`, `"bounding"`, `"target"`}},
		{"bad format", []string{"check", "--builtin", "--format", "yaml", wide}, 2, []string{"text or json"}},
		{"validation reported", []string{"check", "--builtin", wide}, 1, []string{"invalid:"}},
		{"strict validation", []string{"check", "--builtin", "--strict", reduced}, 1, []string{"invalid:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			for _, w := range tt.wants {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errOut)
				}
			}
		})
	}
}
