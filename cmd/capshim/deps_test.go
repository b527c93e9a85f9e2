package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The runtime binary watches and harvests with plain bpf(2) calls; the
// BPF library (and the program generator with it) stays in capshim-trace,
// which runs only to load the recorder.
func TestNoBPFLibrary(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/cilium/") || pkg == "github.com/capshim/capshim/trace" {
			t.Errorf("capshim links %s", pkg)
		}
	}
}
