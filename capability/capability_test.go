package capability

import (
	"strings"
	"testing"

	moby "github.com/moby/sys/capability"
)

// TestTableMatchesMoby ties the table to github.com/moby/sys/capability,
// which runc uses: the same numbers, the same names, none missing.
func TestTableMatchesMoby(t *testing.T) {
	known := moby.ListKnown()
	if len(known) != NumCaps {
		t.Fatalf("moby knows %d capabilities, the table has %d", len(known), NumCaps)
	}
	for _, mc := range known {
		c := Cap(mc)
		if want := "CAP_" + strings.ToUpper(mc.String()); c.String() != want {
			t.Errorf("capability %d: table says %s, moby says %s", int(mc), c, want)
		}
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		exact, look bool
		want        Cap
	}{
		{name: "canonical", in: "CAP_SYS_ADMIN", exact: true, look: true, want: SysAdmin},
		{name: "lower case", in: "cap_sys_admin", look: true, want: SysAdmin},
		{name: "no prefix", in: "sys_admin", look: true, want: SysAdmin},
		{name: "blanks", in: "  net_raw ", look: true, want: NetRaw},
		{name: "last", in: "CAP_CHECKPOINT_RESTORE", exact: true, look: true, want: CheckpointRestore},
		{name: "unknown", in: "CAP_FUTURE"},
		{name: "prefix only", in: "CAP_"},
		{name: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, ok := Exact(tt.in); ok != tt.exact || ok && c != tt.want {
				t.Errorf("Exact(%q) = %v, %v", tt.in, c, ok)
			}
			if c, ok := Lookup(tt.in); ok != tt.look || ok && c != tt.want {
				t.Errorf("Lookup(%q) = %v, %v", tt.in, c, ok)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		name string
		set  Set
		want string
		n    int
	}{
		{name: "oci", set: OCIDefault, want: "CAP_KILL,CAP_NET_BIND_SERVICE,CAP_AUDIT_WRITE", n: 3},
		{name: "podman", set: PodmanDefault, n: 11},
		{name: "docker", set: DockerDefault, n: 14},
		{name: "none", set: 0, want: "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.set.Len() != tt.n {
				t.Errorf("%d members, want %d", tt.set.Len(), tt.n)
			}
			if tt.want != "" && tt.set.String() != tt.want {
				t.Errorf("String = %q, want %q", tt.set, tt.want)
			}
		})
	}
	// Docker's set as /proc/PID/status prints it.
	if DockerDefault != 0xa80425fb {
		t.Errorf("DockerDefault = %#x", uint64(DockerDefault))
	}
	if PodmanDefault&^DockerDefault != 0 || Of(Chown, Kill) != 1|1<<5 {
		t.Error("set arithmetic")
	}
}

func TestParseCommaList(t *testing.T) {
	set, unknown := ParseCommaList("CAP_CHOWN, setuid,,bogus ,")
	if set != Of(Chown, Setuid) || len(unknown) != 1 || unknown[0] != "bogus" {
		t.Fatalf("got %v %q", set, unknown)
	}
}
