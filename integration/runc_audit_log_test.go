//go:build integration

package integration

// Audit mode changes no byte of the bundle, gives the container what the
// engine gave, and logs what it would drop, in the runtime log and the
// decision log; in enforce mode the decision log gets a line for every
// container too.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// droppedByDefault are the Docker defaults that the default policy target
// (AUDIT_WRITE, KILL, NET_BIND_SERVICE) does not keep.
var droppedByDefault = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_SYS_CHROOT",
}

func TestRuncAuditMode(t *testing.T) {
	requireRunc(t)
	decisions := filepath.Join(t.TempDir(), "decisions.jsonl")
	policy := writePolicy(t, strings.Replace(runcPolicy, `mode = "enforce"`, `mode = "audit"`, 1)+
		fmt.Sprintf("log = %q\n", decisions))
	for _, inhAmb := range []bool{false, true} {
		t.Run(fmt.Sprintf("inheritable-ambient=%v", inhAmb), func(t *testing.T) {
			b := newBundle(t, bundleSpec{inhAmb: inhAmb})
			before := readFile(t, filepath.Join(b, "config.json"))
			res, _, id := runBundle(t, b, policy)
			if res.code != 0 {
				t.Fatalf("container failed:\n%s", res)
			}
			if after := readFile(t, filepath.Join(b, "config.json")); !bytes.Equal(before, after) {
				t.Errorf("audit mode changed config.json")
			}
			// Audit changes nothing: the container has what the engine gave.
			if inhAmb {
				assertAllSets(t, res.stdout, maskDocker)
			} else {
				assertCaps(t, res.stdout, maskDocker)
			}
			// The decision log names the container and what would be dropped.
			var line string
			for _, l := range logLines(t, decisions) {
				if strings.Contains(l.raw, id) {
					if l.obj == nil {
						t.Errorf("decision log line is not JSON: %s", l.raw)
					}
					line = l.raw
				}
			}
			if line == "" {
				t.Fatalf("decision log %s has no line naming %s:\n%s\n%s", decisions, id, readFile(t, decisions), res)
			}
			runcCheckDropped(t, line)
			if t.Failed() {
				t.Logf("details:\n%s", res)
			}
		})
	}
}

// runcCheckDropped checks a JSON decision line names every capability the
// default policy drops from Docker's 14: in its "dropped" field when it has
// one, else anywhere in the line.
func runcCheckDropped(t *testing.T, line string) {
	t.Helper()
	where := line
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(line), &m) == nil && m["dropped"] != nil {
		where = string(m["dropped"])
	}
	for _, c := range droppedByDefault {
		if !strings.Contains(where, c) {
			t.Errorf("decision line does not name dropped %s: %s", c, line)
		}
	}
}

// TestRuncDecisionLog: in enforce mode the policy's log file gets a JSON
// line for the container too.
func TestRuncDecisionLog(t *testing.T) {
	requireRunc(t)
	decisions := filepath.Join(t.TempDir(), "decisions.jsonl")
	policy := writePolicy(t, runcPolicy+fmt.Sprintf("log = %q\n", decisions))
	b := newBundle(t, bundleSpec{})
	root, id := runcRoot(t), containerID(t)
	runcCleanup(t, root, id)
	res := runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(globalArgs(root, filepath.Join(b, "log.json")), "run", "--bundle", b, id)...)
	if res.code != 0 {
		t.Fatalf("container failed:\n%s", res)
	}
	assertCaps(t, res.stdout, maskMinimal)
	found := false
	for _, l := range logLines(t, decisions) {
		if l.obj != nil && strings.Contains(l.raw, id) {
			found = true
			runcCheckDropped(t, l.raw)
		}
	}
	if !found {
		t.Errorf("decision log has no JSON line naming %s:\n%s", id, readFile(t, decisions))
	}
	if t.Failed() {
		t.Logf("details:\n%s", res)
	}
}

