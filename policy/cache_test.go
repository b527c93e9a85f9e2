package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const cachePolicy = `runtime = "/usr/bin/runc"
mode = "audit"
default = ["CAP_KILL"]
never = ["CAP_SYS_ADMIN"]
on_denied_request = "fail"
log = "/var/log/capshim \"decisions\".jsonl"

[[rule]]
name = "web rule \"one\""
capabilities = ["CAP_CHOWN", "CAP_SETUID"]
[rule.match.annotations]
"io.kubernetes.cri.sandbox-namespace" = "web-*"
"a key with spaces" = "v[a-c]\\*"

[[rule]]
name = "all"
capabilities = ["CAP_NET_RAW"]
`

func TestCacheRoundTrip(t *testing.T) {
	for _, src := range []string{cachePolicy, "", "default = []\nnever = []\n"} {
		p, err := Parse([]byte(src), "/etc/capshim/x.toml")
		if err != nil {
			t.Fatal(err)
		}
		q, err := decodeCache(encodeCache(p, "k 1 2"), "k 1 2")
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, encodeCache(p, "k 1 2"))
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip:\n%+v\n%+v", p, q)
		}
	}
}

func TestCacheDecodeRefuses(t *testing.T) {
	p, _ := Parse([]byte(cachePolicy), "x")
	good := string(encodeCache(p, "k"))
	tests := []struct{ name, data, key string }{
		{"other key", good, "k2"},
		{"bad magic", strings.Replace(good, "v1", "v0", 1), "k"},
		{"truncated", good[:len(good)/2], "k"},
		{"no end", strings.TrimSuffix(good, "end\n"), "k"},
		{"data after end", good + "x\n", "k"},
		{"set beyond the known capabilities", strings.Replace(good, "default 20", "default 1ffffffffff20", 1), "k"},
		{"bad mode", strings.Replace(good, `mode "audit"`, `mode "off"`, 1), "k"},
		{"match before any rule", strings.Replace(good, "rule ", "match ", 1), "k"},
		{"empty", "", "k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeCache([]byte(tt.data), tt.key); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestLoadTrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the cache is used by root only")
	}
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	path := filepath.Join(dir, "shim.toml")
	if err := os.WriteFile(path, []byte(cachePolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	want, _ := Parse([]byte(cachePolicy), path)

	p, err := LoadTrusted(path, cache, "build1")
	if err != nil || !reflect.DeepEqual(p, want) {
		t.Fatalf("first load: %v\n%+v", err, p)
	}
	cf := filepath.Join(cache, cacheName(path))
	st, err := os.Stat(cf)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v %v", err, st)
	}
	if st, _ := os.Stat(cache); st.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir mode %v", st.Mode().Perm())
	}

	// A hit uses the cache: make it say something else, with the same key.
	data, _ := os.ReadFile(cf)
	tampered := strings.Replace(string(data), `runtime "/usr/bin/runc"`, `runtime "/usr/bin/crun"`, 1)
	os.WriteFile(cf, []byte(tampered), 0o600)
	if p, _ := LoadTrusted(path, cache, "build1"); p.Runtime != "/usr/bin/crun" {
		t.Fatalf("cache not used: runtime %q", p.Runtime)
	}
	// Another build does not use it.
	if p, _ := LoadTrusted(path, cache, "build2"); p.Runtime != "/usr/bin/runc" {
		t.Fatalf("another build used the cache: runtime %q", p.Runtime)
	}
	// A changed policy file (same size, same mtime) is parsed again.
	os.WriteFile(cf, []byte(tampered), 0o600)
	changed := strings.Replace(cachePolicy, `mode = "audit"`, `mode = "enfor"`, 1) // same length
	info, _ := os.Stat(path)
	os.WriteFile(path, []byte(changed), 0o644)
	os.Chtimes(path, time.Now(), info.ModTime())
	if _, err := LoadTrusted(path, cache, "build1"); err == nil || !strings.Contains(err.Error(), "mode") {
		t.Fatalf("changed file: err = %v, want the new parse error", err)
	}
	// A cache file others could read or write is ignored.
	os.WriteFile(path, []byte(cachePolicy), 0o644)
	LoadTrusted(path, cache, "build1")
	data, _ = os.ReadFile(cf)
	os.WriteFile(cf, []byte(strings.Replace(string(data), `runtime "/usr/bin/runc"`, `runtime "/usr/bin/crun"`, 1)), 0o600)
	os.Chmod(cf, 0o644)
	if p, _ := LoadTrusted(path, cache, "build1"); p.Runtime != "/usr/bin/runc" {
		t.Fatalf("a 0644 cache file was used")
	}
	// A cache directory others can enter is neither used nor written.
	os.RemoveAll(cache)
	os.Mkdir(cache, 0o755)
	LoadTrusted(path, cache, "build1")
	if _, err := os.Stat(cf); err == nil {
		t.Fatal("cache written into a 0755 directory")
	}
}

