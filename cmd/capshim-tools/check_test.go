package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckRealSpecs: capshim check prints no "invalid:" line for a spec
// a real engine wrote (every fixture in spec/testdata), unless --strict,
// while a broken spec still gets its lines.
func TestCheckRealSpecs(t *testing.T) {
	real, err := filepath.Glob("../../spec/testdata/config.*.json")
	if err != nil || len(real) < 7 {
		t.Fatalf("fixtures: %v, %v", real, err)
	}
	broken := filepath.Join(t.TempDir(), "broken.json")
	if err := os.WriteFile(broken, []byte(`{"ociVersion":"1.0.2","process":{"cwd":"relative","args":[],"capabilities":{"bounding":["CAP_KILL"]}},"root":{"path":"rootfs"},"mounts":[{"destination":"rel","type":"bind","source":"/x"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	type checkCase struct {
		name        string
		file        string
		strict      bool
		wantInvalid []string // none: no invalid line at all
	}
	var tests []checkCase
	for _, f := range real {
		base := filepath.Base(f)
		tests = append(tests,
			checkCase{name: base, file: f},
			checkCase{name: base + " strict", file: f, strict: true, wantInvalid: []string{"validate currently only handles version"}})
	}
	tests = append(tests,
		checkCase{name: "broken", file: broken, wantInvalid: []string{`cwd "relative" is not an absolute path`, "args must not be empty", `mounts[0].destination "rel" is not absolute`}},
		checkCase{name: "broken strict", file: broken, strict: true, wantInvalid: []string{`cwd "relative" is not an absolute path`, "cannot find the root path"}},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"check", "--builtin", tt.file}
			if tt.strict {
				args = append(args, "--strict")
			}
			code, stdout, stderr := runCmd(t, args...)
			if stderr != "" {
				t.Errorf("stderr %q", stderr)
			}
			var invalid []string
			for _, line := range strings.Split(stdout, "\n") {
				if _, msg, ok := strings.Cut(line, ": invalid: "); ok {
					invalid = append(invalid, msg)
				}
			}
			if len(tt.wantInvalid) == 0 && len(invalid) > 0 {
				t.Errorf("invalid lines for a real engine's spec:\n%s", strings.Join(invalid, "\n"))
			}
			for _, want := range tt.wantInvalid {
				found := false
				for _, got := range invalid {
					found = found || strings.HasPrefix(got, want)
				}
				if !found {
					t.Errorf("no invalid line %q in\n%s", want, stdout)
				}
			}
			// --strict makes findings count; without it the exit status
			// says only what would be dropped.
			if tt.strict && code != 1 {
				t.Errorf("--strict with findings: exit %d, want 1", code)
			}
		})
	}
}
