package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		opts    Options
		wantErr string
		want    string
		mode    fs.FileMode
	}{
		{name: "new file", opts: Options{Mode: 0o600}, want: "new", mode: 0o600},
		{
			name:  "replace keeps the mode",
			setup: func(t *testing.T, p string) { write(t, p, "old", 0o640) },
			opts:  Options{Mode: 0o600, KeepMode: true}, want: "new", mode: 0o640,
		},
		{
			name:  "replace with a new mode",
			setup: func(t *testing.T, p string) { write(t, p, "old", 0o644) },
			opts:  Options{Mode: 0o600}, want: "new", mode: 0o600,
		},
		{
			name: "link refused",
			setup: func(t *testing.T, p string) {
				target := p + ".target"
				write(t, target, "old", 0o644)
				if err := os.Symlink(target, p); err != nil {
					t.Fatal(err)
				}
			},
			opts: Options{Kind: "daemon.json"}, wantErr: "capshim does not write a daemon.json through a link",
		},
		{
			name:  "directory refused",
			setup: func(t *testing.T, p string) { os.Mkdir(p, 0o755) },
			opts:  Options{Kind: "profile"}, wantErr: "not a regular file",
		},
		{
			name:  "no replace",
			setup: func(t *testing.T, p string) { write(t, p, "old", 0o644) },
			opts:  Options{NoReplace: true}, wantErr: "already exists",
		},
		{name: "no replace, new", opts: Options{NoReplace: true, Mode: 0o644}, want: "new", mode: 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if tt.setup != nil {
				tt.setup(t, p)
			}
			err := Write(p, []byte("new"), tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				b, _ := os.ReadFile(p)
				st, _ := os.Stat(p)
				if string(b) != tt.want || st.Mode().Perm() != tt.mode {
					t.Fatalf("content %q mode %v, want %q %v", b, st.Mode().Perm(), tt.want, tt.mode)
				}
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.Contains(e.Name(), ".capshim-") {
					t.Fatalf("temporary file left: %s", e.Name())
				}
			}
		})
	}
	if err := Write(filepath.Join(t.TempDir(), "missing", "f"), nil, Options{}); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func write(t *testing.T, p, s string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}
