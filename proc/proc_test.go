package proc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/spec"
)

const sampleStatus = `Name:	sleep
Umask:	0022
State:	S (sleeping)
Tgid:	23315
Pid:	23315
Uid:	0	1000	0	0
Gid:	0	0	0	0
CapInh:	0000000000000000
CapPrm:	0000000020000420
CapEff:	0000000020000420
CapBnd:	000001ffffffffff
CapAmb:	0000000000000001
NoNewPrivs:	0
`

func TestParseStatus(t *testing.T) {
	st, err := ParseStatus(strings.NewReader(sampleStatus))
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "sleep" || st.UID != 1000 {
		t.Errorf("name %q uid %d, want sleep 1000 (effective uid)", st.Name, st.UID)
	}
	want := spec.Sets{
		spec.Bounding:    capability.All,
		spec.Effective:   capability.OCIDefault,
		spec.Permitted:   capability.OCIDefault,
		spec.Inheritable: 0,
		spec.Ambient:     1,
	}
	if st.Caps != want {
		t.Errorf("caps = %v, want %v", st.Caps, want)
	}
}

func TestParseStatusErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"missing cap line", strings.Replace(sampleStatus, "CapAmb:\t0000000000000001\n", "", 1), "no CapAmb"},
		{"bad hex", strings.Replace(sampleStatus, "0000000020000420\nCapEff", "zz\nCapEff", 1), "bad CapPrm"},
		{"no uid", strings.Replace(sampleStatus, "Uid:\t0\t1000\t0\t0\n", "", 1), "no Uid"},
		{"short uid", strings.Replace(sampleStatus, "Uid:\t0\t1000\t0\t0\n", "Uid:\t0\n", 1), "bad Uid"},
		{"empty", "", "no CapBnd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseStatus(strings.NewReader(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestContainerID(t *testing.T) {
	id := "245f721b3f0589876fed506e902dbd2d936b003a8a8db9744dbf803c7e6d93ae"
	tests := []struct {
		name, cgroup, want string
	}{
		{"docker cgroupfs v2", "0::/docker/" + id, id},
		{"docker systemd", "0::/system.slice/docker-" + id + ".scope", id},
		{"cri containerd systemd", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-" + id + ".scope", id},
		{"cri cgroupfs", "0::/kubepods/besteffort/pod123/" + id, id},
		{"podman", "0::/machine.slice/libpod-" + id + ".scope/container", id},
		{"v1 hybrid", "12:pids:/docker/" + id + "\n0::/", id},
		{"host process", "0::/init.scope", ""},
		{"short id", "0::/docker/245f721b3f05", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ContainerID(tt.cgroup); got != tt.want {
				t.Errorf("ContainerID = %q, want %q", got, tt.want)
			}
		})
	}
	if got := LastCgroup("9:name=systemd:/t3\n0::/t3"); got != "t3" {
		t.Errorf("LastCgroup = %q", got)
	}
}

// TestReadCommand: Read turns the NUL-separated command line into words,
// falls back to the name when there is none, and reads at most MaxCommand
// bytes of it, saying when it cut.
func TestReadCommand(t *testing.T) {
	tests := []struct {
		name    string
		cmdline string
		want    string
		cut     bool
	}{
		{name: "words", cmdline: "/bin/sh\x00-c\x00echo hi\x00", want: "/bin/sh -c echo hi"},
		{name: "no command line: the name", cmdline: "", want: "sleep"},
		{name: "control characters are kept for the caller to escape", cmdline: "a\nb\x1b[2K\x00", want: "a\nb\x1b[2K"},
		{name: "exactly MaxCommand", cmdline: strings.Repeat("x", MaxCommand), want: strings.Repeat("x", MaxCommand)},
		{name: "one byte more", cmdline: strings.Repeat("x", MaxCommand+1), want: strings.Repeat("x", MaxCommand), cut: true},
		{name: "a megabyte", cmdline: strings.Repeat("y\x00", 1<<19), want: strings.TrimSpace(strings.Repeat("y ", MaxCommand/2)), cut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "42")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, content := range map[string]string{"status": sampleStatus, "cmdline": tt.cmdline, "cgroup": "0::/init.scope\n"} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p, err := Read(root, 42)
			if err != nil {
				t.Fatal(err)
			}
			if p.Command != tt.want || p.CommandCut != tt.cut {
				t.Errorf("Command = %.60q (%d bytes), cut %v; want %.60q (%d bytes), cut %v",
					p.Command, len(p.Command), p.CommandCut, tt.want, len(tt.want), tt.cut)
			}
		})
	}
}
