package spec

import "github.com/capshim/capshim/capability"

import "testing"

// TestCrunModel pins the crun model to what crun 1.8.1 granted on this
// machine for each spelling (the integration tests run the same spellings
// on real crun).
func TestCrunModel(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want capability.Cap
		ok   bool
	}{
		{"exact", "CAP_SYS_ADMIN", capability.Cap(21), true},
		{"lower case", "cap_sys_admin", capability.Cap(21), true},
		{"number", "21", capability.Cap(21), true},
		{"hex number", "0x15", capability.Cap(21), true},
		{"trailing junk", "CAP_SYS_ADMIN,x", capability.Cap(21), true},
		{"NUL suffix", "CAP_SYS_ADMIN\x00junk", capability.Cap(21), true},
		{"no prefix", "sys_admin", 0, false},
		{"too large", "64", 0, false},
		{"empty", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := crunCapName(tt.in)
			if ok != tt.ok || ok && got != tt.want {
				t.Fatalf("crunCapName(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}
