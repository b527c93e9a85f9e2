package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/capshim/capshim/internal/rtvalidate"
)

// The test binary stands in for capshim-validate: run with
// CAPSHIM_TEST_VALIDATOR=1 it is the validator, so `check` tests go
// through the same exec and JSON protocol as the real binaries.
func init() {
	if os.Getenv("CAPSHIM_TEST_VALIDATOR") == "1" {
		os.Exit(rtvalidate.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	defaultValidator = newValidator
	newValidator = func(bundle string) (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0], "--bundle", bundle)
		cmd.Env = append(os.Environ(), "CAPSHIM_TEST_VALIDATOR=1")
		return cmd, nil
	}
}

// defaultValidator is the real newValidator (capshim-validate next to the
// executable).
var defaultValidator func(string) (*exec.Cmd, error)

// TestValidatorMissing: without capshim-validate next to capshim, check
// says what is missing and how to go on, and exits 2.
func TestValidatorMissing(t *testing.T) {
	if _, err := defaultValidator("."); err == nil {
		t.Skip("a capshim-validate lies next to the test binary")
	} else if msg := err.Error(); !strings.Contains(msg, "capshim-validate is missing") || !strings.Contains(msg, "--no-validate") {
		t.Errorf("message does not say what is missing and what to do: %s", msg)
	}
	saved := newValidator
	newValidator = defaultValidator
	defer func() { newValidator = saved }()
	code, out, errOut := runCmd(t, "check", "--builtin", fixture(t, "config.default.json"))
	if code != 2 || !strings.Contains(out+errOut, "capshim-validate is missing") {
		t.Errorf("exit %d, want 2 naming the missing validator:\n%s%s", code, out, errOut)
	}
	if code, _, _ := runCmd(t, "check", "--builtin", "--no-validate", fixture(t, "config.default.json")); code != 1 {
		t.Errorf("--no-validate without the validator: exit %d, want 1", code)
	}
}

// TestValidatorProtocol runs the validator command line directly.
func TestValidatorProtocol(t *testing.T) {
	data, err := os.ReadFile("../../spec/testdata/config.default.json")
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := rtvalidate.Main([]string{"--bundle", t.TempDir()}, strings.NewReader(string(data)), &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "[") {
		t.Errorf("output is not a JSON list: %s", out.String())
	}
	if code := rtvalidate.Main([]string{"extra"}, strings.NewReader("{}"), &out, &errOut); code != 2 {
		t.Errorf("an operand: exit %d, want 2", code)
	}
}
