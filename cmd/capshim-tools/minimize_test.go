package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/capshim/capshim/capability"
)

// writeBundle makes a bundle directory with config.json and a rootfs.
func writeBundle(t *testing.T, config string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runConfig is the part of a run's config.json the tests look at.
type runConfig struct {
	Hostname string `json:"hostname"`
	Process  struct {
		Terminal     bool              `json:"terminal"`
		Args         []string          `json:"args"`
		Env          []string          `json:"env"`
		User         map[string]any    `json:"user"`
		Capabilities map[string]any    `json:"capabilities"`
		Rlimits      []json.RawMessage `json:"rlimits"`
	} `json:"process"`
	Root struct {
		Path     string `json:"path"`
		Readonly bool   `json:"readonly"`
	} `json:"root"`
	Annotations map[string]string `json:"annotations"`
}

func TestTrialConfig(t *testing.T) {
	const docker = `"bounding":["CAP_CHOWN","CAP_KILL","CAP_SETUID"],"effective":["CAP_CHOWN","CAP_KILL","CAP_SETUID"],"permitted":["CAP_CHOWN","CAP_KILL","CAP_SETUID"]`
	tests := []struct {
		name string
		caps string // process.capabilities of the bundle
		try  []string
		// want maps each set to what the run must have in it; a set
		// missing from want must be missing from the run's config.
		want map[string][]string
	}{
		{
			name: "bounding, effective and permitted are the candidate",
			caps: `{` + docker + `}`, try: []string{"CAP_CHOWN"},
			want: map[string][]string{"bounding": {"CAP_CHOWN"}, "effective": {"CAP_CHOWN"}, "permitted": {"CAP_CHOWN"}},
		},
		{
			// The learned set is what the workload used; the bundle may
			// hold less.
			name: "a candidate beyond the bundle's sets",
			caps: `{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}`, try: []string{"CAP_CHOWN", "CAP_SETGID"},
			want: map[string][]string{"bounding": {"CAP_CHOWN", "CAP_SETGID"}, "effective": {"CAP_CHOWN", "CAP_SETGID"}, "permitted": {"CAP_CHOWN", "CAP_SETGID"}},
		},
		{
			name: "the empty set",
			caps: `{` + docker + `}`, try: nil,
			want: map[string][]string{"bounding": {}, "effective": {}, "permitted": {}},
		},
		{
			name: "inheritable and ambient where the bundle has them",
			caps: `{` + docker + `,"inheritable":["CAP_NET_BIND_SERVICE","CAP_CHOWN"],"ambient":["CAP_NET_BIND_SERVICE"]}`,
			try:  []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SETUID"},
			want: map[string][]string{
				"bounding": {"CAP_CHOWN", "CAP_SETUID", "CAP_NET_BIND_SERVICE"}, "effective": {"CAP_CHOWN", "CAP_SETUID", "CAP_NET_BIND_SERVICE"},
				"permitted": {"CAP_CHOWN", "CAP_SETUID", "CAP_NET_BIND_SERVICE"}, "inheritable": {"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}, "ambient": {"CAP_NET_BIND_SERVICE"},
			},
		},
		{
			name: "inheritable and ambient lose what the candidate drops",
			caps: `{` + docker + `,"inheritable":["CAP_NET_BIND_SERVICE"],"ambient":["CAP_NET_BIND_SERVICE"]}`,
			try:  []string{"CAP_CHOWN"},
			want: map[string][]string{"bounding": {"CAP_CHOWN"}, "effective": {"CAP_CHOWN"}, "permitted": {"CAP_CHOWN"}, "inheritable": {}, "ambient": {}},
		},
		{
			// Ambient needs inheritable too: without it the kernel would
			// refuse the raise and the runtime the container.
			name: "ambient without inheritable",
			caps: `{` + docker + `,"ambient":["CAP_CHOWN"]}`,
			try:  []string{"CAP_CHOWN"},
			want: map[string][]string{"bounding": {"CAP_CHOWN"}, "effective": {"CAP_CHOWN"}, "permitted": {"CAP_CHOWN"}, "ambient": {}},
		},
		{
			name: "no capabilities object",
			caps: `null`, try: []string{"CAP_KILL"},
			want: map[string][]string{"bounding": {"CAP_KILL"}, "effective": {"CAP_KILL"}, "permitted": {"CAP_KILL"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeBundle(t, `{"ociVersion":"1.0.2","hostname":"h","process":{"terminal":true,"user":{"uid":33,"gid":33},"args":["/entry","x"],"env":["PATH=/bin"],
				"rlimits":[{"type":"RLIMIT_NOFILE","hard":18446744073709551615,"soft":1024}],"capabilities":`+tt.caps+`},
				"root":{"path":"rootfs","readonly":true},"annotations":{"a":"b"},"linux":{"namespaces":[{"type":"pid"}]}}`)
			b, err := loadTrialBundle(dir)
			if err != nil {
				t.Fatal(err)
			}
			if b.rootfs != filepath.Join(dir, "rootfs") || !slices.Equal(b.args, []string{"/entry", "x"}) {
				t.Fatalf("bundle read as rootfs %s, args %q", b.rootfs, b.args)
			}
			set, _ := capability.ParseList(tt.try)
			data, err := b.config(set, "/run/x/rootfs")
			if err != nil {
				t.Fatal(err)
			}
			var got runConfig
			if err := json.Unmarshal(data, &got); err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			for _, s := range []string{"bounding", "effective", "permitted", "inheritable", "ambient"} {
				want, wantOK := tt.want[s]
				v, ok := got.Process.Capabilities[s]
				if ok != wantOK {
					t.Errorf("%s present %v, want %v\n%s", s, ok, wantOK, data)
					continue
				}
				if !ok {
					continue
				}
				var names []string
				for _, n := range v.([]any) {
					names = append(names, n.(string))
				}
				if !slices.Equal(names, want) && !(len(names) == 0 && len(want) == 0) {
					t.Errorf("%s = %q, want %q", s, names, want)
				}
			}
			// The rest is the bundle's, but the terminal (capshim reads
			// the output) and the root, which is the run's.
			if got.Process.Terminal || got.Root.Path != "/run/x/rootfs" || !got.Root.Readonly {
				t.Errorf("terminal %v, root %+v", got.Process.Terminal, got.Root)
			}
			if got.Hostname != "h" || got.Annotations["a"] != "b" || !slices.Equal(got.Process.Env, []string{"PATH=/bin"}) || got.Process.User["uid"] != float64(33) {
				t.Errorf("the bundle's other settings changed:\n%s", data)
			}
			if len(got.Process.Rlimits) != 1 || !strings.Contains(string(got.Process.Rlimits[0]), "18446744073709551615") {
				t.Errorf("rlimits not kept as they were: %s", got.Process.Rlimits)
			}
		})
	}
}

func TestLoadTrialBundleErrors(t *testing.T) {
	tests := []struct {
		name   string
		config string // "" writes no config.json
		want   string
	}{
		{name: "no config.json", want: "no such file"},
		{name: "not JSON", config: `{`, want: "bundle config"},
		{name: "no process", config: `{"root":{"path":"rootfs"}}`, want: "no process object"},
		{name: "no root", config: `{"process":{"args":["x"]}}`, want: "no root object"},
		{name: "root not a directory", config: `{"process":{"args":["x"]},"root":{"path":"nope"}}`, want: "is not a directory"},
		{name: "bad capabilities", config: `{"process":{"args":["x"],"capabilities":{"ambient":"CAP_CHOWN"}},"root":{"path":"rootfs"}}`, want: "process.capabilities"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeBundle(t, tt.config)
			if tt.config == "" {
				os.Remove(filepath.Join(dir, "config.json"))
			}
			_, err := loadTrialBundle(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
}
