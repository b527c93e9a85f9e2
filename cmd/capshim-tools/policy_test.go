package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyCheckRuntimeOnPath: policy check finds runc on the PATH it is
// given, as the runtime does, and reports what the runtime would.
func TestPolicyCheckRuntimeOnPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "shim.toml")
	if err := os.WriteFile(pol, []byte("mode = \"audit\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, mode os.FileMode, uid int) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "runc"), []byte("#!/bin/sh\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(d, "runc"), mode); err != nil {
			t.Fatal(err)
		}
		if uid >= 0 {
			if err := os.Chown(filepath.Join(d, "runc"), uid, uid); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	good := mk("good", 0o755, -1)
	notExec := mk("plain", 0o644, -1)
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		root   bool // needs root (a runc another user owns)
		code   int
		stdout string
		stderr string
	}{
		{name: "found", path: empty + ":" + good, code: 0, stdout: "runtime: " + filepath.Join(good, "runc") + " (runc on PATH): ok"},
		{name: "not executable is not a runc", path: notExec + ":" + good, code: 0, stdout: "runtime: " + filepath.Join(good, "runc") + " (runc on PATH): ok"},
		{name: "no runc", path: empty, code: 1, stdout: "runtime: refused",
			stderr: `capshim: no runc found on PATH (other than capshim itself); install runc or set runtime = "/path/to/runtime" in ` + pol},
		{name: "untrusted runc", root: true, path: "USERS", code: 1, stdout: "runtime: refused",
			stderr: "capshim: untrusted runtime found on PATH: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if tt.root {
				if os.Geteuid() != 0 {
					t.Skip("needs root to make a runc another user owns")
				}
				path = mk("users", 0o755, 65534)
			}
			t.Setenv("PATH", path)
			code, stdout, stderr := runCmd(t, "policy", "check", pol)
			if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) || tt.stderr == "" && stderr != "" {
				t.Errorf("exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout with %q, stderr with %q", code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}
