package filecaps

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/capshim/capshim/capability"
	"golang.org/x/sys/unix"
)

// vfsCap builds an attribute value.
func vfsCap(magic uint32, perm, inh uint64) []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b, magic)
	binary.LittleEndian.PutUint32(b[4:], uint32(perm))
	binary.LittleEndian.PutUint32(b[8:], uint32(inh))
	binary.LittleEndian.PutUint32(b[12:], uint32(perm>>32))
	binary.LittleEndian.PutUint32(b[16:], uint32(inh>>32))
	return b
}

func TestParse(t *testing.T) {
	netRaw := capability.Set(1) << 13
	tests := []struct {
		name    string
		value   []byte
		want    Caps
		wantErr bool
	}{
		{name: "v2 net_raw+ep", value: vfsCap(revision2|flagEffective, 1<<13, 0), want: Caps{Permitted: netRaw, Effective: true}},
		{name: "v2 net_raw+p", value: vfsCap(revision2, 1<<13, 0), want: Caps{Permitted: netRaw}},
		{name: "v2 high capability", value: vfsCap(revision2, 1<<40, 1<<33), want: Caps{Permitted: 1 << 40, Inheritable: 1 << 33}},
		{name: "v3 with root id", value: append(vfsCap(revision3|flagEffective, 1<<13, 0), 0, 0, 0, 0), want: Caps{Permitted: netRaw, Effective: true}},
		{name: "v1", value: vfsCap(revision1|flagEffective, 1<<13, 0)[:12], want: Caps{Permitted: netRaw, Effective: true}},
		{name: "short", value: []byte{0, 0, 0, 2}, wantErr: true},
		{name: "unknown revision", value: vfsCap(0x07000000, 1, 0), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.value)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Parse = %+v, %v; want %+v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// Read resolves inside the root, links too, as the container saw them.
func TestRead(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setting security.capability needs root")
	}
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(bin, "ping")
	if err := os.WriteFile(exe, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(exe, xattrName, vfsCap(revision2|flagEffective, 1<<13, 0), 0); err != nil {
		t.Skipf("setting file capabilities: %v", err)
	}
	if err := os.WriteFile(filepath.Join(bin, "plain"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	// An absolute link points inside the root, not at the host.
	if err := os.Symlink("/bin/ping", filepath.Join(bin, "link")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		exe     string
		ok      bool
		wantErr bool
	}{
		{name: "file capabilities", exe: "/bin/ping", ok: true},
		{name: "through an absolute link", exe: "/bin/link", ok: true},
		{name: "none", exe: "/bin/plain"},
		{name: "dot-dot stays inside", exe: "/../../bin/ping", ok: true},
		{name: "missing", exe: "/bin/none", wantErr: true},
		{name: "relative", exe: "bin/ping", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok, err := Read(root, tt.exe)
			if ok != tt.ok || (err != nil) != tt.wantErr {
				t.Fatalf("Read = %+v, %v, %v", c, ok, err)
			}
			if ok && (c.Permitted != capability.Set(1)<<13 || !c.Effective) {
				t.Errorf("caps %+v", c)
			}
		})
	}
}
