package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/capshim/capshim/internal/golden"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/proc"
)

// inspectTable splits text output of capshim inspect into the table's
// lines (header first) and the rest.
func inspectTable(t *testing.T, out string) (table, rest []string) {
	t.Helper()
	head, tail, _ := strings.Cut(out, "\n\n")
	return strings.Split(head, "\n"), strings.Split(tail, "\n")
}

// checkInspectSafe fails on any line of out that holds a raw control
// character, a byte that is not UTF-8 or a bidirectional control.
func checkInspectSafe(t *testing.T, out string) {
	t.Helper()
	for i, line := range strings.Split(out, "\n") {
		if u := safetext.Unsafe(line); u != "" {
			t.Errorf("line %d holds %s: %q", i+1, u, line)
		}
	}
}

// hostileArgv0 tries to end its row, erase the row above and move the
// cursor up, to reverse the rest of the line, and to pass for another
// process's row.
const hostileArgv0 = "evil\n1 fake 0 /bin/fake 0\x1b[2K\x1b[1A\u202e\u2066\x9b\u0085\t"

// TestInspectRealProcess runs processes whose argv[0] holds newlines and
// terminal escapes and checks that capshim inspect shows each as one row,
// escaped, and that its JSON gives the command line back exactly.
func TestInspectRealProcess(t *testing.T) {
	if _, err := os.Stat("/bin/sleep"); err != nil {
		t.Skip("no /bin/sleep")
	}
	start := func(argv0 string) int {
		cmd := exec.Command("/bin/sleep", "600")
		cmd.Args[0] = argv0
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd.Process.Pid
	}
	evil := start(hostileArgv0)
	plain := start("sleep")
	evilPID, plainPID := strconv.Itoa(evil), strconv.Itoa(plain)

	code, out, errOut := runCmd(t, "inspect", "--builtin", evilPID, plainPID)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	t.Logf("capshim inspect:\n%s", out)
	checkInspectSafe(t, out)
	table, rest := inspectTable(t, out)
	if len(table) != 3 || !strings.HasPrefix(table[0], "PID") {
		t.Fatalf("table has %d lines, want a header and one row per process:\n%s", len(table), out)
	}
	for i, pid := range []string{evilPID, plainPID} {
		if f := strings.Fields(table[i+1]); len(f) == 0 || f[0] != pid {
			t.Errorf("row %d = %q, want the row of pid %s", i+1, table[i+1], pid)
		}
	}
	if !strings.Contains(table[1], `evil\n1 fake 0 /bin/fake 0\x1b[2K\x1b...`) {
		t.Errorf("row of the hostile process = %q, want its escaped command, cut", table[1])
	}
	// The sets of each process follow, under one header line each.
	want := evilPID + ` evil\n1 fake 0 /bin/fake 0\x1b[2K\x1b[1A\u202e\u2066\x9b\u0085\t 600`
	if !strings.Contains(strings.Join(rest, "\n"), "\n"+want+"\n") && rest[0] != want {
		t.Errorf("details lack the line %q:\n%s", want, out)
	}
	if n := strings.Count(out, "bounding:"); n != 2 {
		t.Errorf("%d bounding lines, want 2", n)
	}

	code, out, errOut = runCmd(t, "inspect", "--builtin", "--format", "json", evilPID, plainPID)
	if code != 0 {
		t.Fatalf("json: exit %d: %s", code, errOut)
	}
	checkInspectSafe(t, out)
	var procs []inspectJSON
	if err := json.Unmarshal([]byte(out), &procs); err != nil {
		t.Fatalf("json output does not decode: %v\n%s", err, out)
	}
	if len(procs) != 2 || procs[0].PID != evil || procs[1].PID != plain {
		t.Fatalf("json lists %+v, want pids %d and %d", procs, evil, plain)
	}
	// JSON cannot carry the byte 0x9b that is not UTF-8: encoding/json
	// writes U+FFFD for it. Everything else comes back exactly.
	wantCmd := strings.ReplaceAll(hostileArgv0, "\x9b", "\ufffd") + " 600"
	if procs[0].Command != wantCmd {
		t.Errorf("json command = %q, want %q", procs[0].Command, wantCmd)
	}
}

// fakeProcess is one process of a crafted proc tree.
type fakeProcess struct {
	pid     int
	name    string // the Name line of status
	cmdline string // NUL-separated; "" for none (a kernel thread, a zombie)
	cgroup  string // the cgroup path
	pidNS   string // the ns/pid link; "host" for capshim's own namespace
}

