package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestToolsMissing: capshim's own commands need capshim-tools next to the
// binary; without it capshim says what to install (there is none next to
// the test binary).
func TestToolsMissing(t *testing.T) {
	var errOut bytes.Buffer
	code := run([]string{"capshim", "caps", "chown"}, &errOut)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	for _, want := range []string{"capshim-tools", "install it next to"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("message %q lacks %q", errOut.String(), want)
		}
	}
}
