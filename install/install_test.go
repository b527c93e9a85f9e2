package install

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	toml2 "github.com/pelletier/go-toml/v2"

	"github.com/capshim/capshim/internal/golden"
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
			notes: []string{"the runtime runc sets SystemdCgroup = true"}},
		{name: "containerd-dockerio", engine: Containerd, in: "config-dockerio.toml",
			notes: []string{"added version = 2", "WARNING: the CRI plugin is disabled"}},
		{name: "containerd-capshim-old", engine: Containerd, in: "config-capshim-old.toml",
			notes: []string{"comments inside the old value of pod_annotations", `with the old file, containerd 1.6/1.7 would not load the CRI plugin: default_runtime_name = "runc" names no runtime`}},
		// Debian's containerd 1.6 package: no runtimes table, so runc is
		// containerd's built-in one and must be written out.
		{name: "containerd-debian-1.6", engine: Containerd, in: "config-debian-1.6.toml"},
		{name: "containerd-debian-1.6-default", engine: Containerd, in: "config-debian-1.6.toml", opts: Options{SetDefault: true}},
		// containerd config default (1.6): runc is there; not written twice.
		{name: "containerd-default-1.6", engine: Containerd, in: "config-default-1.6.toml"},
		// containerd config default (2.2, version 3), which imports conf.d.
		{name: "containerd-default-2.2", engine: Containerd, in: "config-default-2.2.toml", notes: []string{"the file imports"}},
		// Version 3 without runtimes: containerd 2.x keeps its runc.
		{name: "containerd-v3-minimal", engine: Containerd, in: "config-v3-minimal.toml"},
		// Another runtime is the default and the only one listed.
		{name: "containerd-v2-nvidia", engine: Containerd, in: "config-v2-nvidia.toml", notes: []string{"the runtime nvidia sets SystemdCgroup = true"}},
		{name: "containerd-v3-nvidia", engine: Containerd, in: "config-v3-nvidia.toml", notes: []string{"the runtime nvidia sets SystemdCgroup = true"}},
		// The deprecated default_runtime table adds the runtime "default".
		{name: "containerd-v2-legacy-default", engine: Containerd, in: "config-v2-legacy-default.toml"},
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
		// Podman reads containers.conf with BurntSushi/toml: the result
		// is checked with the decoder that will read it.
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

