package main

import (
	"bytes"
	"testing"
)

// runCmd runs capshim in process and returns its exit code and output.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"capshim"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}
