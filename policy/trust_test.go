package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckTrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create root-owned and foreign-owned files")
	}
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	mk := func(rel string, mode os.FileMode, uid int) string {
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("mode = \"enforce\"\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, 0); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mkdir := func(rel string, mode os.FileMode, uid int) {
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, 0); err != nil {
			t.Fatal(err)
		}
	}
	good := mk("good/shim.toml", 0o644, 0)
	foreign := mk("foreign/shim.toml", 0o644, 1000)
	worldFile := mk("world/shim.toml", 0o666, 0)
	groupFile := mk("group/shim.toml", 0o664, 0)
	mkdir("opendir", 0o777, 0)
	inOpen := mk("opendir/shim.toml", 0o644, 0)
	mkdir("sticky", 0o777|os.ModeSticky, 0)
	inSticky := mk("sticky/shim.toml", 0o644, 0)
	mkdir("userdir", 0o755, 1000)
	inUserDir := mk("userdir/shim.toml", 0o644, 0)
	exe := mk("bin/runc", 0o755, 0)
	noexec := mk("bin/noexec", 0o644, 0)
	link := filepath.Join(base, "good", "link.toml")
	if err := os.Symlink(inOpen, link); err != nil {
		t.Fatal(err)
	}
	goodLink := filepath.Join(base, "good", "goodlink.toml")
	if err := os.Symlink(good, goodLink); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		path string
		exec bool
		want string // "" = trusted
	}{
		{"root-owned 0644", good, false, ""},
		{"in a sticky world-writable dir", inSticky, false, ""},
		{"link to a trusted file", goodLink, false, ""},
		{"executable runtime", exe, true, ""},
		{"owned by another user", foreign, false, "owned by uid 1000"},
		{"world-writable", worldFile, false, "writable by group or others"},
		{"group-writable", groupFile, false, "writable by group or others"},
		{"in a world-writable dir", inOpen, false, "directory"},
		{"in a dir owned by a user", inUserDir, false, "owned by uid 1000"},
		{"link into an untrusted dir", link, false, "writable by group or others"},
		{"not executable", noexec, true, "not executable"},
		{"relative", "shim.toml", false, "not an absolute path"},
		{"missing", filepath.Join(base, "none.toml"), false, "no such file"},
		{"a directory", filepath.Join(base, "good"), false, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTrusted(tt.path, tt.exec)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