// checkContainerd decodes config.toml with go-toml/v2, as containerd 2.x
// does, and checks the capshim runtime entry is exactly what capshim means (the keys of a
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
	if err := toml2.Unmarshal(data, &c); err != nil {
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
		opts   Options
	}{
		{"docker syntax error", Docker, "{\n  \"a\": 1,\n  \"b\": \n}\n", "line 4: invalid character '}'", Options{}},
		{"docker not an object", Docker, `["runtimes"]`, "not a JSON object", Options{}},
		{"docker runtimes not an object", Docker, `{"runtimes": "runc"}`, `"runtimes" is not a JSON object`, Options{}},
		{"docker duplicate key", Docker, `{"runtimes": {}, "runtimes": {}}`, "twice", Options{}},
		{"docker trailing data", Docker, `{} {}`, "invalid character", Options{}},
		{"containerd syntax error", Containerd, "version = 2\n[plugins\n", "line 2:", Options{}},
		{"containerd version 1", Containerd, string(input(t, "config-v1.toml")), "version = 1 config", Options{}},
		{"containerd no version with plugins", Containerd, string(input(t, "config-noversion-plugins.toml")), "version 1 config", Options{}},
		{"containerd unknown version", Containerd, "version = 7\n", "unknown config version 7", Options{}},
		{"containerd inline runtime", Containerd, "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\nruntimes = { capshim = { runtime_type = \"x\" } }\n", "add the settings by hand", Options{}},
		{name: "containerd set default over default_runtime", engine: Containerd, in: string(input(t, "config-v2-legacy-default.toml")), opts: Options{SetDefault: true},
			want: `containerd 1.6/1.7 would keep the runtime "default" as its default: the file sets the deprecated table default_runtime`},
		{name: "containerd set default over systemd_cgroup", engine: Containerd, in: string(input(t, "config-v2-runtime-v1.toml")), opts: Options{SetDefault: true},
			want: `capshim's change would break the file: containerd 1.6/1.7 would not load the CRI plugin: systemd_cgroup = true works only when the default runtime has runtime_type io.containerd.runtime.v1.linux, and "capshim" has "io.containerd.runc.v2"`},
		{name: "containerd no version, unknown plugin id", engine: Containerd, in: "disabled_plugins = [\"cri\", \"frobnicate\"]\n",
			want: `disabled_plugins holds "frobnicate", a version 1 plugin name capshim does not know the full name of`},
		{name: "containerd no version, disabled_plugins not a list", engine: Containerd, in: "disabled_plugins = \"cri\"\n", want: "disabled_plugins is not a list"},
		{"podman syntax error", Podman, "[engine]\nruntime = crun\n", "line 2:", Options{}},
		{"podman runtimes not a table", Podman, "[engine]\nruntimes = 3\n", "by hand", Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Binary = bin
			_, _, err := Edit(tt.engine, []byte(tt.in), opts)
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
	if _, err := Prepare(Docker, link, Options{Binary: bin}); err == nil || !strings.Contains(err.Error(), "symbolic link") || strings.Contains(err.Error(), "spec") {
		t.Errorf("symlink: err = %v, want it to say symbolic link and nothing of specs", err)
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

// TestInstallWriteErrorsNameTheFile: a failed write names the kind of
// file it was writing. A name so long that no temporary file can be made
// next to it makes the write fail; the file itself still fits.
func TestInstallWriteErrorsNameTheFile(t *testing.T) {
	tests := []struct {
		name   string
		engine Engine
		exists bool
		want   string
	}{
		{name: "new daemon.json", engine: Docker, want: "next to daemon.json "},
		{name: "new containerd config", engine: Containerd, want: "next to containerd config "},
		{name: "new containers.conf", engine: Podman, want: "next to containers.conf "},
		{name: "daemon.json backup", engine: Docker, exists: true, want: "next to daemon.json backup "},
		{name: "containerd config backup", engine: Containerd, exists: true, want: "next to containerd config backup "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// 240 leaves room for the backup's suffix, not for a temporary
			// name beside the backup; 250 leaves none beside the file.
			n, entries := 250, 0
			if tt.exists {
				n, entries = 240, 1
			}
			dir := t.TempDir()
			p := filepath.Join(dir, strings.Repeat("c", n))
			if tt.exists {
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			plan, err := Prepare(tt.engine, p, Options{Binary: bin})
			if err != nil {
				t.Fatal(err)
			}
			err = plan.Apply()
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(strings.ReplaceAll(err.Error(), dir, ""), "spec") {
				t.Errorf("err = %v, want it to say %q", err, tt.want)
			}
			if got, _ := os.ReadDir(dir); len(got) != entries {
				t.Errorf("directory holds %d entries after a failed write, want %d", len(got), entries)
			}
		})
	}
	_, err := WritePolicy(filepath.Join(t.TempDir(), strings.Repeat("p", 250)), []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "next to policy ") {
		t.Errorf("policy: err = %v, want it to name the policy", err)
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

// TestInstallEditTOMLBytes pins down edits byte for byte: only the value
// replaced or the line inserted changes, whatever the layout around it.
func TestInstallEditTOMLBytes(t *testing.T) {
	const rt = `capshim = ["/usr/local/bin/capshim"]`
	tests := []struct {
		name       string
		in         string
		setDefault bool
		want       string
		note       string // part of the one note expected; "" none
	}{
		{name: "spacing around = and a comment kept", setDefault: true,
			in:   "[engine]\nruntime   =   \"crun\"  # the default\n",
			want: "[engine]\nruntime   =   \"capshim\"  # the default\n\n[engine.runtimes]\n" + rt + "\n"},
		{name: "literal key kept", setDefault: true,
			in:   "[engine]\n'runtime' = 'crun'\n[engine.runtimes]\n",
			want: "[engine]\n'runtime' = \"capshim\"\n[engine.runtimes]\n" + rt + "\n"},
		{name: "indentation of the last key",
			in:   "\t[engine.runtimes]\n\t\tcrun = [\"/usr/bin/crun\"] # crun\n\n# next\n[other]\n",
			want: "\t[engine.runtimes]\n\t\tcrun = [\"/usr/bin/crun\"] # crun\n\t\t" + rt + "\n\n# next\n[other]\n"},
		{name: "a header with a comment and no keys",
			in:   "[engine.runtimes] # ours\n",
			want: "[engine.runtimes] # ours\n" + rt + "\n"},
		{name: "multi-line value with a comment",
			in:   "[engine.runtimes]\ncapshim = [\n  \"/old\", # a comment\n]\n",
			want: "[engine.runtimes]\n" + rt + "\n", note: "comments inside the old value of capshim (lines 2-4) are not kept"},
		{name: "a # inside a string is no comment",
			in:   "[engine.runtimes]\ncapshim = [\n  \"/old#x\",\n]\n",
			want: "[engine.runtimes]\n" + rt + "\n"},
		{name: "dotted keys define the table",
			in:   "[engine]\nruntimes.crun = [\"/x\"] # crun\nnetwork_cmd_path = \"/x\"\n",
			want: "[engine]\nruntimes.crun = [\"/x\"] # crun\nruntimes." + rt + "\nnetwork_cmd_path = \"/x\"\n"},
		{name: "a dotted key at the root", setDefault: true,
			in:   "engine.runtime = \"crun\"\n",
			want: "engine.runtime = \"capshim\"\n\n[engine.runtimes]\n" + rt + "\n"},
		{name: "last line without a newline, crlf",
			in:   "[engine.runtimes]\r\ncrun = [\"/x\"]",
			want: "[engine.runtimes]\r\ncrun = [\"/x\"]\r\n" + rt + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{Binary: bin, SetDefault: tt.setDefault}
			got, notes, err := Edit(Podman, []byte(tt.in), opts)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			if tt.note == "" && len(notes) > 0 || tt.note != "" && (len(notes) != 1 || !strings.Contains(notes[0], tt.note)) {
				t.Errorf("notes = %q, want %q", notes, tt.note)
			}
			checkRegistered(t, Podman, got, opts)
		})
	}
}

// TestInstallContainerdRuntimes checks, for real configs, what each
// containerd line reads from the edited file: every runtime the node had,
// runc among them wherever containerd had it, plus capshim, the default
// kept (or capshim with SetDefault), and a file it accepts. A second edit
// changes nothing (TestInstallEditGolden).
func TestInstallContainerdRuntimes(t *testing.T) {
	tests := []struct {
		name    string
		in      string // testdata/in file; "" missing
		opts    Options
		version int64
		// runtimes and default per reader; a missing reader does not
		// read the version.
		want map[ctdReader]string // "default: runtime runtime ..."
	}{
		{name: "debian stock", in: "config-debian-1.6.toml", version: 2,
			want: map[ctdReader]string{ctd1: "runc: capshim runc", ctd2: "runc: capshim runc"}},
		{name: "debian stock, set default", in: "config-debian-1.6.toml", version: 2, opts: Options{SetDefault: true},
			want: map[ctdReader]string{ctd1: "capshim: capshim runc", ctd2: "capshim: capshim runc"}},
		{name: "missing file", version: 2,
			want: map[ctdReader]string{ctd1: "runc: capshim runc", ctd2: "runc: capshim runc"}},
		{name: "containerd config default 1.6", in: "config-default-1.6.toml", version: 2,
			want: map[ctdReader]string{ctd1: "runc: capshim runc", ctd2: "runc: capshim runc"}},
		{name: "explicit runc", in: "config-v2.toml", version: 2,
			want: map[ctdReader]string{ctd1: "runc: capshim runc", ctd2: "runc: capshim runc"}},
		{name: "another default, no runc", in: "config-v2-nvidia.toml", version: 2,
			want: map[ctdReader]string{ctd1: "nvidia: capshim nvidia", ctd2: "nvidia: capshim nvidia runc"}},
		{name: "deprecated default_runtime", in: "config-v2-legacy-default.toml", version: 2,
			want: map[ctdReader]string{ctd1: "default: capshim default runc", ctd2: "runc: capshim runc"}},
		{name: "no version, CRI disabled", in: "config-dockerio.toml", version: 2,
			want: map[ctdReader]string{ctd1: "runc: capshim runc", ctd2: "runc: capshim runc"}},
		{name: "an older capshim hid runc", in: "config-capshim-old.toml", version: 2,
			want: map[ctdReader]string{ctd1: "runc: capshim runc", ctd2: "runc: capshim runc"}},
		{name: "version 3 without runtimes", in: "config-v3-minimal.toml", version: 3,
			want: map[ctdReader]string{ctd2: "runc: capshim runc"}},
		{name: "version 3, another default", in: "config-v3-nvidia.toml", version: 3,
			want: map[ctdReader]string{ctd2: "nvidia: capshim nvidia runc"}},
		{name: "version 3, set default", in: "config-v3.toml", version: 3, opts: Options{SetDefault: true},
			want: map[ctdReader]string{ctd2: "capshim: capshim runc"}},
		{name: "runc on the runtime v1 shim", in: "config-v2-runtime-v1.toml", version: 2,
			want: map[ctdReader]string{ctd1: "runc: capshim runc", ctd2: "runc: capshim runc"}},
		{name: "containerd config default 2.2", in: "config-default-2.2.toml", version: 3,
			want: map[ctdReader]string{ctd2: "runc: capshim runc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Binary = bin
			got, _, err := Edit(Containerd, input(t, tt.in), opts)
			if err != nil {
				t.Fatal(err)
			}
			m, err := parseTOML(got)
			if err != nil {
				t.Fatal(err)
			}
			readers := readersOf(tt.version)
			if len(readers) != len(tt.want) {
				t.Fatalf("version %d is read by %v", tt.version, readers)
			}
			for _, r := range readers {
				v := readCRI(m, tt.version, r)
				if v.err != nil {
					t.Errorf("%s %v", r, v.err)
				}
				if s := viewString(v); s != tt.want[r] {
					t.Errorf("%s reads %q, want %q", r, s, tt.want[r])
				}
			}
			// runc is written at most once (a second table would not parse;
			// a second capshim run must not add one either).
			for _, p := range []string{criV2, criV3} {
				h := "[" + formatKey([]string{"plugins", p, "containerd", "runtimes", "runc"}) + "]"
				if n := strings.Count(string(got), h); n > 1 {
					t.Errorf("%s written %d times", h, n)
				}
			}
		})
	}
}

// viewString writes a view as "default: runtime runtime ...".
func viewString(v criView) string {
	var names []string
	for n := range v.runtimes {
		names = append(names, n)
	}
	sort.Strings(names)
	return v.defaultName + ": " + strings.Join(names, " ")
}

// TestInstallReadCRI pins down the model of how containerd reads the CRI
// runtimes (integration/ctdinstall_test.go holds it against a real
// containerd 1.6).
func TestInstallReadCRI(t *testing.T) {
	const c2 = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n"
	const c3 = "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\n"
	tests := []struct {
		name     string
		in       string
		reader   ctdReader
		want     string // viewString; "" when the file does not decode into runtimes
		err      string // part of the error; "" none
		disabled string
	}{
		{name: "built-in runc", in: "version = 2\n", reader: ctd1, want: "runc: runc"},
		{name: "built-in runc, 2.x", in: "version = 2\n", reader: ctd2, want: "runc: runc"},
		{name: "a runtimes table hides runc", in: c2 + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.capshim]\n",
			reader: ctd1, want: "runc: capshim", err: `would not load the CRI plugin: default_runtime_name = "runc" names no runtime`},
		{name: "2.x keeps runc beside a runtimes table", in: c2 + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.capshim]\n",
			reader: ctd2, want: "runc: capshim runc"},
		{name: "an empty runtimes table", in: c2 + "runtimes = {}\n", reader: ctd1, want: "runc: ", err: "names no runtime"},
		{name: "an empty default name", in: c2 + "default_runtime_name = \"\"\n", reader: ctd2, want: ": runc", err: "default_runtime_name is empty"},
		{name: "another default", in: c2 + "default_runtime_name = \"kata\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.kata]\nruntime_type = \"io.containerd.kata.v2\"\n",
			reader: ctd1, want: "kata: kata"},
		{name: "a default that is not there", in: c2 + "default_runtime_name = \"kata\"\n", reader: ctd2, want: "kata: runc", err: `default_runtime_name = "kata" names no runtime`},
		{name: "deprecated default_runtime", in: c2 + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.default_runtime]\nruntime_type = \"io.containerd.runc.v2\"\n",
			reader: ctd1, want: "default: default runc"},
		{name: "deprecated default_runtime without a type", in: c2 + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.default_runtime]\nruntime_type = \"\"\n",
			reader: ctd1, want: "runc: runc"},
		{name: "2.x ignores default_runtime", in: c2 + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.default_runtime]\nruntime_type = \"io.containerd.runc.v2\"\n",
			reader: ctd2, want: "runc: runc"},
		{name: "deprecated untrusted_workload_runtime", in: c2 + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.untrusted_workload_runtime]\nruntime_type = \"io.containerd.kata.v2\"\n",
			reader: ctd1, want: "runc: runc untrusted"},
		{name: "untrusted twice", in: c2 + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.untrusted_workload_runtime]\nruntime_type = \"io.containerd.kata.v2\"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.untrusted]\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n",
			reader: ctd1, err: "both untrusted_workload_runtime and runtimes.untrusted"},
		{name: "runtimes not a table", in: c2 + "runtimes = 3\n", reader: ctd1, err: "runtimes is not a table"},
		{name: "a runtime not a table", in: c2 + "runtimes = { runc = 3 }\n", reader: ctd2, err: "containerd.runtimes.runc: runc is not a table"},
		{name: "CRI disabled", in: "version = 2\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n", reader: ctd1, want: "runc: runc", disabled: criV2},
		{name: "CRI disabled by its id", in: "version = 2\ndisabled_plugins = [\"cri\"]\n", reader: ctd1, want: "runc: runc", err: `would not start: disabled_plugins holds "cri"`},
		{name: "CRI disabled by its id, 2.x", in: "version = 2\ndisabled_plugins = [\"cri\"]\n", reader: ctd2, want: "runc: runc", err: `would not start: disabled_plugins holds "cri"`},
		{name: "a plugin section by id", in: "version = 2\n[plugins.cri]\n", reader: ctd1, want: "runc: runc", err: `would not start: the plugin section "cri"`},
		{name: "required plugin by id", in: "version = 2\nrequired_plugins = [\"cri\"]\n", reader: ctd1, want: "runc: runc", err: `required_plugins holds "cri"`},
		{name: "systemd_cgroup with a runtime v1 default", in: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nsystemd_cgroup = true\n" + strings.TrimPrefix(c2, "version = 2\n") + "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\nruntime_type = \"io.containerd.runtime.v1.linux\"\n",
			reader: ctd1, want: "runc: runc"},
		{name: "systemd_cgroup with the built-in runc", in: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nsystemd_cgroup = true\n",
			reader: ctd1, want: "runc: runc", err: `systemd_cgroup = true works only when the default runtime has runtime_type io.containerd.runtime.v1.linux, and "runc" has "io.containerd.runc.v2"`},
		{name: "no_pivot with a runtime without a type", in: c2 + "no_pivot = true\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n",
			reader: ctd1, want: "runc: runc", err: `no_pivot = true works only`},
		{name: "2.x ignores systemd_cgroup", in: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nsystemd_cgroup = true\n",
			reader: ctd2, want: "runc: runc"},
		{name: "version 3 keeps runc", in: c3 + "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.capshim]\n", reader: ctd2, want: "runc: capshim runc"},
		{name: "version 3, CRI disabled", in: "version = 3\ndisabled_plugins = ['io.containerd.cri.v1.runtime']\n", reader: ctd2, want: "runc: runc", disabled: criV3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseTOML([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			version, _ := m["version"].(int64)
			v := readCRI(m, version, tt.reader)
			got := ""
			if v.runtimes != nil {
				got = viewString(v)
			}
			if got != tt.want {
				t.Errorf("reads %q, want %q", got, tt.want)
			}
			if (v.err == nil) != (tt.err == "") || v.err != nil && !strings.Contains(v.err.Error(), tt.err) {
				t.Errorf("err = %v, want it to say %q", v.err, tt.err)
			}
			if v.disabled != tt.disabled {
				t.Errorf("disabled = %q, want %q", v.disabled, tt.disabled)
			}
		})
	}
}

