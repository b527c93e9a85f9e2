package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capshim/capshim/policy"
)

// TestRuntimeSelf: capshim never runs itself as the real runtime, whether
// the policy names it or it sits on PATH as "runc".
func TestRuntimeSelf(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := findRuntime(&policy.Policy{Runtime: self, Source: "test.toml"}); err == nil || !strings.Contains(err.Error(), "capshim itself") {
		t.Errorf("runtime = capshim: err = %v", err)
	}

	dir := t.TempDir()
	if err := os.Symlink(self, filepath.Join(dir, "runc")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if _, err := findRuntime(&policy.Policy{Source: "test.toml"}); err == nil || !strings.Contains(err.Error(), "no runc found on PATH (other than capshim itself)") {
		t.Errorf("runc on PATH is capshim: err = %v", err)
	}
}

// TestRuntimeFromPath skips relative PATH entries and finds runc.
func TestRuntimeFromPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the trust check needs a root-owned runc")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	runc := filepath.Join(dir, "runc")
	if err := os.WriteFile(runc, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "relative/bin:"+dir)
	got, err := findRuntime(&policy.Policy{Source: "test.toml"})
	if err != nil || got.path != runc {
		t.Fatalf("findRuntime = %q, %v; want %q", got.path, err, runc)
	}
	got.file.Close()
}

// TestRuntimeWithoutPATH: with no PATH at all (Podman's cleanup calls the
// runtime so), runc is found in the usual system directories.
func TestRuntimeWithoutPATH(t *testing.T) {
	if _, err := os.Stat("/usr/bin/runc"); err != nil {
		t.Skip("no /usr/bin/runc")
	}
	t.Setenv("PATH", "")
	got, err := findRuntime(&policy.Policy{Source: "test.toml"})
	if err != nil || filepath.Base(got.path) != "runc" {
		t.Fatalf("findRuntime = %q, %v", got.path, err)
	}
	got.file.Close()
}
