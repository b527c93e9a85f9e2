package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/capshim/capshim/internal/decisionlog"
)

// TestReportGeneratedLog: a log written by many appends, rotated into
// several files, is read whole: every container of every group counts
// once, with what was dropped from it and granted to it.
func TestReportGeneratedLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	// 3 groups × 100 containers, rotated at 32 KB: four files, all of
	// them within the Keep the report reads.
	l := &decisionlog.Log{Path: path, MaxSize: 32 << 10}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 300; i++ {
		name := []string{"web", "db", "cache"}[i%3]
		entry := map[string]any{
			"kind": "decision", "command": "create", "container": fmt.Sprintf("%s-%03d", name, i),
			"engine": "containerd-cri", "name": name, "namespace": "shop", "pod": fmt.Sprintf("%s-%d", name, i), "image": "img/" + name + ":1",
			"mode": "enforce", "dropped": map[string][]string{"bounding": {"CAP_CHOWN", "CAP_NET_RAW"}, "effective": {"CAP_CHOWN"}},
			"granted": []string{}, "rules": nil, "time": start.Add(time.Duration(i) * time.Minute).Format(time.RFC3339Nano),
		}
		if name == "web" {
			entry["granted"], entry["rules"] = []string{"CAP_SETUID"}, []string{"web"}
		}
		data, _ := json.Marshal(entry)
		if err := l.Append(append(data, '\n')); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := runCmd(t, "report", "--log", path, "--state-dir", filepath.Join(dir, "state"), "--run-dir", filepath.Join(dir, "run"), "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep reportOut
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Files < 3 || rep.Files > decisionlog.Keep+1 || rep.Entries != 300 || rep.Skipped != 0 {
		t.Fatalf("read %d files, %d entries (%d skipped); want 3 to %d files and all 300 entries", rep.Files, rep.Entries, rep.Skipped, decisionlog.Keep+1)
	}
	if len(rep.Groups) != 3 {
		t.Fatalf("%d groups, want 3", len(rep.Groups))
	}
	for _, g := range rep.Groups {
		if g.Containers != 100 || g.Dropped["CAP_CHOWN"] != 100 || g.Dropped["CAP_NET_RAW"] != 100 || len(g.Recent) != reportIDs {
			t.Errorf("group %s: %d containers, dropped %v, %d ids; want 100, 100 each, %d", g.Name, g.Containers, g.Dropped, len(g.Recent), reportIDs)
		}
		want := 0
		if g.Name == "web" {
			want = 100
		}
		if g.Granted["CAP_SETUID by web"] != want {
			t.Errorf("group %s: granted %v, want CAP_SETUID by web %d times", g.Name, g.Granted, want)
		}
	}
	// --since: the last 30 minutes of starts, 10 per group.
	code, out, errOut = runCmd(t, "report", "--log", path, "--state-dir", filepath.Join(dir, "state"), "--run-dir", filepath.Join(dir, "run"),
		"--format", "json", "--since", start.Add(270*time.Minute).Format(time.RFC3339))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rep = reportOut{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 30 || len(rep.Groups) != 3 || rep.Groups[0].Containers != 10 {
		t.Errorf("--since: %d entries, %d groups; want 30 entries, 10 containers in each of 3 groups", rep.Entries, len(rep.Groups))
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Time
		wantErr  bool
	}{
		{name: "empty", in: ""},
		{name: "hours", in: "24h", want: now.Add(-24 * time.Hour)},
		{name: "minutes", in: "90m", want: now.Add(-90 * time.Minute)},
		{name: "days", in: "7d", want: now.AddDate(0, 0, -7)},
		{name: "date", in: "2026-12-01", want: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{name: "time", in: "2026-12-01T10:30:00Z", want: time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC)},
		{name: "negative duration", in: "-1h", wantErr: true},
		{name: "a word", in: "yesterday", wantErr: true},
		{name: "days beyond reason", in: "99999999999d", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSince(tt.in, now)
			if (err != nil) != tt.wantErr || !got.Equal(tt.want) {
				t.Errorf("parseSince(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