// fakeProc writes a proc tree at a temp dir: /proc/PID/{status,cmdline,
// cgroup,ns/pid} for each process and /proc/self/ns/pid.
func fakeProc(t *testing.T, procs []fakeProcess) string {
	t.Helper()
	root := t.TempDir()
	link := func(dir, target string) {
		if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, "ns", "pid")); err != nil {
			t.Fatal(err)
		}
	}
	link(filepath.Join(root, "self"), "pid:[4026531836]")
	for _, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(p.pid))
		ns := "pid:[4026531836]"
		if p.pidNS != "host" {
			ns = p.pidNS
		}
		link(dir, ns)
		status := "Name:\t" + p.name + "\nUid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\n" +
			"CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\n"
		for name, content := range map[string]string{"status": status, "cmdline": p.cmdline, "cgroup": "0::" + p.cgroup + "\n"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// TestInspectHostileProc: on a crafted proc tree, every string a process
// controls is escaped in the text output (golden file), the JSON output
// decodes to exactly what the files hold, and neither holds a raw control
// character.
func TestInspectHostileProc(t *testing.T) {
	id := "245f721b3f0589876fed506e902dbd2d936b003a8a8db9744dbf803c7e6d93ae"
	procs := []fakeProcess{
		{pid: 101, name: "sh", cmdline: "/bin/sh\x00-c\x00echo hi\x00", cgroup: "/docker/" + id, pidNS: "host"},
		{pid: 102, name: "evil", cmdline: "evil\n103   fake   0   /bin/true   0\x1b[2K\x1b[1A\x00arg\x00", cgroup: "/docker/" + id, pidNS: "host"},
		{pid: 103, name: "x", cmdline: "\u202eexe.txt\u202c\u2066\u2069 \x9b31m\xff\xfe\u0085\x7f\x00", cgroup: "/docker/" + id, pidNS: "host"},
		{pid: 104, name: "\x1b]0;owned\x07comm", cmdline: "", cgroup: "/docker/" + id, pidNS: "host"},
		{pid: 105, name: "tabs", cmdline: "a\tb\tc\x00\\x1b literal\x00", cgroup: "/docker/" + id, pidNS: "host"},
		{pid: 106, name: "long", cmdline: strings.Repeat("\x1b[1A", 300) + "\x00", cgroup: "/docker/" + id, pidNS: "host"},
		// A process in another PID namespace whose cgroup is named by the
		// container: the name is its container id.
		{pid: 201, name: "init", cmdline: "init\x00", cgroup: "/ctr/run\x1b[2K\u202e\tx", pidNS: "pid:[4026532000]"},
		{pid: 202, name: "init", cmdline: "init\x00", cgroup: "/ctr/" + strings.Repeat("n", 100), pidNS: "pid:[4026532001]"},
		// Not in a container: not listed.
		{pid: 301, name: "host", cmdline: "host\x1b[2K\x00", cgroup: "/init.scope", pidNS: "host"},
	}
	root := fakeProc(t, procs)
	tests := []struct {
		name   string
		format string
		golden string // text only
	}{
		{name: "text", format: "text", golden: "inspect/hostile.txt"},
		{name: "json", format: "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "inspect", "--builtin", "--proc", root, "--format", tt.format)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			checkInspectSafe(t, out)
			if tt.format == "text" {
				golden.Check(t, tt.golden, []byte(out))
				table, _ := inspectTable(t, out)
				if len(table) != 1+8 {
					t.Errorf("table has %d lines, want a header and 8 rows:\n%s", len(table), out)
				}
				for i, line := range table[1:] {
					if f := strings.Fields(line); len(f) == 0 || f[0] != strconv.Itoa([]int{101, 102, 103, 104, 105, 106, 202, 201}[i]) {
						t.Errorf("row %d = %q does not start with its pid", i+1, line)
					}
				}
				return
			}
			var got []inspectJSON
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("json output does not decode: %v\n%s", err, out)
			}
			byPID := map[int]inspectJSON{}
			for _, p := range got {
				byPID[p.PID] = p
			}
			if len(got) != 8 {
				t.Errorf("json lists %d processes, want 8", len(got))
			}
			if c := byPID[102].Command; c != "evil\n103   fake   0   /bin/true   0\x1b[2K\x1b[1A arg" {
				t.Errorf("pid 102 command = %q", c)
			}
			if c := byPID[103].Command; c != "\u202eexe.txt\u202c\u2066\u2069 \ufffd31m\ufffd\ufffd\u0085\x7f" {
				t.Errorf("pid 103 command = %q (JSON writes U+FFFD for bytes that are not UTF-8)", c)
			}
			if c := byPID[201].Container; c != "run\x1b[2K\u202e\tx" {
				t.Errorf("pid 201 container = %q", c)
			}
		})
	}
}

