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

func TestExplainCommand(t *testing.T) {
	base := t.TempDir()
	run, state := filepath.Join(base, "run"), filepath.Join(base, "state")
	r := &learn.Records{Run: run, Store: &learn.Store{Dir: state}}
	created := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	c := &learn.Container{
		ID: "245f721b3f05", Root: "/run/runc", Mode: "enforce", Policy: "/etc/capshim/shim.toml",
		Engine:     map[string]string{"io.kubernetes.cri.container-name": "web\x1b[2J"},
		EngineSets: map[string][]string{"bounding": {"CAP_CHOWN", "CAP_KILL"}},
		Sets:       map[string][]string{"bounding": {"CAP_KILL"}},
		Dropped:    []string{"CAP_CHOWN"}, Trace: true, Created: created,
	}
	if err := r.Save(c); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "explain", "--run-dir", run, "--state-dir", state, "245f")
	if code != 0 || !strings.Contains(out, "recorded until the container is deleted") || strings.Contains(out, "\x1b") {
		t.Fatalf("running: exit %d\n%s%s", code, out, errOut)
	}
	c.Deleted = created.Add(time.Minute)
	c.Observed = &learn.Observation{Refused: map[string]uint64{"CAP_CHOWN": 2}, Used: map[string]uint64{"CAP_KILL": 1}, Complete: true}
	if err := r.Finish(c); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd(t, "explain", "--run-dir", run, "--state-dir", state, "web\x1b[2J")
	for _, want := range []string{"deleted 2026-12-01T10:01:00Z", "refused CAP_CHOWN (2 checks), which the policy dropped", `capabilities = ["CAP_CHOWN"]`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("deleted: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	if code, _, _ := runCmd(t, "explain", "--run-dir", run, "--state-dir", state, "nope"); code != 1 {
		t.Fatalf("unknown container: exit %d", code)
	}
}
