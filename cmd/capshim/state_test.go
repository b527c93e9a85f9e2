package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/spec"
)

func TestReadContainerState(t *testing.T) {
	bundle := t.TempDir()
	writeBundle := func(annotations string) {
		t.Helper()
		doc := `{"ociVersion":"1.0.2","process":{},"annotations":` + annotations + `}`
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		file    string // state.json (runc) or config.json (crun)
		data    string
		bundle  string // the bundle's annotations, "" for no config.json
		want    map[string]string
		bnd     capability.Set
		wantErr string
	}{
		{
			name: "runc plain labels",
			file: "state.json",
			data: `{"config":{"labels":["bundle=` + bundle + `","a=1","b=x"],"capabilities":{"Bounding":["CAP_KILL","CAP_CHOWN","kill"]}}}`,
			want: map[string]string{"a": "1", "b": "x"},
			bnd:  1<<5 | 1<<0,
		},
		{
			name: "runc no capabilities",
			file: "state.json",
			data: `{"config":{"labels":["bundle=` + bundle + `"]}}`,
			want: map[string]string{},
		},
		{
			name:   "runc key with = read from the bundle",
			file:   "state.json",
			data:   `{"config":{"labels":["bundle=` + bundle + `","team=web=1"]}}`,
			bundle: `{"team=web":"1"}`,
			want:   map[string]string{"team=web": "1"},
		},
		{
			name:    "runc key with = and a bundle that disagrees",
			file:    "state.json",
			data:    `{"config":{"labels":["bundle=` + bundle + `","team=web=1"]}}`,
			bundle:  `{"team":"web=1","x":"y"}`,
			wantErr: "not those runc recorded",
		},
		{
			name:    "runc key with = and no bundle config",
			file:    "state.json",
			data:    `{"config":{"labels":["bundle=` + bundle + `","team=web=1"]}}`,
			wantErr: "cannot be read",
		},
		{
			name:    "runc state not JSON",
			file:    "state.json",
			data:    `{`,
			wantErr: "state.json",
		},
		{
			name: "crun config copy",
			file: "config.json",
			data: `{"process":{"capabilities":{"bounding":["CAP_KILL"]}},"annotations":{"a=b":"c"}}`,
			want: map[string]string{"a=b": "c"},
			bnd:  1 << 5,
		},
		{
			name:    "crun config copy with a NUL key",
			file:    "config.json",
			data:    `{"process\u0000":{},"process":{}}`,
			wantErr: "NUL",
		},
		{
			name:    "no state",
			wantErr: "is it running",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.Mkdir(filepath.Join(root, "c1"), 0o700); err != nil {
				t.Fatal(err)
			}
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(root, "c1", tt.file), []byte(tt.data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			os.Remove(filepath.Join(bundle, "config.json"))
			if tt.bundle != "" {
				writeBundle(tt.bundle)
			}
			st, err := readContainerState("/usr/bin/runc", root, "c1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(st.annotations) != len(tt.want) {
				t.Fatalf("annotations = %q, want %q", st.annotations, tt.want)
			}
			for k, v := range tt.want {
				if st.annotations[k] != v {
					t.Fatalf("annotations = %q, want %q", st.annotations, tt.want)
				}
			}
			if st.sets[spec.Bounding] != tt.bnd {
				t.Fatalf("bounding = %v, want %v", st.sets[spec.Bounding], tt.bnd)
			}
		})
	}
	if _, err := readContainerState("/usr/bin/runc", t.TempDir(), "../x"); err == nil {
		t.Fatal("an id with a slash was accepted")
	}
}
