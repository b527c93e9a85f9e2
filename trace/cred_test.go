package trace

import (
	"os"
	"testing"

	"github.com/cilium/ebpf/btf"
)

func TestPointerOffset(t *testing.T) {
	cred := &btf.Struct{Name: "cred", Size: 8}
	ptr := &btf.Pointer{Target: cred}
	long := &btf.Int{Name: "long", Size: 8}
	// A kernel with randomised layouts puts the fields in an anonymous
	// struct, here at byte 16.
	randomised := &btf.Struct{Size: 24, Members: []btf.Member{
		{Name: "pid", Type: long, Offset: 0},
		{Name: "real_cred", Type: ptr, Offset: 64},
	}}
	tests := []struct {
		name    string
		members []btf.Member
		want    int32
		wantErr bool
	}{
		{name: "direct member", members: []btf.Member{{Name: "state", Type: long}, {Name: "real_cred", Type: ptr, Offset: 1728 * 8}}, want: 1728},
		{name: "inside an anonymous struct", members: []btf.Member{{Name: "state", Type: long}, {Type: randomised, Offset: 16 * 8}}, want: 24},
		{name: "behind a typedef", members: []btf.Member{{Name: "real_cred", Type: &btf.Typedef{Name: "cred_p", Type: ptr}, Offset: 64}}, want: 8},
		{name: "missing", members: []btf.Member{{Name: "state", Type: long}}, wantErr: true},
		{name: "not a pointer", members: []btf.Member{{Name: "real_cred", Type: long, Offset: 64}}, wantErr: true},
		{name: "misaligned", members: []btf.Member{{Name: "real_cred", Type: ptr, Offset: 12}}, wantErr: true},
		// A named member is not searched: its fields are not the task's.
		{name: "inside a named struct", members: []btf.Member{{Name: "inner", Type: randomised}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := pointerOffset(&btf.Struct{Name: "task_struct", Members: tt.members}, "real_cred")
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %d, %v; want %d (error: %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestRealCredOffset reads the running kernel's offset, where it has BTF.
func TestRealCredOffset(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skipf("no kernel BTF here: %v", err)
	}
	off, err := realCredOffset()
	if err != nil || off <= 0 {
		t.Fatalf("offset %d: %v", off, err)
	}
	t.Logf("task_struct.real_cred at byte %d", off)
}
