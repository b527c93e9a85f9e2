package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/capshim/capshim"
)

// TestBuiltBinaries builds capshim, capshim-tools and capshim-trace into
// one directory, as make build does, and runs the capshim binary the way
// a person and an engine do: its own commands, typing mistakes and
// capshim version reach capshim-tools; runtime calls, whatever word comes
// after runtime flags, reach the runtime (a stand-in runc here).
func TestBuiltBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the three binaries")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	rt := filepath.Join(dir, "rt")
	for _, d := range []string{bin, rt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH to build the binaries")
	}
	for _, name := range []string{"capshim", "capshim-tools", "capshim-trace"} {
		cmd := exec.Command(goTool, "build", "-o", filepath.Join(bin, name), "github.com/capshim/capshim/cmd/"+name)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, out)
		}
	}
	runc := filepath.Join(rt, "runc")
	script := "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'runc version 1.1.5 (stand-in)'; exit 0; }\necho \"runc got: $*\"\n"
	if err := os.WriteFile(runc, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "shim.toml")
	if err := os.WriteFile(pol, []byte("mode = \"audit\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	v := regexp.QuoteMeta(capshim.Version())
	q := regexp.QuoteMeta
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string // regular expressions (multi-line mode)
		stderr []string
		not    []string // must match neither
	}{
		{name: "version", args: []string{"version"},
			stdout: []string{
				`(?m)^capshim        ` + v + `  ` + q(filepath.Join(bin, "capshim")) + `$`,
				`(?m)^capshim-tools  ` + v + `  ` + q(filepath.Join(bin, "capshim-tools")) + `$`,
				`(?m)^capshim-trace  ` + v + `  ` + q(filepath.Join(bin, "capshim-trace")) + `$`,
				`(?m)^runtime        ` + q(runc) + ` \(runc on PATH; policy: ` + q(pol) + ` \(\$CAPSHIM_CONFIG\)\)$`,
				`(?m)^  runc version 1.1.5 \(stand-in\)$`,
			},
			not: []string{"different builds"}},
		{name: "typo", args: []string{"uninstal"}, code: 2,
			stderr: []string{`(?m)^capshim: unknown command "uninstal"; did you mean "uninstall"\?$`},
			not:    []string{"No help topic", "runc got"}},
		{name: "help after the engine", args: []string{"install", "docker", "--help"},
			stdout: []string{`capshim install - register capshim`}, not: []string{"No help topic"}},
		{name: "runc's version through capshim", args: []string{"--version"},
			stdout: []string{`(?m)^capshim version ` + v + `\nrunc version 1.1.5 \(stand-in\)$`}},
		{name: "unknown word after a runtime flag goes to the runtime", args: []string{"--root", "/run/x", "frobnicate", "id"},
			stdout: []string{`(?m)^runc got: --root /run/x frobnicate id$`}},
		{name: "a container named like a command is a runtime call", args: []string{"--root", "/run/x", "kill", "rewrite", "KILL"},
			stdout: []string{`(?m)^runc got: --root /run/x kill rewrite KILL$`}},
		{name: "create reads the spec", args: []string{"--root", "/run/x", "create", "rewrite"}, code: 1,
			stderr: []string{`capshim: reading the spec: `}, not: []string{"runc got"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(bin, "capshim"), tt.args...)
			cmd.Dir = work
			cmd.Env = append(os.Environ(), "PATH="+rt+":/usr/bin:/bin", "CAPSHIM_CONFIG="+pol, "CAPSHIM_CONFIG_DIR=")
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			for _, re := range tt.stdout {
				if !regexp.MustCompile(re).Match(out.Bytes()) {
					t.Errorf("stdout lacks %s", re)
				}
			}
			for _, re := range tt.stderr {
				if !regexp.MustCompile(re).Match(errOut.Bytes()) {
					t.Errorf("stderr lacks %s", re)
				}
			}
			for _, re := range tt.not {
				if regexp.MustCompile(re).Match(out.Bytes()) || regexp.MustCompile(re).Match(errOut.Bytes()) {
					t.Errorf("output has %s", re)
				}
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			}
		})
	}
}