// TestInspectLongCommand: of a megabyte command line, inspect reads and
// shows proc.MaxCommand bytes and says it cut.
func TestInspectLongCommand(t *testing.T) {
	id := "245f721b3f0589876fed506e902dbd2d936b003a8a8db9744dbf803c7e6d93ae"
	root := fakeProc(t, []fakeProcess{{pid: 7, name: "big", cmdline: strings.Repeat("\x1b", 1<<20), cgroup: "/docker/" + id, pidNS: "host"}})
	tests := []struct {
		name   string
		format string
		want   string
	}{
		{name: "text", format: "text", want: "7 " + strings.Repeat(`\x1b`, proc.MaxCommand) + " ...(cut at 65536 bytes)\n"},
		{name: "json", format: "json", want: `"command_cut": true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "inspect", "--builtin", "--proc", root, "--format", tt.format)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			checkInspectSafe(t, out)
			if !strings.Contains(out, tt.want) {
				t.Errorf("output lacks %.80q", tt.want)
			}
			if len(out) > 6*proc.MaxCommand+4096 { // an escape is at most 6 bytes
				t.Errorf("output is %d bytes", len(out))
			}
		})
	}
}

// TestInspectByName: a running container is found by the name its record
// holds (NAME, POD/NAME, NAMESPACE/POD/NAME); a name two running
// containers share, or one only a deleted container had, is an error.
func TestInspectByName(t *testing.T) {
	// No docker or podman CLI to ask: the records alone.
	t.Setenv("PATH", t.TempDir())
	web1 := strings.Repeat("a", 64)
	web2 := strings.Repeat("b", 64)
	root := fakeProc(t, []fakeProcess{
		{pid: 101, name: "nginx", cmdline: "nginx\x00", cgroup: "/kubepods/" + web1, pidNS: "host"},
		{pid: 102, name: "nginx", cmdline: "nginx\x00", cgroup: "/kubepods/" + web1, pidNS: "host"},
		{pid: 201, name: "nginx", cmdline: "nginx\x00", cgroup: "/kubepods/" + web2, pidNS: "host"},
	})
	run := t.TempDir()
	record := func(file, id, pod, ns, deleted string) {
		rec := `{"id":"` + id + `","root":"/run/containerd/runc/k8s.io","engine":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"web","io.kubernetes.cri.sandbox-name":"` + pod + `","io.kubernetes.cri.sandbox-namespace":"` + ns + `"},"policy":"p","mode":"enforce","trace":true,"created":"2026-12-01T10:00:00Z"` + deleted + `}`
		if err := os.WriteFile(filepath.Join(run, file), []byte(rec), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	record("a.json", web1, "web-1", "shop", "")
	record("b.json", web2, "web-2", "test", "")
	record("c.json", strings.Repeat("c", 64), "gone", "shop", `,"deleted":"2026-12-01T11:00:00Z"`)
	tests := []struct {
		name     string
		arg      string
		wantPIDs []int
		wantErr  string
	}{
		{name: "namespace/pod/name", arg: "shop/web-1/web", wantPIDs: []int{101, 102}},
		{name: "pod/name", arg: "web-2/web", wantPIDs: []int{201}},
		{name: "a name two containers share", arg: "web", wantErr: `"web" names 2 running containers`},
		{name: "a deleted container", arg: "shop/gone/web", wantErr: "neither a running process, nor the id or name of a running container"},
		{name: "unknown", arg: "nope", wantErr: "neither a running process, nor the id or name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "inspect", "--builtin", "--proc", root, "--run-dir", run, "--format", "json", tt.arg)
			if tt.wantErr != "" {
				if code != 2 || !strings.Contains(errOut, tt.wantErr) {
					t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tt.wantErr)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got []inspectJSON
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			var pids []int
			for _, p := range got {
				pids = append(pids, p.PID)
			}
			if fmt.Sprint(pids) != fmt.Sprint(tt.wantPIDs) {
				t.Errorf("pids %v, want %v", pids, tt.wantPIDs)
			}
		})
	}
}