func TestHardAudit(t *testing.T) {
	requireRunc(t)
	for _, tc := range []struct {
		name   string
		inhAmb bool
		cmd    string
	}{
		{name: "run", cmd: "run"},
		{name: "run inheritable and ambient", cmd: "run", inhAmb: true},
		{name: "create", cmd: "create"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			side := t.TempDir()
			decisions := filepath.Join(side, "decisions.jsonl")
			policy := writePolicy(t, strings.Replace(runcPolicy, `mode = "enforce"`, `mode = "audit"`, 1)+fmt.Sprintf("log = %q\n", decisions))
			b := newBundle(t, bundleSpec{inhAmb: tc.inhAmb})
			root, id := runcRoot(t), containerID(t)
			runcCleanup(t, root, id)
			cfg := filepath.Join(b, "config.json")
			old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
			if err := os.Chtimes(cfg, old, old); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, cfg)
			listBefore := listing(t, b)
			log := filepath.Join(side, "log.json")
			args := append(globalArgs(root, log), tc.cmd, "--bundle", b)
			if tc.cmd == "create" {
				args = append(args, "--pid-file", filepath.Join(side, "init.pid"))
			}
			res := runCmd(cmdOpts{env: shimEnv(policy)}, capshimBin, append(args, id)...)
			defer func() {
				if t.Failed() {
					dl, _ := os.ReadFile(decisions)
					t.Logf("details:\n%s\n--- decision log ---\n%s", res, dl)
				}
			}()
			if res.code != 0 {
				t.Fatalf("capshim %s failed", tc.cmd)
			}
			after := snapshot(t, cfg)
			if !bytes.Equal(before.data, after.data) {
				t.Errorf("audit mode changed config.json:\nbefore: %s\nafter:  %s", before.data, after.data)
			}
			if !after.mtime.Equal(before.mtime) || after.ino != before.ino || after.mode != before.mode {
				t.Errorf("audit mode touched config.json: mtime %v ino %d mode %v -> mtime %v ino %d mode %v",
					before.mtime, before.ino, before.mode, after.mtime, after.ino, after.mode)
			}
			if d := diffListing(listBefore, listing(t, b)); d != "" {
				t.Errorf("audit mode changed the bundle:\n%s", d)
			}
			// The container got what the engine gave.
			if tc.cmd == "run" {
				if tc.inhAmb {
					assertAllSets(t, res.stdout, maskDocker)
				} else {
					assertCaps(t, res.stdout, maskDocker)
				}
			} else {
				pid := strings.TrimSpace(string(readFile(t, filepath.Join(side, "init.pid"))))
				assertCaps(t, string(readFile(t, "/proc/"+pid+"/status")), maskDocker)
			}
			// --log: an info line saying what would be dropped.
			var info string
			for _, m := range logMsgs(t, log, "info") {
				if strings.HasPrefix(m, "capshim:") && strings.Contains(m, id) {
					info = m
				}
			}
			switch {
			case info == "":
				t.Errorf("--log has no capshim info line for %s", id)
			case !strings.Contains(info, "would drop"):
				t.Errorf("info line does not say \"would drop\": %q", info)
			default:
				for _, c := range droppedByDefault {
					if !strings.Contains(info, c) {
						t.Errorf("info line does not name %s: %q", c, info)
					}
				}
			}
			// Decision log: a JSON line with the dropped sets.
			var line map[string]any
			for _, l := range logLines(t, decisions) {
				if l.obj != nil && l.obj["container"] == id {
					line = l.obj
				}
			}
			if line == nil {
				t.Fatalf("decision log has no JSON line with container %q", id)
			}
			if line["mode"] != "audit" {
				t.Errorf("decision line mode = %v, want audit", line["mode"])
			}
			dropped, _ := line["dropped"].(map[string]any)
			sets := []string{"bounding", "effective", "permitted"}
			if tc.inhAmb {
				sets = append(sets, "inheritable", "ambient")
			}
			for _, s := range sets {
				list, _ := dropped[s].([]any)
				got := map[string]bool{}
				for _, v := range list {
					got[fmt.Sprint(v)] = true
				}
				for _, c := range droppedByDefault {
					if !got[c] {
						t.Errorf("decision line dropped.%s lacks %s: %v", s, c, dropped[s])
					}
				}
				if len(list) != len(droppedByDefault) {
					t.Errorf("decision line dropped.%s has %d names, want %d: %v", s, len(list), len(droppedByDefault), list)
				}
			}
			if !tc.inhAmb {
				for _, s := range []string{"inheritable", "ambient"} {
					if _, ok := dropped[s]; ok {
						t.Errorf("decision line drops from %s, which was empty: %v", s, dropped[s])
					}
				}
			}
		})
	}
}
