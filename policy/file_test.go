package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadTrusted(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string
		wantErr string
	}{
		{name: "example", content: string(rulesPolicy)},
		{name: "too large", content: "# " + strings.Repeat("x", maxPolicy) + "\n", wantErr: "larger than 1048576 bytes"},
		{name: "bad", content: "mode = \"x\"\n", wantErr: "mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".toml")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := LoadTrusted(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || p.Source != path {
				t.Fatalf("LoadTrusted = %v, %v", p, err)
			}
		})
	}
}

// TestLocationRead: Read gives the text the policy was parsed from, also
// when it does not parse, and nothing for the built-in policy.
func TestLocationRead(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	for path, text := range map[string]string{good: "mode = \"audit\"\n", bad: "mode = \"x\"\n"} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	none := func(string) string { return "" }
	tests := []struct {
		name     string
		loc      Location
		wantText string
		wantErr  string
		source   string
	}{
		{name: "file", loc: Locate(good, "capshim", false, none), wantText: "mode = \"audit\"\n", source: good},
		{name: "file that does not parse", loc: Locate(bad, "capshim", false, none), wantText: "mode = \"x\"\n", wantErr: "is not a mode"},
		{name: "missing named file", loc: Locate(filepath.Join(dir, "none.toml"), "capshim", false, none), wantErr: "policy not found"},
		{name: "built-in", loc: Locate("", "capshim", true, none), source: BuiltinSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, text, err := tt.loc.Read()
			if string(text) != tt.wantText {
				t.Errorf("text %q, want %q", text, tt.wantText)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || p.Source != tt.source {
				t.Fatalf("Read = %v, %v; want source %s", p, err, tt.source)
			}
		})
	}
}

// TestReadFDSize: the read gives the whole file whatever fstat said of
// its size (a file that grew or shrank since), and refuses one over the
// bound however it was sized.
func TestReadFDSize(t *testing.T) {
	content := strings.Repeat("# a line of a policy\n", 1000) // 21 KB: several chunks
	path := filepath.Join(t.TempDir(), "shim.toml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		size int64
		max  int
		want string // "" for content
	}{
		{name: "the size", size: int64(len(content)), max: maxPolicy},
		{name: "grew since", size: 10, max: maxPolicy},
		{name: "empty then", size: 0, max: maxPolicy},
		{name: "shrank since", size: 2 * int64(len(content)), max: maxPolicy},
		{name: "no size", size: -1, max: maxPolicy},
		{name: "over the bound", size: 10, max: 4096, want: "larger than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			data, err := readFD(int(f.Fd()), tt.max, tt.size)
			switch {
			case tt.want != "":
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
			case err != nil:
				t.Fatal(err)
			case string(data) != content:
				t.Fatalf("read %d bytes, want the file's %d", len(data), len(content))
			}
		})
	}
}
