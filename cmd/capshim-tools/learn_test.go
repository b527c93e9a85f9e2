package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/capshim/capshim/learn"
)

func TestLearnCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := &learn.Store{Dir: dir}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if _, err := s.Merge("web", "c1", learn.Observation{Used: map[string]uint64{"CAP_CHOWN": 4}, Complete: true},
		map[string]string{"io.kubernetes.cri.image-name": "docker.io/library/nginx"}, at); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{name: "list", args: []string{"learn", "list", "--state-dir", dir}, want: []string{"NAME", "web", "CAP_CHOWN"}},
		{name: "show toml", args: []string{"learn", "show", "web", "--state-dir", dir},
			want: []string{`keep = ["CAP_CHOWN"]`, `"io.kubernetes.cri.image-name" = "docker.io/library/nginx"`, "# used: CAP_CHOWN (4)"}},
		{name: "show json", args: []string{"learn", "show", "--format", "json", "--state-dir", dir, "web"}, want: []string{`"CAP_CHOWN": 4`}},
		{name: "show missing", args: []string{"learn", "show", "nope", "--state-dir", dir}, code: 1},
		{name: "show bad name", args: []string{"learn", "show", "../x", "--state-dir", dir}, code: 2},
		{name: "show bad format", args: []string{"learn", "show", "--format", "yaml", "--state-dir", dir, "web"}, code: 2},
		{name: "show no name", args: []string{"learn", "show", "--state-dir", dir}, code: 2},
		{name: "forget", args: []string{"learn", "forget", "web", "--state-dir", dir}, want: []string{"forgot profile web"}},
		{name: "forget again", args: []string{"learn", "forget", "web", "--state-dir", dir}, code: 1},
		{name: "list empty", args: []string{"learn", "list", "--state-dir", dir}, want: []string{"no learned profiles"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
