package install

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/capshim/capshim/internal/golden"

	"github.com/BurntSushi/toml"
)

// input reads testdata/in/<name>; "" is a missing file.
func input(t *testing.T, name string) []byte {
	t.Helper()
	if name == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join("testdata", "in", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

const bin = "/usr/local/bin/capshim"

func TestInstallEditGolden(t *testing.T) {
	tests := []struct {
		name   string
		engine Engine
		in     string // testdata/in file; "" missing
		empty  bool   // an empty file instead
		opts   Options
		notes  []string // substrings, one per note expected
	}{
		{name: "docker-missing", engine: Docker},
		{name: "docker-empty", engine: Docker, empty: true},
		{name: "docker-existing", engine: Docker, in: "daemon.json", notes: []string{"re-indented"}},
		{name: "docker-existing-config-default", engine: Docker, in: "daemon.json",
			opts: Options{RuntimeConfig: "/etc/capshim/web.toml", SetDefault: true}, notes: []string{"re-indented"}},
		{name: "containerd-missing", engine: Containerd},
		{name: "containerd-empty", engine: Containerd, empty: true},
		{name: "containerd-v2", engine: Containerd, in: "config-v2.toml"},
		{name: "containerd-v2-default", engine: Containerd, in: "config-v2.toml", opts: Options{SetDefault: true}},
		{name: "containerd-v3", engine: Containerd, in: "config-v3.toml", opts: Options{SetDefault: true},
			notes: []string{"SystemdCgroup = true"}},
		{name: "containerd-dockerio", engine: Containerd, in: "config-dockerio.toml",
			notes: []string{"added version = 2", "WARNING: the CRI plugin is disabled"}},
		{name: "containerd-capshim-old", engine: Containerd, in: "config-capshim-old.toml",
			notes: []string{"comments inside the old value of pod_annotations"}},
		{name: "containerd-missing-default", engine: Containerd, opts: Options{SetDefault: true}},
		{name: "podman-missing", engine: Podman},
		{name: "podman-empty", engine: Podman, empty: true},
		{name: "podman-existing", engine: Podman, in: "containers.conf"},
		{name: "podman-existing-default", engine: Podman, in: "containers.conf", opts: Options{SetDefault: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := input(t, tt.in)
			if tt.empty {
				old = []byte{}
			}
			opts := tt.opts
			opts.Binary = bin
			got, notes, err := Edit(tt.engine, old, opts)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "golden/"+tt.name+".out", got)
			golden.Check(t, "golden/"+tt.name+".diff", []byte(Diff("old", "new", old, got)))
			if len(notes) != len(tt.notes) {
				t.Errorf("notes = %q, want %d matching %q", notes, len(tt.notes), tt.notes)
			}
			for i := range min(len(notes), len(tt.notes)) {
				if !strings.Contains(notes[i], tt.notes[i]) {
					t.Errorf("note %d = %q, want it to say %q", i, notes[i], tt.notes[i])
				}
			}
			// Idempotent: the result already says everything.
			again, notes2, err := Edit(tt.engine, got, opts)
			if err != nil {
				t.Fatalf("second edit: %v", err)
			}
			if !bytes.Equal(again, got) {
				t.Errorf("second edit changed the file:\n%s", Diff("first", "second", got, again))
			}
			for _, n := range notes2 {
				if strings.Contains(n, "not kept") || strings.Contains(n, "added version") {
					t.Errorf("second edit noted %q", n)
				}
			}
			checkRegistered(t, tt.engine, got, opts)
		})
	}
}

// checkRegistered decodes the result and checks capshim's entry.
func checkRegistered(t *testing.T, e Engine, data []byte, opts Options) {
	t.Helper()
	switch e {
	case Docker:
		var d struct {
			Runtimes map[string]struct {
				Path        string   `json:"path"`
				RuntimeArgs []string `json:"runtimeArgs"`
			} `json:"runtimes"`
			Default *string `json:"default-runtime"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatal(err)
		}
		c := d.Runtimes["capshim"]
		var args []string
		if opts.RuntimeConfig != "" {
			args = []string{"--capshim-config=" + opts.RuntimeConfig}
		}
		if c.Path != opts.Binary || !reflect.DeepEqual(c.RuntimeArgs, args) {
			t.Errorf("runtimes.capshim = %+v", c)
		}
		if opts.SetDefault != (d.Default != nil && *d.Default == "capshim") {
			t.Errorf("default-runtime = %v, SetDefault %v", d.Default, opts.SetDefault)
		}
	case Containerd:
		checkContainerd(t, data, opts)
	case Podman:
		var c struct {
			Engine struct {
				Runtime  string
				Runtimes map[string][]string
			}
		}
		if _, err := toml.Decode(string(data), &c); err != nil {
			t.Fatal(err)
		}
		if got := c.Engine.Runtimes["capshim"]; !reflect.DeepEqual(got, []string{opts.Binary}) {
			t.Errorf("engine.runtimes.capshim = %q", got)
		}
		if opts.SetDefault && c.Engine.Runtime != "capshim" {
			t.Errorf("engine.runtime = %q", c.Engine.Runtime)
		}
	}
}

// checkContainerd decodes config.toml with BurntSushi/toml and checks the
// capshim runtime entry is exactly what capshim means (the keys of a
// hand-edited entry beyond these may stay).
func checkContainerd(t *testing.T, data []byte, opts Options) {
	t.Helper()
	var c struct {
		Version int
		Plugins map[string]struct {
			Containerd struct {
				DefaultRuntimeName string `toml:"default_runtime_name"`
				Runtimes           map[string]struct {
					RuntimeType          string   `toml:"runtime_type"`
					PodAnnotations       []string `toml:"pod_annotations"`
					ContainerAnnotations []string `toml:"container_annotations"`
					Options              struct {
						BinaryName string
					} `toml:"options"`
				} `toml:"runtimes"`
			} `toml:"containerd"`
		}
	}
	if _, err := toml.Decode(string(data), &c); err != nil {
		t.Fatal(err)
	}
	plugin := criV2
	if c.Version == 3 {
		plugin = criV3
	}
	cri := c.Plugins[plugin].Containerd
	got := cri.Runtimes["capshim"]
	if got.RuntimeType != "io.containerd.runc.v2" ||
		!reflect.DeepEqual(got.PodAnnotations, []string{"capshim.io/*", "io.containers.capabilities"}) ||
		!reflect.DeepEqual(got.ContainerAnnotations, []string{"capshim.io/*"}) ||
		got.Options.BinaryName != opts.Binary {
		t.Errorf("%s runtimes.capshim = %+v", plugin, got)
	}
	if opts.SetDefault && cri.DefaultRuntimeName != "capshim" {
		t.Errorf("default_runtime_name = %q", cri.DefaultRuntimeName)
	}
}

func TestInstallEditDockerKeepsValues(t *testing.T) {
	old := input(t, "daemon.json")
	got, _, err := Edit(Docker, old, Options{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`18446744073709551615`, `"env=<prod>&more"`, `"zone=\u00e9"`, `"nvidia-container-runtime"`} {
		if !bytes.Contains(got, []byte(s)) {
			t.Errorf("result lost %s", s)
		}
	}
	// Same keys in the same order, runtimes where it was.
	keys := func(data []byte) []string {
		m, err := decodeObject(data, "x")
		if err != nil {
			t.Fatal(err)
		}
		var k []string
		for _, mm := range m {
			k = append(k, mm.key)
		}
		return k
	}
	if a, b := keys(old), keys(got); !reflect.DeepEqual(a, b) {
		t.Errorf("keys %q became %q", a, b)
	}
}

func TestInstallEditRefused(t *testing.T) {
	tests := []struct {
		name   string
		engine Engine
		in     string
		want   string
	}{
		{"docker syntax error", Docker, "{\n  \"a\": 1,\n  \"b\": \n}\n", "line 4: invalid character '}'"},
		{"docker not an object", Docker, `["runtimes"]`, "not a JSON object"},
		{"docker runtimes not an object", Docker, `{"runtimes": "runc"}`, `"runtimes" is not a JSON object`},
		{"docker duplicate key", Docker, `{"runtimes": {}, "runtimes": {}}`, "twice"},
		{"docker trailing data", Docker, `{} {}`, "invalid character"},
		{"containerd syntax error", Containerd, "version = 2\n[plugins\n", "line 2:"},
		{"containerd version 1", Containerd, string(input(t, "config-v1.toml")), "version = 1 config"},
		{"containerd no version with plugins", Containerd, string(input(t, "config-noversion-plugins.toml")), "version 1 config"},
		{"containerd unknown version", Containerd, "version = 7\n", "unknown config version 7"},
		{"containerd inline runtime", Containerd, "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nruntimes = { capshim = { runtime_type = \"x\" } }\n", "add the settings by hand"},
		{"podman syntax error", Podman, "[engine]\nruntime = crun\n", "line 2:"},
		{"podman runtimes not a table", Podman, "[engine]\nruntimes = 3\n", "by hand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Edit(tt.engine, []byte(tt.in), Options{Binary: bin})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestInstallEditRelativeBinary(t *testing.T) {
	if _, _, err := Edit(Docker, nil, Options{Binary: "capshim"}); err == nil {
		t.Error("a relative binary path was accepted")
	}
}

func TestInstallDiff(t *testing.T) {
	lines := func(n int, change map[int]string) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			if s, ok := change[i]; ok {
				b.WriteString(s)
				continue
			}
			b.WriteString("line " + string(rune('a'+i-1)) + "\n")
		}
		return b.String()
	}
	tests := []struct {
		name string
		a, b string
	}{
		{"equal", "a\n", "a\n"},
		{"from nothing", "", "a\nb\n"},
		{"to nothing", "a\nb\n", ""},
		{"two hunks", lines(20, nil), lines(20, map[int]string{2: "two\n", 18: ""})},
		{"merged hunk", lines(12, nil), lines(12, map[int]string{3: "three\n", 9: "nine\n"})},
		{"insert at end", "a\nb\n", "a\nb\nc\n"},
		{"no newline at end", "a\nb", "a\nc"},
	}
	var all bytes.Buffer
	for _, tt := range tests {
		d := Diff("a", "b", []byte(tt.a), []byte(tt.b))
		if tt.name == "equal" && d != "" {
			t.Errorf("equal inputs give %q", d)
		}
		all.WriteString("== " + tt.name + "\n" + d)
	}
	golden.Check(t, "golden/"+"diff.txt", all.Bytes())
}

// writeFile writes a file under a new temp dir.
func writeFile(t *testing.T, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInstallPlanApply(t *testing.T) {
	for _, e := range Engines {
		t.Run(string(e), func(t *testing.T) {
			old := map[Engine]string{Docker: "daemon.json", Containerd: "config-v2.toml", Podman: "containers.conf"}[e]
			p := writeFile(t, filepath.Base(e.ConfigPath()), input(t, old), 0o640)
			plan, err := Prepare(e, p, Options{Binary: bin})
			if err != nil {
				t.Fatal(err)
			}
			if !plan.Changed() || plan.Diff() == "" {
				t.Fatal("no change planned")
			}
			if err := plan.Apply(); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(p)
			if !bytes.Equal(got, plan.New) {
				t.Error("file does not hold the planned content")
			}
			backup, err := os.ReadFile(p + BackupSuffix)
			if err != nil || !bytes.Equal(backup, input(t, old)) {
				t.Errorf("backup: %v, same as the old file: %v", err, bytes.Equal(backup, input(t, old)))
			}
			for _, f := range []string{p, p + BackupSuffix} {
				if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o640 {
					t.Errorf("%s: mode %v (%v), want 0640 kept", f, st.Mode().Perm(), err)
				}
			}
			// Second run: nothing to change, no new backup.
			if err := os.Remove(p + BackupSuffix); err != nil {
				t.Fatal(err)
			}
			plan2, err := Prepare(e, p, Options{Binary: bin})
			if err != nil {
				t.Fatal(err)
			}
			if plan2.Changed() || plan2.Diff() != "" {
				t.Errorf("second run changes the file:\n%s", plan2.Diff())
			}
			if err := plan2.Apply(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(p + BackupSuffix); err == nil {
				t.Error("second run wrote a backup")
			}
			entries, _ := os.ReadDir(filepath.Dir(p))
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries, want only the config", len(entries))
			}
		})
	}
}

func TestInstallPlanNewFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "etc", "containerd", "config.toml")
	plan, err := Prepare(Containerd, p, Options{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Exists || !strings.HasPrefix(plan.Diff(), "--- /dev/null\n+++ "+p+"\n@@ -0,0 +1,") {
		t.Errorf("diff of a new file:\n%s", plan.Diff())
	}
	if err := plan.Apply(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("new file: %v %v", st, err)
	}
	if st, _ := os.Stat(filepath.Dir(p)); st.Mode().Perm() != 0o755 {
		t.Errorf("new directory mode %v", st.Mode().Perm())
	}
	if _, err := os.Stat(p + BackupSuffix); err == nil {
		t.Error("a backup of a missing file was written")
	}
}

func TestInstallPlanRefused(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.json")
	if err := os.WriteFile(real, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "daemon.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(Docker, link, Options{Binary: bin}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlink: err = %v", err)
	}
	bad := writeFile(t, "config.toml", []byte("version = 2\n[plugins\n"), 0o644)
	_, err := Prepare(Containerd, bad, Options{Binary: bin})
	if err == nil || !strings.Contains(err.Error(), bad+": line 2:") || !strings.Contains(err.Error(), "left as it is") {
		t.Errorf("unparsable: err = %v", err)
	}
	if data, _ := os.ReadFile(bad); string(data) != "version = 2\n[plugins\n" {
		t.Error("unparsable file changed")
	}
}

func TestInstallPlanChangedMeanwhile(t *testing.T) {
	p := writeFile(t, "daemon.json", []byte("{}\n"), 0o644)
	plan, err := Prepare(Docker, p, Options{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`{"debug": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := plan.Apply(); err == nil {
		t.Error("a file changed since Prepare was overwritten")
	}
}

func TestInstallWritePolicy(t *testing.T) {
	p := filepath.Join(t.TempDir(), "capshim", "shim.toml")
	written, err := WritePolicy(p, []byte("mode = \"enforce\"\n"))
	if err != nil || !written {
		t.Fatalf("written %v, err %v", written, err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
		t.Errorf("policy mode %v", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Dir(p)); st.Mode().Perm() != 0o755 {
		t.Errorf("policy dir mode %v", st.Mode().Perm())
	}
	written, err = WritePolicy(p, []byte("other\n"))
	if err != nil || written {
		t.Fatalf("second write: written %v, err %v", written, err)
	}
	if data, _ := os.ReadFile(p); string(data) != "mode = \"enforce\"\n" {
		t.Error("an existing policy was overwritten")
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("policy dir holds %d entries", len(entries))
	}
}

func TestInstallEditTOMLTricky(t *testing.T) {
	const cri = `[plugins."io.containerd.grpc.v1.cri".containerd]`
	tests := []struct {
		name   string
		engine Engine
		in     string
		opts   Options
	}{
		{"header inside a multi-line string", Containerd, "version = 2\nnote = \"\"\"\n" + cri + "\ndefault_runtime_name = \"x\"\n\"\"\"\nlit = '''\n[engine]\n'''\n", Options{SetDefault: true}},
		{"array of arrays over lines", Containerd, "version = 2\nx = [\n  [\"a\"],\n  [\"b\"]\n]\n" + cri + "\n  snapshotter = \"overlayfs\" # comment\n", Options{SetDefault: true}},
		{"inline table and dotted keys", Containerd, "version = 2\n" + cri + "\n  cfg = { a = 1, b = [1, 2] }\n  x.y = 'z'\n", Options{SetDefault: true}},
		{"crlf", Containerd, "version = 2\r\n" + cri + "\r\n  snapshotter = \"overlayfs\"\r\n", Options{SetDefault: true}},
		{"no newline at end", Podman, "[engine]\nruntime = \"crun\"", Options{SetDefault: true}},
		{"array of tables and dates", Podman, "[[x]]\nd = 1979-05-27 07:32:00Z\n[[x]]\nd = 1979-05-27T00:32:00.999999-07:00\n[engine]\n", Options{SetDefault: true}},
		{"quoted and spaced header", Podman, "[ engine . \"runtimes\" ]\ncrun = [\"/usr/bin/crun\"]\n", Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Binary = bin
			got, _, err := Edit(tt.engine, []byte(tt.in), opts)
			if err != nil {
				t.Fatal(err)
			}
			checkRegistered(t, tt.engine, got, opts)
			// Only changed lines: every old line is still there, in order
			// (a key line may be replaced by the new value).
			d := Diff("a", "b", []byte(tt.in), got)
			for _, l := range strings.Split(d, "\n") {
				if strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "---") &&
					!strings.Contains(l, "default_runtime_name") && !strings.Contains(l, "runtime =") {
					t.Errorf("line removed: %q\n%s", l, d)
				}
			}
			if strings.Contains(tt.in, "\r\n") && strings.Count(string(got), "\n") != strings.Count(string(got), "\r\n") {
				t.Errorf("mixed line endings:\n%q", got)
			}
			again, _, err := Edit(tt.engine, got, opts)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("second edit: %v\n%s", err, Diff("first", "second", got, again))
			}
		})
	}
}
