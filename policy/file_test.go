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