// TestLoadTrustedCacheLinks: a cache reached through any symbolic link, or
// in a directory or file not root's alone, is neither used nor written,
// even when what the link points at would pass.
func TestLoadTrustedCacheLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the cache is used by root only")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "shim.toml")
	if err := os.WriteFile(path, []byte(cachePolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	// A good cache, made by a first load, then tampered with: a load
	// that uses it reports runtime /usr/bin/crun.
	real := filepath.Join(dir, "real-cache")
	if _, err := LoadTrusted(path, real, "b"); err != nil {
		t.Fatal(err)
	}
	cf := filepath.Join(real, cacheName(path))
	data, err := os.ReadFile(cf)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(data), `runtime "/usr/bin/runc"`, `runtime "/usr/bin/crun"`, 1)
	if err := os.WriteFile(cf, []byte(tampered), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, _ := LoadTrusted(path, real, "b"); p.Runtime != "/usr/bin/crun" {
		t.Fatal("control: the tampered cache is not used")
	}

	linkDir := filepath.Join(dir, "link-cache")
	if err := os.Symlink(real, linkDir); err != nil {
		t.Fatal(err)
	}
	linkParent := filepath.Join(dir, "link-parent")
	if err := os.Symlink(dir, linkParent); err != nil {
		t.Fatal(err)
	}
	fileLinkDir := filepath.Join(dir, "file-link-cache")
	if err := os.Mkdir(fileLinkDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(cf, filepath.Join(fileLinkDir, cacheName(path))); err != nil {
		t.Fatal(err)
	}
	usersDir := filepath.Join(dir, "users-cache")
	if err := os.Mkdir(usersDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(usersDir, cacheName(path)), []byte(tampered), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(usersDir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	usersFileDir := filepath.Join(dir, "users-file-cache")
	if err := os.Mkdir(usersFileDir, 0o700); err != nil {
		t.Fatal(err)
	}
	uf := filepath.Join(usersFileDir, cacheName(path))
	if err := os.WriteFile(uf, []byte(tampered), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(uf, 65534, 65534); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		cache string
		// written is where a load must not write a cache file.
		written string
	}{
		{name: "cache directory is a link", cache: linkDir},
		{name: "a link above the cache directory", cache: filepath.Join(linkParent, "real-cache")},
		{name: "cache file is a link", cache: fileLinkDir},
		{name: "cache directory owned by a user", cache: usersDir},
		{name: "cache file owned by a user", cache: usersFileDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := os.ReadFile(cf)
			p, err := LoadTrusted(path, tt.cache, "b")
			if err != nil {
				t.Fatal(err)
			}
			if p.Runtime != "/usr/bin/runc" {
				t.Fatalf("the cache was used: runtime %q", p.Runtime)
			}
			if after, _ := os.ReadFile(cf); string(after) != string(before) {
				t.Fatalf("the cache was written through the link")
			}
		})
	}
	if ents, _ := os.ReadDir(usersDir); len(ents) != 1 {
		t.Errorf("a cache was written into a user's directory: %v", ents)
	}
}
