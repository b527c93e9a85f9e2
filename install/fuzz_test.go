package install

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzEditTOML feeds arbitrary text to the containerd and podman edits.
// They must not panic; an edit that succeeds must give a file that parses,
// that a second edit leaves as it is, and that means what the old file
// meant apart from the keys capshim sets.
func FuzzEditTOML(f *testing.F) {
	ins, err := filepath.Glob(filepath.Join("testdata", "in", "*.toml"))
	if err != nil {
		f.Fatal(err)
	}
	ins = append(ins, filepath.Join("testdata", "in", "containers.conf"))
	for _, in := range ins {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, false)
	}
	f.Add([]byte("[engine]\nruntimes.crun = [\"/x\"] # c\n"), true)
	f.Add([]byte("engine.runtime = 'crun'\r\n[engine.runtimes]\r\ncapshim = [\r\n  '/old', # c\r\n]"), true)
	f.Add([]byte("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  default_runtime_name = \"runc\" # x\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, setDefault bool) {
		opts := Options{Binary: bin, SetDefault: setDefault}
		for _, e := range []Engine{Containerd, Podman} {
			out, _, err := Edit(e, data, opts)
			if err != nil {
				if err.Error() == "" {
					t.Fatal("empty error")
				}
				continue
			}
			got, err := parseTOML(out)
			if err != nil {
				t.Fatalf("%s: the result does not parse: %v\n%q", e, err, out)
			}
			again, _, err := Edit(e, out, opts)
			if err != nil || !bytes.Equal(again, out) {
				t.Fatalf("%s: second edit: %v\n%s", e, err, Diff("first", "second", out, again))
			}
			want, err := parseTOML(data)
			if err != nil {
				t.Fatalf("%s: an unparsable file was edited: %v", e, err)
			}
			// What capshim may set; everything else must decode as before.
			set := [][]string{{"engine", "runtime"}, {"engine", "runtimes", "capshim"}}
			if e == Containerd {
				set = [][]string{{"version"}, {"disabled_plugins"}, {"required_plugins"}}
				for _, p := range []string{criV2, criV3} {
					c := []string{"plugins", p, "containerd"}
					set = append(set, append(c, "default_runtime_name"), append(c, "runtimes", "capshim"))
					if lookup(want, append(c, "runtimes", builtinRuntime)...) == nil {
						set = append(set, append(c, "runtimes", builtinRuntime))
					}
				}
			}
			for _, p := range set {
				drop(want, p)
				drop(got, p)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: the edit changed more than capshim's keys:\n%s", e, Diff("old", "new", data, out))
			}
		}
	})
}

// drop deletes the key at path, and the tables that held only it.
func drop(m map[string]any, path []string) {
	sub, ok := m[path[0]].(map[string]any)
	switch {
	case len(path) == 1:
		delete(m, path[0])
	case ok:
		drop(sub, path[1:])
		if len(sub) == 0 {
			delete(m, path[0])
		}
	}
}

// FuzzUneditTOML installs capshim into arbitrary text, then takes it out
// again. With the backup, a file that did not mention capshim comes back
// byte for byte; without it, the result must parse, register no capshim,
// and mean what the old file meant apart from the keys capshim sets.
func FuzzUneditTOML(f *testing.F) {
	ins, err := filepath.Glob(filepath.Join("testdata", "in", "*.toml"))
	if err != nil {
		f.Fatal(err)
	}
	ins = append(ins, filepath.Join("testdata", "in", "containers.conf"))
	for _, in := range ins {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, false)
		f.Add(data, true)
	}
	f.Add([]byte("[engine]\nruntimes.crun = [\"/x\"] # c\n"), true)
	f.Add([]byte("a = 1"), true)
	f.Add([]byte("a = 1\r\n\r\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, setDefault bool) {
		opts := Options{Binary: bin, SetDefault: setDefault}
		for _, e := range []Engine{Containerd, Podman} {
			out, _, err := Edit(e, data, opts)
			if err != nil {
				continue
			}
			back, _, err := Unedit(e, out, data)
			switch {
			case err != nil && err.Error() == "":
				t.Fatal("empty error")
			case err == nil && !bytes.Contains(data, []byte("capshim")) && !bytes.Equal(back, data):
				t.Fatalf("%s: with the backup:\n%s", e, Diff("old", "uninstalled", data, back))
			}
			bare, _, err := Unedit(e, out, nil)
			if err != nil {
				if err.Error() == "" {
					t.Fatal("empty error")
				}
				continue
			}
			got, err := parseTOML(bare)
			if err != nil {
				t.Fatalf("%s: the result does not parse: %v\n%q", e, err, bare)
			}
			want, _ := parseTOML(data)
			set := [][]string{{"engine", "runtime"}, {"engine", "runtimes", "capshim"}}
			if e == Containerd {
				set = [][]string{{"version"}, {"disabled_plugins"}, {"required_plugins"}}
				for _, p := range []string{criV2, criV3} {
					c := []string{"plugins", p, "containerd"}
					set = append(set, append(c, "default_runtime_name"), append(c, "runtimes", "capshim"))
					if lookup(want, append(c, "runtimes", builtinRuntime)...) == nil {
						set = append(set, append(c, "runtimes", builtinRuntime))
					}
				}
			}
			for _, p := range set {
				if v := lookup(got, p...); (p[len(p)-1] == "capshim" || p[len(p)-1] == "runtime" || p[len(p)-1] == "default_runtime_name") && v == "capshim" || p[len(p)-1] == "capshim" && v != nil {
					t.Fatalf("%s: capshim is still there at %s:\n%s", e, formatKey(p), bare)
				}
				drop(want, p)
				drop(got, p)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: uninstall without the backup changed more than capshim's keys:\n%s", e, Diff("old", "uninstalled", data, bare))
			}
		}
	})
}
