package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the trust check accepts only root-owned files")
	}
}

// rootDir is a fresh root-owned 0755 directory.
func rootDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestLoadRuntimePolicyRefuses: a missing policy that capshim was told to
// read is "not found" with what to do, never "untrusted", wherever it
// would have been; a policy reached through a user's link is untrusted.
func TestLoadRuntimePolicyRefuses(t *testing.T) {
	requireRoot(t)
	dir := rootDir(t)
	users := filepath.Join(t.TempDir(), "users")
	if err := os.Mkdir(users, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(users, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	sticky := filepath.Join(t.TempDir(), "sticky")
	if err := os.Mkdir(sticky, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("mode = \"audit\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	usersLink := filepath.Join(sticky, "shim.toml")
	if err := os.Symlink(good, usersLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(usersLink, 65534, 65534); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		flag  string
		argv0 string
		env   map[string]string
		want  []string
	}{
		{name: "flag names a missing file", flag: filepath.Join(dir, "web.toml"),
			want: []string{"policy not found", filepath.Join(dir, "web.toml"), "no such file or directory", "--capshim-config", "create it"}},
		{name: "flag names a missing file in a user's directory", flag: filepath.Join(users, "web.toml"),
			want: []string{"policy not found", "no such file or directory", "--capshim-config"}},
		{name: "flag names a file in a missing directory", flag: filepath.Join(dir, "none", "web.toml"),
			want: []string{"policy not found", filepath.Join(dir, "none") + " does not exist"}},
		{name: "name capshim is called as, file missing", argv0: "/usr/local/bin/capshim-web",
			env:  map[string]string{"CAPSHIM_CONFIG_DIR": dir},
			want: []string{"policy not found", filepath.Join(dir, "capshim-web.toml"), "called as capshim-web", "create it"}},
		{name: "environment names a missing file", env: map[string]string{"CAPSHIM_CONFIG": filepath.Join(dir, "env.toml")},
			want: []string{"policy not found", "$CAPSHIM_CONFIG"}},
		{name: "user's link in a sticky directory", flag: usersLink,
			want: []string{"untrusted policy", "symbolic link " + usersLink, "owned by uid 65534"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CAPSHIM_CONFIG", "")
			t.Setenv("CAPSHIM_CONFIG_DIR", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			argv0 := tt.argv0
			if argv0 == "" {
				argv0 = "/usr/local/bin/capshim"
			}
			p, err := loadRuntimePolicy(tt.flag, argv0)
			if err == nil {
				t.Fatalf("loaded %s", p.Source)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(tt.want[0], "not found") && strings.Contains(err.Error(), "untrusted") {
				t.Errorf("a missing policy is reported as untrusted: %v", err)
			}
		})
	}
}
