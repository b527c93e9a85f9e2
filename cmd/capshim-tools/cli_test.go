package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
