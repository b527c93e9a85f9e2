package pinned

import (
	"errors"
	"testing"
	"unsafe"
)

func TestOpenOutsideBPFFS(t *testing.T) {
	tests := []struct {
		name    string
		dir     string
		noPins  bool
		wantErr bool
	}{
		{name: "missing", dir: t.TempDir() + "/none", noPins: true, wantErr: true},
		{name: "not bpffs", dir: t.TempDir(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.dir)
			if (err != nil) != tt.wantErr || errors.Is(err, ErrNoPins) != tt.noPins {
				t.Errorf("Open: %v", err)
			}
		})
	}
}

// The structures passed to the kernel have its sizes and offsets.
func TestKernelLayouts(t *testing.T) {
	tests := []struct {
		name      string
		got, want uintptr
	}{
		{"map elem attr", unsafe.Sizeof(mapElemAttr{}), 32},
		{"obj get attr", unsafe.Sizeof(objGetAttr{}), 24},
		{"info attr", unsafe.Sizeof(infoAttr{}), 16},
		{"map info name", unsafe.Offsetof(mapInfo{}.Name), 24},
		{"prog info name", unsafe.Offsetof(progInfo{}.Name), 64},
		{"prog info run_time_ns", unsafe.Offsetof(progInfo{}.RunTimeNs), 192},
		{"prog info recursion_misses", unsafe.Offsetof(progInfo{}.RecursionMisses), 208},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%d, want %d", tt.got, tt.want)
			}
		})
	}
}
