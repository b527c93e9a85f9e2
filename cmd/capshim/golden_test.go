package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update makes golden write its golden files instead of comparing:
// go test ./cmd/capshim/ -update.
var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got byte for byte with the golden file testdata/<name>
// (name uses forward slashes, e.g. "caps/all.txt"). With -update it writes
// got to that file instead, creating its directory.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", filepath.FromSlash(name))
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("create golden directory: %v", err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("write golden file: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	line, gotLine, wantLine := firstDiffLine(got, want)
	t.Errorf("output differs from %s at line %d (run go test -update to accept):\n got: %q\nwant: %q\nfull output:\n%s",
		path, line, gotLine, wantLine, got)
}

// firstDiffLine finds the first line (counted from 1) where got and want
// differ and returns it from both; a missing line is returned as "".
func firstDiffLine(got, want []byte) (line int, gotLine, wantLine string) {
	g := bytes.SplitAfter(got, []byte("\n"))
	w := bytes.SplitAfter(want, []byte("\n"))
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl []byte
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if !bytes.Equal(gl, wl) {
			return i + 1, string(gl), string(wl)
		}
	}
	return 0, "", ""
}
