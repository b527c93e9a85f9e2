package install

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// put writes a file with exactly the given mode.
func put(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestReplacePolicy(t *testing.T) {
	okVerify := func() error { return nil }
	refuse := func() error { return errors.New("the runtime refuses it") }
	tests := []struct {
		name     string
		old      string // "" no file; "LINK" a symbolic link
		oldMode  os.FileMode
		sub      string // the policy lies in this missing subdirectory
		verify   func() error
		wantErr  string
		want     string // the policy's content afterwards
		wantMode os.FileMode
		previous string // the previous copy's content; "" none
		existed  bool
		same     bool
	}{
		{name: "new file", verify: okVerify, want: "new\n", wantMode: 0o644},
		{name: "new file in a missing directory", sub: "etc/capshim", verify: okVerify, want: "new\n", wantMode: 0o644},
		{name: "replace keeps the previous", old: "old\n", oldMode: 0o640, verify: okVerify,
			want: "new\n", wantMode: 0o640, previous: "old\n", existed: true},
		{name: "group write bit dropped", old: "old\n", oldMode: 0o664, verify: okVerify,
			want: "new\n", wantMode: 0o644, previous: "old\n", existed: true},
		{name: "same content: nothing written", old: "new\n", oldMode: 0o644, verify: okVerify,
			want: "new\n", wantMode: 0o644, existed: true, same: true},
		{name: "refused after the write: old put back", old: "old\n", oldMode: 0o644, verify: refuse,
			wantErr: "the runtime refuses it (the old policy is back in place)", want: "old\n", wantMode: 0o644, previous: "old\n"},
		{name: "refused after the write: new file removed", verify: refuse,
			wantErr: "the runtime refuses it (the old policy is back in place)"},
		{name: "symbolic link refused", old: "LINK", verify: okVerify, wantErr: "does not write a policy through a link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tt.sub, "shim.toml")
			switch tt.old {
			case "":
			case "LINK":
				target := filepath.Join(dir, "real.toml")
				put(t, target, "real\n", 0o644)
				if err := os.Symlink(target, path); err != nil {
					t.Fatal(err)
				}
			default:
				put(t, path, tt.old, tt.oldMode)
			}
			ch, err := ReplacePolicy(path, []byte("new\n"), tt.verify)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if ch.Existed != tt.existed || ch.Unchanged != tt.same || ch.Previous != path+PreviousSuffix {
				t.Errorf("change = %+v", ch)
			}
			if tt.old == "LINK" {
				if st, err := os.Lstat(path); err != nil || st.Mode()&os.ModeSymlink == 0 {
					t.Errorf("the link was replaced")
				}
				return
			}
			got, err := os.ReadFile(path)
			switch {
			case tt.want == "" && !errors.Is(err, os.ErrNotExist):
				t.Errorf("a policy is left at %s (%q, %v)", path, got, err)
			case tt.want != "" && string(got) != tt.want:
				t.Errorf("policy = %q (%v), want %q", got, err, tt.want)
			case tt.want != "":
				if st, _ := os.Stat(path); st.Mode().Perm() != tt.wantMode {
					t.Errorf("mode %v, want %v", st.Mode().Perm(), tt.wantMode)
				}
			}
			prev, err := os.ReadFile(path + PreviousSuffix)
			if tt.previous == "" && err == nil || tt.previous != "" && string(prev) != tt.previous {
				t.Errorf("previous = %q (%v), want %q", prev, err, tt.previous)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("left behind: %s", e.Name())
				}
			}
		})
	}
}

// TestReplacePolicyUntrustedDirectory: a policy is not put where the
// runtime would refuse it, and nothing is made there.
func TestReplacePolicyUntrustedDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a directory another user owns")
	}
	dir := filepath.Join(t.TempDir(), "users")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "capshim", "shim.toml")
	_, err := ReplacePolicy(path, []byte("new\n"), func() error { return nil })
	if err == nil || !strings.Contains(err.Error(), "untrusted") && !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("err = %v, want the directory refused", err)
	}
	if _, err := os.Lstat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a directory was made: %v", err)
	}
}