// TestInstallEditContainerdWarns: a file containerd refuses already is
// edited (capshim's change cannot make it worse) with a warning that says
// why containerd refuses it.
func TestInstallEditContainerdWarns(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"plugin id in a version 2 file", "version = 2\ndisabled_plugins = [\"cri\"]\n",
			`WARNING: with this file, containerd 1.6/1.7 and containerd 2.x would not start: disabled_plugins holds "cri"`},
		{"default runtime not defined", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\ndefault_runtime_name = \"crun\"\n",
			`WARNING: with this file, containerd 1.6/1.7 and containerd 2.x would not load the CRI plugin: default_runtime_name = "crun" names no runtime`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, notes, err := Edit(Containerd, []byte(tt.in), Options{Binary: bin})
			if err != nil {
				t.Fatal(err)
			}
			if len(notes) != 1 || !strings.HasPrefix(notes[0], tt.want) {
				t.Errorf("notes = %q, want one starting %q", notes, tt.want)
			}
			checkContainerd(t, got, Options{Binary: bin})
		})
	}
}

// TestInstallPlanKeepsFirstBackup: the backup is the file as it was before
// capshim first changed it; later changes (another flag, another binary)
// keep it.
func TestInstallPlanKeepsFirstBackup(t *testing.T) {
	orig := input(t, "config-debian-1.6.toml")
	p := writeFile(t, "config.toml", orig, 0o640)
	runs := []Options{{Binary: bin}, {Binary: bin, SetDefault: true}, {Binary: "/opt/capshim/capshim", SetDefault: true}}
	for i, opts := range runs {
		plan, err := Prepare(Containerd, p, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !plan.Changed() {
			t.Fatalf("run %d changes nothing", i)
		}
		if err := plan.Apply(); err != nil {
			t.Fatal(err)
		}
		if plan.BackupKept != (i > 0) {
			t.Errorf("run %d: BackupKept = %v", i, plan.BackupKept)
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, plan.New) {
			t.Errorf("run %d: the file does not hold the planned content", i)
		}
		backup, err := os.ReadFile(p + BackupSuffix)
		if err != nil || !bytes.Equal(backup, orig) {
			t.Errorf("run %d: backup (%v) is not the original file:\n%s", i, err, backup)
		}
		if st, err := os.Stat(p + BackupSuffix); err != nil || st.Mode().Perm() != 0o640 {
			t.Errorf("run %d: backup mode %v (%v), want 0640", i, st.Mode().Perm(), err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries, want the config and its backup", len(entries))
	}
}

// TestInstallPlanBackupNotAFile: capshim writes no backup through a link
// or into a directory at the backup's path, and then changes nothing.
func TestInstallPlanBackupNotAFile(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, path string)
	}{
		{name: "symbolic link", make: func(t *testing.T, path string) {
			target := filepath.Join(filepath.Dir(path), "elsewhere")
			if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "dangling symbolic link", make: func(t *testing.T, path string) {
			if err := os.Symlink(filepath.Join(filepath.Dir(path), "nowhere"), path); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "directory", make: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := input(t, "config-debian-1.6.toml")
			p := writeFile(t, "config.toml", orig, 0o644)
			tt.make(t, p+BackupSuffix)
			plan, err := Prepare(Containerd, p, Options{Binary: bin})
			if err != nil {
				t.Fatal(err)
			}
			err = plan.Apply()
			if err == nil || !strings.Contains(err.Error(), "is not a regular file") {
				t.Errorf("err = %v, want it to say the backup is not a regular file", err)
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, orig) {
				t.Error("the config changed")
			}
			if b, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "elsewhere")); len(b) > 0 && string(b) != "x" {
				t.Error("written through the link")
			}
			if _, err := os.Lstat(filepath.Join(filepath.Dir(p), "nowhere")); err == nil {
				t.Error("the dangling link's target was created")
			}
		})
	}
}
