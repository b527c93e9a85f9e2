package install

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// roundTrips are the files install edits, each with the options of one
// install; uninstall must give each back.
var roundTrips = []struct {
	name   string
	engine Engine
	in     string // testdata/in file; "" missing
	opts   Options
	// bare is what uninstall gives without the backup, when that is not
	// the original byte for byte: "document" (daemon.json: the same
	// members and values, install's indentation) or the exact text.
	bare string
	// bareTail is what uninstall leaves at the end without the backup.
	bareTail string
}{
	{name: "docker", engine: Docker, in: "daemon.json", bare: "document"},
	{name: "docker config default", engine: Docker, in: "daemon.json",
		opts: Options{RuntimeConfig: "/etc/capshim/web.toml", SetDefault: true}, bare: "document"},
	{name: "docker missing", engine: Docker, bare: "{}\n"},
	{name: "containerd v2", engine: Containerd, in: "config-v2.toml"},
	{name: "containerd v2 default", engine: Containerd, in: "config-v2.toml", opts: Options{SetDefault: true}},
	{name: "containerd v3", engine: Containerd, in: "config-v3.toml"},
	{name: "containerd v3 minimal", engine: Containerd, in: "config-v3-minimal.toml"},
	{name: "containerd debian 1.6", engine: Containerd, in: "config-debian-1.6.toml"},
	// Without the backup, uninstall cannot know that install added
	// default_runtime_name: it writes containerd's default "runc" back.
	{name: "containerd debian 1.6 default", engine: Containerd, in: "config-debian-1.6.toml", opts: Options{SetDefault: true},
		bareTail: "\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\ndefault_runtime_name = \"runc\"\n"},
	{name: "containerd default 1.6", engine: Containerd, in: "config-default-1.6.toml"},
	{name: "containerd default 2.2", engine: Containerd, in: "config-default-2.2.toml", opts: Options{SetDefault: true}, bare: "QUOTES"},
	{name: "containerd v2 nvidia", engine: Containerd, in: "config-v2-nvidia.toml"},
	{name: "containerd v3 nvidia", engine: Containerd, in: "config-v3-nvidia.toml"},
	{name: "containerd v2 legacy default", engine: Containerd, in: "config-v2-legacy-default.toml"},
	// No version key: install adds version = 2, which only the backup
	// can take back.
	{name: "containerd dockerio", engine: Containerd, in: "config-dockerio.toml", bare: "VERSION"},
	// Without the backup, uninstall cannot know that 'runc' was quoted
	// so; it writes containerd's default "runc" back.
	{name: "containerd v3 default quotes", engine: Containerd, in: "config-v3.toml", opts: Options{SetDefault: true}, bare: "QUOTES"},
	{name: "containerd missing", engine: Containerd, bare: "version = 2\n"},
	{name: "podman", engine: Podman, in: "containers.conf"},
	{name: "podman default", engine: Podman, in: "containers.conf", opts: Options{SetDefault: true}},
	{name: "podman missing", engine: Podman, bare: ""},
}

// TestUninstallRoundTrip: install, then uninstall, gives the original
// file back byte for byte, with the backup install kept; without the
// backup (taking capshim out of the file as it is) the TOML files come
// back byte for byte too.
func TestUninstallRoundTrip(t *testing.T) {
	for _, tt := range roundTrips {
		t.Run(tt.name, func(t *testing.T) {
			orig := input(t, tt.in)
			opts := tt.opts
			opts.Binary = bin
			installed, _, err := Edit(tt.engine, orig, opts)
			if err != nil {
				t.Fatal(err)
			}
			if orig != nil {
				got, notes, err := Unedit(tt.engine, installed, orig)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, orig) {
					t.Errorf("with the backup:\n%s", Diff("original", "uninstalled", orig, got))
				}
				if len(notes) != 1 || !strings.Contains(notes[0], "the backup is put back as it is") {
					t.Errorf("notes %q", notes)
				}
			}

			got, _, err := Unedit(tt.engine, installed, nil)
			if err != nil {
				t.Fatal(err)
			}
			switch tt.bare {
			case "document":
				if !sameDocument(t, got, orig) {
					t.Errorf("without the backup, another document:\n%s", Diff("original", "uninstalled", orig, got))
				}
			case "VERSION":
				// What install makes of a file without a version key.
				m, err := parseTOML(orig)
				if err != nil {
					t.Fatal(err)
				}
				want, _, err := toVersion2(orig, m)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("without the backup:\n%s", Diff("original as version 2", "uninstalled", want, got))
				}
			case "QUOTES":
				want := bytes.Replace(orig, []byte("default_runtime_name = 'runc'"), []byte(`default_runtime_name = "runc"`), 1)
				if !bytes.Equal(got, want) {
					t.Errorf("without the backup:\n%s", Diff("original, runc in double quotes", "uninstalled", want, got))
				}
			default:
				want := append(bytes.Clone(orig), tt.bareTail...)
				if orig == nil {
					want = []byte(tt.bare)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("without the backup:\n%s", Diff("original", "uninstalled", want, got))
				}
			}

			// A second uninstall changes nothing.
			again, notes, err := Unedit(tt.engine, got, orig)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("second uninstall: %v\n%s", err, Diff("first", "second", got, again))
			}
			if len(notes) != 0 {
				t.Errorf("second uninstall notes %q", notes)
			}
		})
	}
}

