package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/capshim/capshim"
)

// TestToolsMissing: capshim's own commands need capshim-tools next to the
// binary; without it capshim says what to install (there is none next to
// the test binary).
func TestToolsMissing(t *testing.T) {
	var errOut bytes.Buffer
	code := run([]string{"capshim", "caps", "chown"}, io.Discard, &errOut)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	for _, want := range []string{"capshim-tools", "install it next to"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("message %q lacks %q", errOut.String(), want)
		}
	}
}

// TestVersionFlag: capshim's own version flag prints capshim's version
// alone, without a policy or a runtime; with anything else it is no flag
// of capshim's.
func TestVersionFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"capshim", versionFlag}, &out, &errOut); code != 0 || out.String() != "capshim version "+capshim.Version()+"\n" || errOut.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if isCLI([]string{"capshim", versionFlag, "x"}) {
		t.Error("with more arguments it is a runtime call")
	}
}
