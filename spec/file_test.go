package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(`{"a":1}`), 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Replace([]byte(`{"a":2}`)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	st, _ := os.Stat(p)
	if string(got) != `{"a":2}` || st.Mode().Perm() != 0o640 {
		t.Fatalf("content %q mode %v", got, st.Mode().Perm())
	}
	assertOnly(t, dir, "config.json")
}

// TestReplaceFailureLeavesNothing: when the rename cannot happen, the old
// file stays and the temporary file is removed.
func TestReplaceFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	if err := os.WriteFile(p, []byte(`{"a":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// Put a non-empty directory where config.json was: the replace must
	// refuse it (a rename could not succeed either).
	os.Remove(p)
	os.MkdirAll(filepath.Join(p, "x"), 0o755)
	err = f.Replace([]byte(`{"a":2}`))
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err = %v", err)
	}
	assertOnly(t, dir, "config.json")
}

func TestReplaceUnwritableDir(t *testing.T) {
	if os.Geteuid() == 0 {
		// root writes anywhere; a read-only mount is tested with real runc
		// in integration/hardening_test.go.
		t.Skip("root ignores directory permissions")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	os.WriteFile(p, []byte(`{}`), 0o644)
	f, _ := ReadFile(p)
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	if err := f.Replace([]byte(`{"a":2}`)); err == nil {
		t.Fatal("write into a read-only directory succeeded")
	}
	assertOnly(t, dir, "config.json")
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("directory holds %v, want %v", got, names)
	}
}