// TestUninstallAfterTwoInstalls: install, then install --set-default (the
// backup is the file before the first), then uninstall.
func TestUninstallAfterTwoInstalls(t *testing.T) {
	for _, tt := range roundTrips {
		if tt.in == "" || tt.opts.SetDefault {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			orig := input(t, tt.in)
			plain := Options{Binary: bin}
			once, _, err := Edit(tt.engine, orig, plain)
			if err != nil {
				t.Fatal(err)
			}
			def := plain
			def.SetDefault = true
			twice, _, err := Edit(tt.engine, once, def)
			if err != nil {
				t.Skipf("install --set-default refuses this file: %v", err)
			}
			got, _, err := Unedit(tt.engine, twice, orig)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, orig) {
				t.Errorf("%s", Diff("original", "uninstalled", orig, got))
			}
		})
	}
}

// TestUninstallKeepsLaterChanges: a file changed by hand after install
// keeps the change; capshim's entries go, and nothing else.
func TestUninstallKeepsLaterChanges(t *testing.T) {
	tests := []struct {
		name   string
		engine Engine
		in     string
		opts   Options
		change func(string) string // the change by hand, on the installed text
		want   func(string) string // the same change on the original
	}{
		{name: "containerd comment on top", engine: Containerd, in: "config-v2.toml", opts: Options{SetDefault: true},
			change: func(s string) string { return "# edited by hand\n" + s },
			want:   func(s string) string { return "# edited by hand\n" + s }},
		{name: "podman key added", engine: Podman, in: "containers.conf", opts: Options{SetDefault: true},
			change: func(s string) string {
				return strings.Replace(s, "[engine]\n", "[engine]\nnetwork_cmd_path = \"/usr/bin/slirp4netns\"\n", 1)
			},
			want: func(s string) string {
				return strings.Replace(s, "[engine]\n", "[engine]\nnetwork_cmd_path = \"/usr/bin/slirp4netns\"\n", 1)
			}},
		{name: "debian: a runtime added after capshim keeps runc written out", engine: Containerd, in: "config-debian-1.6.toml",
			change: func(s string) string {
				return s + "\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun]\nruntime_type = \"io.containerd.runc.v2\"\n"
			},
			want: func(s string) string {
				return s + "\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n" +
					"\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun]\nruntime_type = \"io.containerd.runc.v2\"\n"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := input(t, tt.in)
			opts := tt.opts
			opts.Binary = bin
			installed, _, err := Edit(tt.engine, orig, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, backup := range [][]byte{orig, nil} {
				got, notes, err := Unedit(tt.engine, []byte(tt.change(string(installed))), backup)
				if err != nil {
					t.Fatal(err)
				}
				if want := tt.want(string(orig)); string(got) != want {
					t.Errorf("backup %v:\n%s", backup != nil, Diff("want", "got", []byte(want), got))
				}
				if backup != nil && (len(notes) == 0 || !strings.Contains(notes[0], "the file changed after capshim install")) {
					t.Errorf("notes %q", notes)
				}
			}
		})
	}
}

// TestUninstallDefaults: a default naming capshim gets the backup's value
// back, or goes; a default that no longer names capshim stays.
func TestUninstallDefaults(t *testing.T) {
	tests := []struct {
		name   string
		engine Engine
		cur    string
		backup string // "" none
		want   string
	}{
		{name: "docker default from the backup", engine: Docker,
			cur:    `{"default-runtime": "capshim", "runtimes": {"capshim": {"path": "/x"}, "crun": {"path": "/usr/bin/crun"}}, "debug": true}`,
			backup: `{"default-runtime": "crun", "runtimes": {"crun": {"path": "/usr/bin/crun"}}}`,
			want:   "{\n  \"default-runtime\": \"crun\",\n  \"runtimes\": {\n    \"crun\": {\n      \"path\": \"/usr/bin/crun\"\n    }\n  },\n  \"debug\": true\n}\n"},
		{name: "docker default removed", engine: Docker,
			cur:  `{"runtimes": {"capshim": {"path": "/x"}}, "default-runtime": "capshim"}`,
			want: "{}\n"},
		{name: "docker default changed by hand stays", engine: Docker,
			cur:  `{"runtimes": {"capshim": {"path": "/x"}, "crun": {}}, "default-runtime": "crun"}`,
			want: "{\n  \"runtimes\": {\n    \"crun\": {}\n  },\n  \"default-runtime\": \"crun\"\n}\n"},
		{name: "docker empty runtimes of the backup stays", engine: Docker,
			cur: `{"runtimes": {"capshim": {"path": "/x"}}, "debug": true}`, backup: `{"runtimes": {}}`,
			want: "{\n  \"runtimes\": {},\n  \"debug\": true\n}\n"},
		{name: "podman default from the backup, quoted as it was", engine: Podman,
			cur:    "[engine]\nruntime = \"capshim\"\nevents_logger = \"file\"\n\n[engine.runtimes]\ncapshim = [\"/x\"]\n",
			backup: "[engine]\nruntime = 'crun'\n",
			want:   "[engine]\nruntime = 'crun'\nevents_logger = \"file\"\n"},
		{name: "podman default removed", engine: Podman,
			cur:  "[engine]\nruntime = \"capshim\"\n\n[engine.runtimes]\ncapshim = [\"/x\"]\n",
			want: ""},
		{name: "containerd v3 default from the backup", engine: Containerd,
			cur:    "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\n  default_runtime_name = \"capshim\"\n  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.capshim]\n    runtime_type = \"io.containerd.runc.v2\"\n",
			backup: "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\n  default_runtime_name = 'runc'\n",
			want:   "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd]\n  default_runtime_name = 'runc'\n"},
		{name: "containerd dotted keys", engine: Containerd,
			cur:  "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"overlayfs\"\n  runtimes.capshim.runtime_type = \"io.containerd.runc.v2\"\n  runtimes.capshim.options.BinaryName = \"/x\"\n",
			want: "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"overlayfs\"\n"},
		{name: "nothing to take out", engine: Podman, cur: "[engine]\nruntime = \"crun\"\n", want: "[engine]\nruntime = \"crun\"\n"},
		{name: "crlf", engine: Podman,
			cur:  "[engine]\r\nevents_logger = \"file\"\r\n\r\n[engine.runtimes]\r\ncapshim = [\"/x\"]\r\n",
			want: "[engine]\r\nevents_logger = \"file\"\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var backup []byte
			if tt.backup != "" {
				backup = []byte(tt.backup)
			}
			got, _, err := Unedit(tt.engine, []byte(tt.cur), backup)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestUninstallRefused: what uninstall cannot take out as text, or would
// break, is refused, naming what to do.
func TestUninstallRefused(t *testing.T) {
	tests := []struct {
		name   string
		engine Engine
		cur    string
		want   string
	}{
		{name: "inline table", engine: Containerd,
			cur:  "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  runtimes = { capshim = { runtime_type = \"io.containerd.runc.v2\" }, runc = { runtime_type = \"io.containerd.runc.v2\" } }\n",
			want: "in a form capshim does not edit"},
		{name: "default still capshim through an inline table", engine: Podman,
			cur:  "engine = { runtime = \"capshim\" }\n",
			want: "in a form capshim does not edit"},
		{name: "daemon.json does not parse", engine: Docker, cur: "{\n  \"debug\": true,\n}\n", want: "line 3"},
		{name: "config does not parse", engine: Containerd, cur: "version = 2\n[plugins\n", want: "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Unedit(tt.engine, []byte(tt.cur), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// sameDocument reports whether two daemon.json texts hold the same
// members, in the same order, with the same values.
func sameDocument(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y bytes.Buffer
	if len(bytes.TrimSpace(b)) == 0 {
		b = []byte("{}")
	}
	if err := json.Compact(&x, a); err != nil {
		t.Fatal(err)
	}
	if err := json.Compact(&y, b); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(x.Bytes(), y.Bytes()) {
		return true
	}
	var u, v any
	json.Unmarshal(a, &u)
	json.Unmarshal(b, &v)
	t.Logf("compact:\n%s\n%s\ndecoded equal: %v", x.Bytes(), y.Bytes(), reflect.DeepEqual(u, v))
	return false
}

// TestUninstallOldCapshim: a backup that registers capshim itself (an
// earlier capshim wrote it) is not put back as it is: capshim goes from
// it too, and with it the runc written out for it.
func TestUninstallOldCapshim(t *testing.T) {
	orig := input(t, "config-capshim-old.toml")
	installed, _, err := Edit(Containerd, orig, Options{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	for _, backup := range [][]byte{orig, nil} {
		got, notes, err := Unedit(Containerd, installed, backup)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "version = 2\n" {
			t.Errorf("backup %v: got\n%s", backup != nil, got)
		}
		if backup != nil && (len(notes) != 1 || !strings.Contains(notes[0], "the backup registers capshim too")) {
			t.Errorf("notes %q", notes)
		}
	}
}

// TestUninstallPlan: the plan writes the file without capshim, keeps the
// content it replaces as FILE.capshim-previous, leaves install's backup
// as it is, and keeps the file's mode.
func TestUninstallPlan(t *testing.T) {
	for _, tt := range roundTrips {
		if tt.in == "" {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			orig := input(t, tt.in)
			path := filepath.Join(t.TempDir(), "config")
			put(t, path, string(orig), 0o640)
			opts := tt.opts
			opts.Binary = bin
			p, err := Prepare(tt.engine, path, opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Apply(); err != nil {
				t.Fatal(err)
			}
			installed, _ := os.ReadFile(path)

			u, err := PrepareUninstall(tt.engine, path)
			if err != nil {
				t.Fatal(err)
			}
			if !u.Changed() || !u.HasBackup {
				t.Fatalf("uninstall changes nothing (backup %v)", u.HasBackup)
			}
			if err := u.Apply(); err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string][]byte{path: orig, path + BackupSuffix: orig, path + PreviousSuffix: installed} {
				if got, err := os.ReadFile(name); err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %v\n%s", filepath.Base(name), err, Diff("want", "got", want, got))
				}
			}
			if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o640 {
				t.Errorf("mode %v (%v), want 0640", st.Mode().Perm(), err)
			}

			// Once more: nothing to change.
			u, err = PrepareUninstall(tt.engine, path)
			if err != nil || u.Changed() {
				t.Errorf("second uninstall: changed %v, %v", u != nil && u.Changed(), err)
			}
		})
	}
}

// TestUninstallPlanMissing: no file, nothing to uninstall.
func TestUninstallPlanMissing(t *testing.T) {
	p, err := PrepareUninstall(Docker, filepath.Join(t.TempDir(), "daemon.json"))
	if err != nil || p.Changed() || p.Exists {
		t.Fatalf("plan %+v, %v", p, err)
	}
	if err := p.Apply(); err != nil {
		t.Fatal(err)
	}
}

// TestUninstallPlanChangedMeanwhile: a file changed between the plan and
// its application is left alone.
func TestUninstallPlanChangedMeanwhile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "containers.conf")
	put(t, path, "[engine.runtimes]\ncapshim = [\"/x\"]\n", 0o644)
	p, err := PrepareUninstall(Podman, path)
	if err != nil {
		t.Fatal(err)
	}
	put(t, path, "[engine]\n", 0o644)
	if err := p.Apply(); err == nil || !strings.Contains(err.Error(), "run capshim uninstall again") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Lstat(path + PreviousSuffix); err == nil {
		t.Error("a copy was written")
	}
}
