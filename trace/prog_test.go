package trace

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"

	"github.com/capshim/capshim/capability"
)

// rawInsn is one marshalled 8-byte instruction.
type rawInsn struct {
	op       byte
	dst, src byte
	off      int16
	imm      int32
}

func marshal(t *testing.T, insns asm.Instructions) []rawInsn {
	t.Helper()
	var buf bytes.Buffer
	if err := insns.Marshal(&buf, binary.LittleEndian); err != nil {
		t.Fatalf("marshal: %v", err)
	}
	b := buf.Bytes()
	out := make([]rawInsn, 0, len(b)/8)
	for i := 0; i+8 <= len(b); i += 8 {
		out = append(out, rawInsn{
			op:  b[i],
			dst: b[i+1] & 0xf,
			src: b[i+1] >> 4,
			off: int16(binary.LittleEndian.Uint16(b[i+2:])),
			imm: int32(binary.LittleEndian.Uint32(b[i+4:])),
		})
	}
	return out
}

// The kernel's encoding: BPF_STX (0x03) | BPF_ATOMIC (0xc0) | BPF_DW
// (0x18), the operation in the immediate.
const opAtomicDW = 0xdb

func TestAtomicEncoding(t *testing.T) {
	tests := []struct {
		name string
		ins  asm.Instruction
		want rawInsn
	}{
		{"or", atomicOr(asm.R7, asm.R2, 8), rawInsn{op: opAtomicDW, dst: 7, src: 2, off: 8, imm: 0x40}},
		{"or at zero offset", atomicOr(asm.R1, asm.R3, 0), rawInsn{op: opAtomicDW, dst: 1, src: 3, imm: 0x40}},
		{"add", atomicAdd(asm.R1, asm.R2, 80), rawInsn{op: opAtomicDW, dst: 1, src: 2, off: 80, imm: 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := marshal(t, asm.Instructions{tt.ins})
			if len(got) != 1 || got[0] != tt.want {
				t.Fatalf("encoded %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestLibraryOrAtomic documents why atomicOr exists: if the library's own
// encoding is ever right, atomicOr can become a plain call to it.
func TestLibraryOrAtomic(t *testing.T) {
	got := marshal(t, asm.Instructions{asm.OrAtomic.Mem(asm.R7, asm.R2, asm.DWord, 8)})
	if got[0].imm != 0x40 {
		t.Logf("cilium/ebpf encodes OrAtomic with immediate %#x (an atomic add); atomicOr sets it itself", got[0].imm)
	}
}

func testParams() progParams {
	return progParams{
		cgroups: 3, config: 4, pending: 5, slots: 6,
		overcommit: []addrRange{{"a", 0xffffffff81000000, 0xffffffff81000100}, {"b", 0xffffffff82000000, 0xffffffff82000040}},
		comms:      runtimeComms,
		realCred:   1728,
	}
}

func TestProgramEncodes(t *testing.T) {
	tests := []struct {
		name   string
		params func() progParams
	}{
		{"with overcommit ranges", testParams},
		{"without overcommit ranges", func() progParams { p := testParams(); p.overcommit = nil; return p }},
		{"without runtime names", func() progParams { p := testParams(); p.comms = nil; return p }},
		{"without the offset of real_cred", func() progParams { p := testParams(); p.realCred = -1; return p }},
		{"without the slots", func() progParams { p := testParams(); p.slots = 0; return p }},
		{"reading the task by its BTF", func() progParams {
			p := testParams()
			p.taskBTF, p.comm, p.pid, p.cgroup = true, 1752, 1480, taskCgroup{cgroups: 2376, dflCgrp: 112, level: 216, kn: 256, id: 96}
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			insns, err := program(tt.params())
			if err != nil {
				t.Fatal(err)
			}
			raw := marshal(t, insns)
			ors, adds := 0, 0
			for i, in := range raw {
				if in.op != opAtomicDW {
					continue
				}
				switch in.imm {
				case bpfOr:
					ors++
				case bpfAdd:
					adds++
				default:
					t.Errorf("instruction %d: atomic operation %#x", i, in.imm)
				}
			}
			// The used and refused masks are ORed; every counter is added.
			if ors < 2 || adds < 4 {
				t.Errorf("%d atomic ors and %d adds: the masks or counters are not all atomic", ors, adds)
			}
			if len(raw) > 4096 {
				t.Errorf("%d instructions: more than the verifier should have to look at", len(raw))
			}
		})
	}
}

func TestBuilderAliases(t *testing.T) {
	b := &builder{}
	b.emit(asm.Ja.Label("b"))
	b.label("a")
	b.label("b")
	b.emit(asm.Mov.Imm(asm.R0, 0), asm.Return())
	insns, err := b.done()
	if err != nil {
		t.Fatal(err)
	}
	raw := marshal(t, insns)
	if raw[0].off != 0 {
		t.Errorf("jump to an aliased label has offset %d, want 0", raw[0].off)
	}
	b = &builder{}
	b.emit(asm.Return())
	b.label("dangling")
	if _, err := b.done(); err == nil {
		t.Error("a label after the last instruction was accepted")
	}
}

func comm(s string) [16]byte {
	var c [16]byte
	copy(c[:], s)
	return c
}

func TestCommPatterns(t *testing.T) {
	tests := []struct {
		name    string
		comm    string
		runtime bool
	}{
		{"runc init", "runc:[2:INIT]", true},
		{"runc child", "runc:[1:CHILD]", true},
		{"runc parent", "runc:[0:PARENT]", true},
		{"runc bootstrap", "runc", true},
		{"crun", "crun", true},
		{"workload named like crun", "crunch", false},
		{"workload named like runc", "runcible", false},
		{"shell", "sh", false},
		{"empty", "", false},
		{"full length", "0123456789abcde", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := false
			for _, p := range runtimeComms {
				got = got || p.match(comm(tt.comm))
			}
			if got != tt.runtime {
				t.Errorf("%q: runtime %v, want %v", tt.comm, got, tt.runtime)
			}
		})
	}
}

func TestParseRanges(t *testing.T) {
	// Sorted like the kernel's own part of the listing, then a module.
	const listing = `ffffffff815d3d20 T __vm_enough_memory
ffffffff815d3e00 t security_vm_enough_memory_mm.cold
ffffffff815d3e40 t next_fn
ffffffff81abb700 T cap_vm_enough_memory
ffffffff81abb740 T cap_vm_enough_memory_alias
ffffffff81abb760 t after_cap
ffffffff81ac0750 T security_vm_enough_memory_mm
ffffffff81ac0750 T alias_same_address
ffffffff81ac07d0 t following
ffffffff81ac0800 t cap_vm_enough_memory.constprop.0
ffffffffc0001000 t mod_fn	[some_module]
`
	tests := []struct {
		name    string
		listing string
		names   []string
		want    []addrRange
		wantErr string
	}{
		{
			name: "both", listing: listing, names: overcommitFuncs,
			// The clone listed after both ends is not read.
			want: []addrRange{
				{"security_vm_enough_memory_mm.cold", 0xffffffff815d3e00, 0xffffffff815d3e40},
				{"cap_vm_enough_memory", 0xffffffff81abb700, 0xffffffff81abb740},
				{"security_vm_enough_memory_mm", 0xffffffff81ac0750, 0xffffffff81ac07d0},
			},
		},
		{
			name: "one is enough", listing: listing, names: []string{"cap_vm_enough_memory", "inlined_away"},
			want: []addrRange{{"cap_vm_enough_memory", 0xffffffff81abb700, 0xffffffff81abb740}},
		},
		{
			name: "hidden addresses", names: overcommitFuncs, wantErr: "not found",
			listing: "0000000000000000 T cap_vm_enough_memory\n0000000000000000 T security_vm_enough_memory_mm\n",
		},
		{
			name: "last symbol has no end", names: []string{"mod_fn"}, listing: listing, wantErr: "no plausible end",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRanges(strings.NewReader(tt.listing), tt.names)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %x, want %x", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("range %d: %x, want %x", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestDecodeRecord(t *testing.T) {
	entry := func(set func(w []uint64)) []byte {
		w := make([]uint64, valueWords)
		set(w)
		b := make([]byte, valueSize)
		for i, v := range w {
			binary.NativeEndian.PutUint64(b[i*8:], v)
		}
		return b
	}
	const chown, dacOverride, readSearch = 0, 1, 2
	tests := []struct {
		name                    string
		entry                   []byte
		misses                  uint64
		used, refused, fallback capability.Set
		complete                bool
	}{
		{
			name: "used and refused",
			entry: entry(func(w []uint64) {
				w[wordUsed], w[wordRefused] = 1<<chown, 1<<chown
				w[wordUsedN+chown], w[wordRefusedN+chown] = 2, 1
			}),
			used: 1 << chown, refused: 1 << chown, complete: true,
		},
		{
			name: "every read-search refusal a fallback",
			entry: entry(func(w []uint64) {
				w[wordUsed], w[wordRefused] = 1<<dacOverride, 1<<readSearch
				w[wordUsedN+dacOverride], w[wordRefusedN+readSearch], w[wordFallbackN+readSearch] = 3, 3, 3
			}),
			used: 1 << dacOverride, fallback: 1 << readSearch, complete: true,
		},
		{
			name: "one read-search refusal of its own",
			entry: entry(func(w []uint64) {
				w[wordUsed], w[wordRefused] = 1<<dacOverride, 1<<readSearch
				w[wordUsedN+dacOverride], w[wordRefusedN+readSearch], w[wordFallbackN+readSearch] = 3, 4, 3
			}),
			used: 1 << dacOverride, refused: 1 << readSearch, complete: true,
		},
		{
			name:   "recorder skipped since watch",
			entry:  entry(func(w []uint64) { w[wordMisses] = 5 }),
			misses: 6,
		},
		{
			name:   "misses before watch do not count",
			entry:  entry(func(w []uint64) { w[wordMisses] = 5 }),
			misses: 5, complete: true,
		},
		{
			name:  "unsorted sys_admin",
			entry: entry(func(w []uint64) { w[wordFlags] = flagUnsorted; w[wordUnsorted] = 7 }),
		},
		{
			name:  "no stack",
			entry: entry(func(w []uint64) { w[wordFlags] = flagNoStack }),
		},
		{
			name:  "capability out of range",
			entry: entry(func(w []uint64) { w[wordFlags] = flagCapRange }),
		},
		{
			name:     "checks under other credentials left out",
			entry:    entry(func(w []uint64) { w[wordForeign] = 4 }),
			complete: true,
		},
		{
			name:  "credentials not read",
			entry: entry(func(w []uint64) { w[wordFlags] = flagNoCred }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := decodeRecord(9, tt.entry, tt.misses)
			if r.Used != tt.used || r.Refused != tt.refused || r.Fallback != tt.fallback || r.Complete != tt.complete {
				t.Errorf("got %v, want used %v refused %v fallback %v complete %v", r, tt.used, tt.refused, tt.fallback, tt.complete)
			}
			if r.Complete != (len(r.Gaps) == 0) {
				t.Errorf("complete %v with gaps %q", r.Complete, r.Gaps)
			}
		})
	}
}

func TestEntryLayout(t *testing.T) {
	b := newEntry(3, 17)
	if len(b) != valueSize || entryLevel(b) != 3 || binary.NativeEndian.Uint64(b[wordMisses*8:]) != 17 {
		t.Fatalf("entry %d bytes, level %d", len(b), entryLevel(b))
	}
	if wordFallbackN+MaxCap >= valueWords {
		t.Fatal("counters do not fit the entry")
	}
}

func TestExecProgramEncodes(t *testing.T) {
	insns, err := execProgram(execParams{cgroups: 3, config: 4, execs: 5, interp: 96})
	if err != nil {
		t.Fatal(err)
	}
	ors, adds := 0, 0
	for i, in := range marshal(t, insns) {
		if in.op != opAtomicDW {
			continue
		}
		switch in.imm {
		case bpfOr:
			ors++
		case bpfAdd:
			adds++
		default:
			t.Errorf("instruction %d: atomic operation %#x", i, in.imm)
		}
	}
	// Flags are ORed in at four places (bound reached, path cut short, map
	// full, path unreadable); the count of executables is added.
	if ors != 4 || adds != 1 {
		t.Errorf("%d atomic ors and %d adds", ors, adds)
	}
}
