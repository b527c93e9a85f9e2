package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/capshim/capshim"
	"github.com/capshim/capshim/internal/golden"
)

// installEnv is a temp dir standing in for the host: a capshim binary, an
// engine config (from install/testdata/in, or missing) and the policy
// path. Nothing outside it is touched.
type installEnv struct {
	dir, bin, conf, policy string
}

func newInstallEnv(t *testing.T, confName, fixture string) *installEnv {
	t.Helper()
	dir := t.TempDir()
	e := &installEnv{
		dir:    dir,
		bin:    filepath.Join(dir, "bin", "capshim"),
		conf:   filepath.Join(dir, "etc", confName),
		policy: filepath.Join(dir, "etc", "capshim", "shim.toml"),
	}
	for _, d := range []string{filepath.Dir(e.bin), filepath.Dir(e.conf)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(e.bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if fixture != "" {
		data, err := os.ReadFile(filepath.Join("..", "..", "install", "testdata", "in", fixture))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(e.conf, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// run runs capshim install with the env's paths after args; output has
// the temp dir replaced by $TMP. docker is given the env's policy (and so
// passes it to capshim); containerd and podman would refuse a policy
// their capshim does not read, and write none (--no-policy) instead of
// the host's.
func (e *installEnv) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	args = append(append([]string{"install"}, args...), "--file", e.conf, "--binary", e.bin)
	if e.writesPolicy(args) {
		args = append(args, "--policy", e.policy)
	} else {
		args = append(args, "--no-policy")
	}
	code, stdout, stderr = runCmd(t, args...)
	return code, strings.ReplaceAll(stdout, e.dir, "$TMP"), strings.ReplaceAll(stderr, e.dir, "$TMP")
}

// writesPolicy: the install args name docker, which is given the env's
// policy.
func (e *installEnv) writesPolicy(args []string) bool {
	return slices.Contains(args, "docker") && !slices.Contains(args, "--config")
}

func (e *installEnv) read(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestInstallGolden(t *testing.T) {
	tests := []struct {
		name    string
		conf    string // config file name
		fixture string // install/testdata/in file; "" missing
		args    []string
	}{
		{name: "docker-missing", conf: "daemon.json", args: []string{"docker"}},
		{name: "docker-existing-config", conf: "daemon.json", fixture: "daemon.json",
			args: []string{"docker", "--config", "/etc/capshim/web.toml", "--set-default"}},
		{name: "containerd-v2-default", conf: "config.toml", fixture: "config-v2.toml", args: []string{"containerd", "--set-default"}},
		{name: "containerd-v3", conf: "config.toml", fixture: "config-v3.toml", args: []string{"containerd"}},
		{name: "containerd-dockerio", conf: "config.toml", fixture: "config-dockerio.toml", args: []string{"containerd"}},
		{name: "containerd-debian-1.6", conf: "config.toml", fixture: "config-debian-1.6.toml", args: []string{"containerd"}},
		{name: "containerd-capshim-old", conf: "config.toml", fixture: "config-capshim-old.toml", args: []string{"containerd"}},
		{name: "podman-existing", conf: "containers.conf", fixture: "containers.conf", args: []string{"podman", "--set-default"}},
		{name: "podman-missing", conf: "containers.conf", args: []string{"podman"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newInstallEnv(t, tt.conf, tt.fixture)
			var before []byte
			if tt.fixture != "" {
				before = e.read(t, e.conf)
			}

			// --dry-run: the diff, nothing written.
			code, out, errOut := e.run(t, append(tt.args, "--dry-run")...)
			if code != 0 {
				t.Fatalf("dry run: exit %d: %s", code, errOut)
			}
			golden.Check(t, "install/"+tt.name+".dry-run.txt", []byte(out))
			if tt.fixture != "" && !bytes.Equal(e.read(t, e.conf), before) {
				t.Error("--dry-run changed the config")
			}
			if _, err := os.Lstat(e.conf); tt.fixture == "" && err == nil {
				t.Error("--dry-run created the config")
			}
			if _, err := os.Lstat(e.policy); err == nil {
				t.Error("--dry-run wrote the policy")
			}

			// The real run.
			code, out, errOut = e.run(t, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden.Check(t, "install/"+tt.name+".txt", []byte(out))
			after := e.read(t, e.conf)
			if tt.fixture != "" {
				if backup := e.read(t, e.conf+".capshim-backup"); !bytes.Equal(backup, before) {
					t.Error("the backup is not the old file")
				}
			} else if _, err := os.Lstat(e.conf + ".capshim-backup"); err == nil {
				t.Error("a backup of a missing file was written")
			}
			if !e.writesPolicy(tt.args) {
				if _, err := os.Lstat(e.policy); err == nil {
					t.Error("--no-policy wrote a policy")
				}
			} else {
				if pol := e.read(t, e.policy); !bytes.Equal(pol, capshim.DefaultPolicy) {
					t.Error("the policy is not the default policy")
				}
				for name, mode := range map[string]os.FileMode{e.policy: 0o644, filepath.Dir(e.policy): 0o755} {
					if st, err := os.Stat(name); err != nil || st.Mode().Perm() != mode {
						t.Errorf("%s: mode %v (%v), want %v", name, st.Mode().Perm(), err, mode)
					}
				}
			}

			// Second run: nothing changes, no new backup.
			os.Remove(e.conf + ".capshim-backup")
			code, out, errOut = e.run(t, tt.args...)
			if code != 0 {
				t.Fatalf("second run: exit %d: %s", code, errOut)
			}
			if !strings.Contains(out, "nothing to change") || (e.writesPolicy(tt.args) && !strings.Contains(out, "exists: kept as it is")) {
				t.Errorf("second run does not say nothing changed:\n%s", out)
			}
			if !bytes.Equal(e.read(t, e.conf), after) {
				t.Error("second run changed the config")
			}
			if _, err := os.Lstat(e.conf + ".capshim-backup"); err == nil {
				t.Error("second run wrote a backup")
			}
		})
	}
}

func TestInstallContainerdDecodes(t *testing.T) {
	e := newInstallEnv(t, "config.toml", "config-v2.toml")
	if code, _, errOut := e.run(t, "containerd"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var c struct {
		Plugins map[string]struct {
			Containerd struct {
				DefaultRuntimeName string `toml:"default_runtime_name"`
				Runtimes           map[string]map[string]any
			}
		}
	}
	// go-toml/v2 decodes the file as containerd 2.x does.
	if err := toml.Unmarshal(e.read(t, e.conf), &c); err != nil {
		t.Fatal(err)
	}
	cri := c.Plugins["io.containerd.grpc.v1.cri"].Containerd
	got := cri.Runtimes["capshim"]
	want := map[string]any{
		"runtime_type":          "io.containerd.runc.v2",
		"pod_annotations":       []any{"capshim.io/*", "io.containers.capabilities"},
		"container_annotations": []any{"capshim.io/*"},
		"options":               map[string]any{"BinaryName": e.bin},
	}
	if !equalAny(got, want) {
		t.Errorf("runtimes.capshim = %#v, want %#v", got, want)
	}
	if cri.DefaultRuntimeName != "runc" {
		t.Errorf("default_runtime_name = %q changed without --set-default", cri.DefaultRuntimeName)
	}
}

// equalAny compares decoded TOML values.
func equalAny(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k := range a {
			if !equalAny(a[k], b[k]) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !equalAny(a[i], b[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}

func TestInstallRefused(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		content string // written as the config; "LINK" makes it a symlink
		args    []string
		want    string
	}{
		{"docker unparsable", "daemon.json", "{\n  \"debug\": true,\n}\n", []string{"docker"}, "daemon.json: line 3: invalid character '}'"},
		{"containerd unparsable", "config.toml", "version = 2\n[plugins\n", []string{"containerd"}, "config.toml: line 2:"},
		{"containerd version 1", "config.toml", "version = 1\n[plugins.cri]\n", []string{"containerd"}, "version = 1 config"},
		{"podman unparsable", "containers.conf", "[engine]\nruntime = crun\n", []string{"podman"}, "containers.conf: line 2:"},
		{"docker symlink", "daemon.json", "LINK", []string{"docker"}, "symbolic link"},
		{"containerd symlink", "config.toml", "LINK", []string{"containerd", "--dry-run"}, "symbolic link"},
		{"unknown engine", "daemon.json", "{}", []string{"lxc"}, `unknown engine "lxc"`},
		{"relative config", "daemon.json", "{}", []string{"docker", "--config", "shim.toml"}, "absolute path"},
		{"two engines", "daemon.json", "{}", []string{"docker", "podman"}, "one engine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newInstallEnv(t, tt.conf, "")
			content := tt.content
			if content == "LINK" {
				content = "{}\n"
				target := filepath.Join(e.dir, "real")
				if err := os.WriteFile(target, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, e.conf); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(e.conf, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := e.run(t, tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q, want 2 and %q (stdout %q)", code, errOut, tt.want, out)
			}
			if got := e.read(t, e.conf); string(got) != content {
				t.Errorf("config changed to %q", got)
			}
			entries, _ := os.ReadDir(filepath.Dir(e.conf))
			if len(entries) != 1 {
				t.Errorf("%s holds %d entries, want only the config", filepath.Dir(e.conf), len(entries))
			}
			if st, err := os.Lstat(e.conf); err != nil || (tt.content == "LINK") != (st.Mode()&os.ModeSymlink != 0) {
				t.Errorf("config replaced: %v %v", st, err)
			}
		})
	}
}

func TestInstallKeepsPolicy(t *testing.T) {
	e := newInstallEnv(t, "daemon.json", "")
	if err := os.MkdirAll(filepath.Dir(e.policy), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.policy, []byte("mode = \"audit\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := e.run(t, "docker")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "policy: $TMP/etc/capshim/shim.toml exists: kept as it is") {
		t.Errorf("output does not say the policy is kept:\n%s", out)
	}
	if got := e.read(t, e.policy); string(got) != "mode = \"audit\"\n" {
		t.Errorf("policy overwritten: %q", got)
	}
}

func TestInstallFlagsBeforeEngine(t *testing.T) {
	e := newInstallEnv(t, "containers.conf", "")
	code, _, errOut := runCmd(t, "install", "--file", e.conf, "--binary", e.bin, "--no-policy", "--set-default", "podman")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := string(e.read(t, e.conf))
	if !strings.Contains(got, `runtime = "capshim"`) || !strings.Contains(got, `capshim = ["`+e.bin+`"]`) {
		t.Errorf("containers.conf:\n%s", got)
	}
}

func TestInstallMissingBinary(t *testing.T) {
	e := newInstallEnv(t, "daemon.json", "")
	e.bin = filepath.Join(e.dir, "nowhere", "capshim")
	code, out, errOut := e.run(t, "docker", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "note: $TMP/nowhere/capshim does not exist (yet)") {
		t.Errorf("no note about the missing binary:\n%s", out)
	}
}

// TestInstallKeepsFirstBackup: a second change (here --set-default) keeps
// the backup of the original file and says so.
func TestInstallKeepsFirstBackup(t *testing.T) {
	e := newInstallEnv(t, "config.toml", "config-debian-1.6.toml")
	orig := e.read(t, e.conf)
	if code, _, errOut := e.run(t, "containerd"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, out, errOut := e.run(t, "containerd", "--set-default")
	if code != 0 {
		t.Fatalf("second run: exit %d: %s", code, errOut)
	}
	want := "containerd: registered capshim in $TMP/etc/config.toml ($TMP/etc/config.toml.capshim-backup, the content before capshim first changed the file, is kept"
	if !strings.Contains(out, want) {
		t.Errorf("output does not say the first backup is kept:\n%s", out)
	}
	if backup := e.read(t, e.conf+".capshim-backup"); !bytes.Equal(backup, orig) {
		t.Errorf("the backup is not the original file:\n%s", backup)
	}
}

// TestInstallPolicyWiring: the policy install writes is the one the
// registered capshim reads. docker passes --policy to capshim when no
// --config is given; containerd and podman pass nothing, so a --policy or
// --config naming another file is refused before anything is written.
func TestInstallPolicyWiring(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		args    []string // after the engine's --file and --binary; $TMP is the temp dir
		code    int
		want    []string // in stdout (code 0) or stderr
		written string   // the policy written ("" none)
		entry   string   // docker: runtimes.capshim as JSON
	}{
		{name: "docker --policy is passed", conf: "daemon.json", args: []string{"docker", "--policy", "$TMP/web.toml"},
			want: []string{"policy: wrote capshim's default policy to $TMP/web.toml"}, written: "$TMP/web.toml",
			entry: `{"path":"$TMP/bin/capshim","runtimeArgs":["--capshim-config=$TMP/web.toml"]}`},
		{name: "docker --config and the same --policy", conf: "daemon.json", args: []string{"docker", "--config", "$TMP/web.toml", "--policy", "$TMP/web.toml"},
			written: "$TMP/web.toml", entry: `{"path":"$TMP/bin/capshim","runtimeArgs":["--capshim-config=$TMP/web.toml"]}`},
		{name: "docker --config writes the policy there", conf: "daemon.json", args: []string{"docker", "--config", "$TMP/web.toml"},
			written: "$TMP/web.toml", entry: `{"path":"$TMP/bin/capshim","runtimeArgs":["--capshim-config=$TMP/web.toml"]}`},
		{name: "docker --no-policy", conf: "daemon.json", args: []string{"docker", "--no-policy"},
			want: []string{"policy: none written (--no-policy); the registered capshim reads /etc/capshim/shim.toml"}, entry: `{"path":"$TMP/bin/capshim"}`},
		{name: "docker --config and another --policy", conf: "daemon.json", args: []string{"docker", "--config", "$TMP/web.toml", "--policy", "$TMP/other.toml"},
			code: 2, want: []string{"--config $TMP/web.toml is the policy docker will make capshim read, so --policy $TMP/other.toml would never be read"}},
		{name: "containerd --policy elsewhere", conf: "config.toml", args: []string{"containerd", "--policy", "$TMP/k8s.toml"},
			code: 2, want: []string{"--policy $TMP/k8s.toml: containerd passes no arguments or environment", "reads /etc/capshim/shim.toml, never this file; nothing was changed", "capshim policy install $TMP/k8s.toml --to /etc/capshim/shim.toml"}},
		{name: "containerd --config elsewhere", conf: "config.toml", args: []string{"containerd", "--config", "/etc/capshim/k8s.toml"},
			code: 2, want: []string{"--config /etc/capshim/k8s.toml: containerd passes no arguments"}},
		{name: "podman --policy elsewhere", conf: "containers.conf", args: []string{"podman", "--policy", "$TMP/p.toml"},
			code: 2, want: []string{"--policy $TMP/p.toml: podman passes no arguments", "podman --runtime capshim --runtime-flag capshim-config=$TMP/p.toml"}},
		{name: "podman --policy the default path", conf: "containers.conf", args: []string{"podman", "--policy", "/etc/capshim/shim.toml", "--dry-run"},
			want: []string{"policy: "}},
		{name: "podman capshim-web reads its own file", conf: "containers.conf", args: []string{"podman", "--binary", "$TMP/bin/capshim-web", "--policy", "/etc/capshim/capshim-web.toml", "--dry-run"},
			want: []string{"/etc/capshim/capshim-web.toml"}},
		{name: "podman capshim-web and the default path", conf: "containers.conf", args: []string{"podman", "--binary", "$TMP/bin/capshim-web", "--policy", "/etc/capshim/shim.toml", "--dry-run"},
			code: 2, want: []string{"reads /etc/capshim/capshim-web.toml, never this file"}},
		{name: "--no-policy and --policy", conf: "daemon.json", args: []string{"docker", "--no-policy", "--policy", "$TMP/web.toml"},
			code: 2, want: []string{"--no-policy writes no policy, --policy says where to write it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newInstallEnv(t, tt.conf, "")
			args := []string{"install", "--file", e.conf, "--binary", e.bin}
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "$TMP", e.dir))
			}
			code, out, errOut := runCmd(t, args...)
			out, errOut = strings.ReplaceAll(out, e.dir, "$TMP"), strings.ReplaceAll(errOut, e.dir, "$TMP")
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			got := out
			if tt.code != 0 {
				got = errOut
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, p := range []string{"web.toml", "other.toml", "k8s.toml", "p.toml", "etc/capshim/shim.toml"} {
				p = filepath.Join(e.dir, p)
				_, err := os.Lstat(p)
				if want := strings.ReplaceAll(tt.written, "$TMP", e.dir) == p; want != (err == nil) {
					t.Errorf("policy %s written: %v, want %v", p, err == nil, want)
				}
			}
			_, err := os.Lstat(e.conf)
			if tt.entry == "" {
				if err == nil && !slices.Contains(tt.args, "--dry-run") {
					t.Errorf("%s written although install refused or was a dry run", e.conf)
				}
				return
			}
			var daemon struct{ Runtimes map[string]json.RawMessage }
			if err := json.Unmarshal(e.read(t, e.conf), &daemon); err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, daemon.Runtimes["capshim"]); err != nil {
				t.Fatal(err)
			}
			if got := strings.ReplaceAll(compact.String(), e.dir, "$TMP"); got != tt.entry {
				t.Errorf("runtimes.capshim = %s, want %s", got, tt.entry)
			}
		})
	}
}
