package trace

import (
	"encoding/binary"
	"fmt"

	"github.com/capshim/capshim/trace/pinned"
	"github.com/cilium/ebpf/asm"
)

// The layout of the maps is package pinned's, which the runtime binary
// shares; these are its names here.
const (
	wordUsed       = pinned.WordUsed
	wordRefused    = pinned.WordRefused
	wordFlags      = pinned.WordFlags
	wordOvercommit = pinned.WordOvercommit
	wordRuntime    = pinned.WordRuntime
	wordUnsorted   = pinned.WordUnsorted
	wordLevel      = pinned.WordLevel
	wordMisses     = pinned.WordMisses
	wordForeign    = pinned.WordForeign
	wordUsedN      = pinned.WordUsedN
	wordRefusedN   = pinned.WordRefusedN
	wordFallbackN  = pinned.WordFallbackN
	valueWords     = pinned.ValueWords
	valueSize      = pinned.ValueSize

	// MaxCap is the highest capability number the program records.
	MaxCap = pinned.MaxCap

	flagCapRange = pinned.FlagCapRange
	flagNoStack  = pinned.FlagNoStack
	flagUnsorted = pinned.FlagUnsorted
	flagNoCred   = pinned.FlagNoCred

	cfgLevels  = pinned.CfgLevels
	cfgABI     = pinned.CfgABI
	cfgWords   = pinned.CfgWords
	abiVersion = pinned.ABIVersion
	maxLevel   = pinned.MaxLevel
)

// Record is what the processes of one cgroup did (see package pinned).
type Record = pinned.Record

// Cgroup is a cgroup of the v2 hierarchy as the program sees it.
type Cgroup = pinned.Cgroup

func decodeRecord(id uint64, b []byte, misses uint64) Record {
	return pinned.DecodeRecord(id, b, misses)
}

func newEntry(level int, misses uint64) []byte { return pinned.NewEntry(level, misses) }

func entryLevel(b []byte) int { return pinned.EntryLevel(b) }

// V2Root returns where the cgroup v2 hierarchy is mounted (pinned.V2Root).
func V2Root() (mountPoint, root string, err error) { return pinned.V2Root() }

// CgroupByPath returns the cgroup at path (pinned.CgroupByPath).
func CgroupByPath(path string) (Cgroup, error) { return pinned.CgroupByPath(path) }

// CgroupAlive reports whether a cgroup of that id still exists
// (pinned.CgroupAlive).
func CgroupAlive(id uint64) (bool, error) { return pinned.CgroupAlive(id) }

// Capability numbers the program treats specially.
const (
	capDACOverride   = 1
	capDACReadSearch = 2
	capSysAdmin      = 21
)

// stackFrames is how many kernel return addresses the program reads for a
// SYS_ADMIN check. Measured on 6.18 the overcommit caller is the fourth
// (the program, bpf_trace_run5, cap_capable, security_vm_enough_memory_mm);
// two more leave room for a differently inlined kernel.
const stackFrames = 6

// addrRange is [lo, hi) of kernel text: one function.
type addrRange struct {
	name   string
	lo, hi uint64
}

// commPattern matches the 16-byte task command name, read as two native
// 64-bit words: the bytes under mask must equal val. A prefix has no
// terminating NUL in it; an exact name has.
type commPattern struct {
	val, mask [2]uint64
}

// newCommPattern builds a pattern from s; exact adds the terminating NUL
// to the bytes compared, so "crun" does not match "crunch".
func newCommPattern(s string, exact bool) commPattern {
	var val, mask [16]byte
	n := len(s)
	if exact {
		n++
	}
	if n > len(val) {
		panic("trace: command name pattern longer than the kernel's 16 bytes: " + s)
	}
	copy(val[:], s)
	for i := 0; i < n; i++ {
		mask[i] = 0xff
	}
	return commPattern{val: commWords(val), mask: commWords(mask)}
}

// commWords reads a command name the way the program loads it.
func commWords(b [16]byte) [2]uint64 {
	return [2]uint64{binary.NativeEndian.Uint64(b[:8]), binary.NativeEndian.Uint64(b[8:])}
}

// match is the Go reading of the pattern, for tests.
func (p commPattern) match(comm [16]byte) bool {
	w := commWords(comm)
	return w[0]&p.mask[0] == p.val[0] && w[1]&p.mask[1] == p.val[1]
}

// runtimeComms are the command names of OCI runtime processes that set a
// container up inside its cgroup before the workload's exec. runc's
// bootstrap runs as "runc" and renames itself runc:[0:PARENT],
// runc:[1:CHILD] and runc:[2:INIT]; crun's init keeps the name "crun".
// A workload binary called exactly runc or crun is not recorded either.
var runtimeComms = []commPattern{
	newCommPattern("runc:[", false),
	newCommPattern("runc", true),
	newCommPattern("crun", true),
}

// progParams is what the program is generated from.
type progParams struct {
	cgroups, config, pending int // map file descriptors
	slots                    int // the slots map, tried before cgroups
	// overcommit holds the functions whose SYS_ADMIN checks are noise; nil
	// when they could not be resolved: SYS_ADMIN checks are then counted
	// in wordUnsorted only, and flagUnsorted is set.
	overcommit []addrRange
	comms      []commPattern
	// realCred is the offset of real_cred in task_struct (see cred.go),
	// or negative when it is not known: every check is then counted as
	// the task's own, and flagNoCred is set.
	realCred int32
	// taskBTF reads the current task through its BTF type
	// (bpf_get_current_task_btf): its own cgroup, to find the watched
	// ancestor without a helper call per level (emitTaskLookup, offsets in
	// cgroup), and real_cred and comm (at offset comm) with plain loads,
	// where the other way copies both with a helper each. Kernels that
	// lack the helper, or a verifier that refuses the loads, get the other
	// way (see load).
	taskBTF bool
	comm    int32
	pid     int32      // task_struct.pid, with taskBTF
	cgroup  taskCgroup // with taskBTF
}

// Stack layout of the program, offsets from R10.
const (
	stKey   = -8                     // u64 map key (or u32 zero for arrays)
	stComm  = -24                    // 16 bytes of task command name
	stStack = stComm - 8*stackFrames // stackFrames return addresses
	stPid   = stStack - 8            // the current task: its thread id, or pid_tgid
	stCred  = stPid - 8              // the current task's real_cred
	stTask  = stCred - 8             // the current task (taskBTF)
	stCgrp  = stTask - 8             // a cgroup on the walk up (taskBTF)
	stSlot  = stCgrp - 8             // u32 key of the slots map
)

// builder assembles instructions with labels that may pile up on one
// instruction (the asm package takes one symbol per instruction).
type builder struct {
	labels  int // unique labels made (unique)
	insns   asm.Instructions
	pending string            // label waiting for the next instruction
	alias   map[string]string // label -> label on the same instruction
}

func (b *builder) emit(ins ...asm.Instruction) {
	for _, in := range ins {
		if b.pending != "" {
			in = in.WithSymbol(b.pending)
			b.pending = ""
		}
		b.insns = append(b.insns, in)
	}
}

// unique returns a label name not used before in this program.
func (b *builder) unique(prefix string) string {
	b.labels++
	return fmt.Sprintf("%s#%d", prefix, b.labels)
}

func (b *builder) label(name string) {
	if b.pending != "" {
		if b.alias == nil {
			b.alias = map[string]string{}
		}
		b.alias[name] = b.pending
		return
	}
	b.pending = name
}

func (b *builder) done() (asm.Instructions, error) {
	if b.pending != "" {
		return nil, fmt.Errorf("label %s at the end of the program", b.pending)
	}
	for i, in := range b.insns {
		if ref := in.Reference(); ref != "" {
			if to, ok := b.alias[ref]; ok {
				b.insns[i] = in.WithReference(to)
			}
		}
	}
	return b.insns, nil
}

// atomicOr encodes lock *(u64 *)(dst + off) |= src. The asm package of
// cilium/ebpf v0.22.0 marshals its OrAtomic with an immediate of 0, which
// the kernel reads as an atomic add and which corrupts a bit mask on the
// second set of a bit. The immediate is set here too, so the encoding is
// right whichever of the two fields a version of the library writes.
func atomicOr(dst, src asm.Register, off int16) asm.Instruction {
	ins := asm.OrAtomic.Mem(dst, src, asm.DWord, off)
	ins.Constant = bpfOr
	return ins
}

// atomicAdd encodes lock *(u64 *)(dst + off) += src (immediate 0 is the
// kernel's BPF_ADD, which the library does get right).
func atomicAdd(dst, src asm.Register, off int16) asm.Instruction {
	ins := asm.AddAtomic.Mem(dst, src, asm.DWord, off)
	ins.Constant = bpfAdd
	return ins
}

// The kernel's operation codes in the immediate of a BPF_ATOMIC store.
const (
	bpfAdd = 0x00
	bpfOr  = 0x40
)

// off is the byte offset of word w of an entry.
func off(w int) int16 { return int16(w * 8) }

// program generates the recorder. Registers kept across helper calls:
// R6 the tracepoint context, R7 the watched entry, R8 the capability, R9
// the check's result.
func program(p progParams) (asm.Instructions, error) {
	b := &builder{}
	const (
		exit  = "exit"
		found = "found"
	)

	// Levels of watched cgroups; nothing watched is the fast way out.
	b.emit(asm.Mov.Reg(asm.R6, asm.R1))
	viaTask := p.taskBTF
	if viaTask && p.realCred < 0 {
		return nil, fmt.Errorf("reading the task through its BTF type needs the offset of real_cred")
	}
	if viaTask {
		emitTaskLookup(b, maps{p.cgroups, p.slots}, p.config, p.cgroup, found, exit)
	} else {
		// Without the task's own cgroup every look-up is an ancestor's:
		// the cgroups map alone (see emitTaskLookup).
		emitLookup(b, maps{cgroups: p.cgroups}, p.config, found, exit)
	}

	b.label(found)
	b.emit(
		asm.Mov.Reg(asm.R7, asm.R0),
		// Raw tracepoint arguments are u64 slots in TP_PROTO order:
		// cred, target_ns, capable_ns, cap, ret.
		asm.LoadMem(asm.R8, asm.R6, 3*8, asm.Word),
		asm.LoadMem(asm.R9, asm.R6, 4*8, asm.Word),
		asm.JLE.Imm(asm.R8, MaxCap, "capok"),
		asm.Mov.Imm(asm.R1, flagCapRange),
		atomicOr(asm.R7, asm.R1, off(wordFlags)),
		asm.Ja.Label(exit),
	)

	// Checks made for the task with credentials other than its own, such
	// as overlayfs's copy-up with its mounter's (see cred.go).
	b.label("capok")
	switch {
	case viaTask:
		b.emit(
			asm.LoadMem(asm.R0, asm.R10, stTask, asm.DWord),
			asm.LoadMem(asm.R1, asm.R0, int16(p.realCred), asm.DWord),
			asm.LoadMem(asm.R2, asm.R6, 0, asm.DWord),
			asm.JEq.Reg(asm.R1, asm.R2, "owncomm"),
			asm.Mov.Imm(asm.R1, 1),
			atomicAdd(asm.R7, asm.R1, off(wordForeign)),
			asm.Ja.Label(exit),
		)
		b.label("owncomm")
		b.emit(
			asm.LoadMem(asm.R1, asm.R0, int16(p.comm), asm.DWord),
			asm.LoadMem(asm.R2, asm.R0, int16(p.comm+8), asm.DWord),
		)
	case p.realCred < 0:
		b.emit(
			asm.Mov.Imm(asm.R1, flagNoCred),
			atomicOr(asm.R7, asm.R1, off(wordFlags)),
		)
	default:
		b.emit(
			asm.FnGetCurrentTask.Call(),
			asm.Mov.Reg(asm.R3, asm.R0),
			asm.Add.Imm(asm.R3, p.realCred),
			asm.Mov.Reg(asm.R1, asm.R10),
			asm.Add.Imm(asm.R1, stCred),
			asm.Mov.Imm(asm.R2, 8),
			asm.FnProbeReadKernel.Call(),
			asm.JEq.Imm(asm.R0, 0, "credok"),
			asm.Mov.Imm(asm.R1, flagNoCred),
			atomicOr(asm.R7, asm.R1, off(wordFlags)),
			asm.Ja.Label("comm"),
		)
		b.label("credok")
		b.emit(
			asm.LoadMem(asm.R1, asm.R10, stCred, asm.DWord),
			asm.LoadMem(asm.R2, asm.R6, 0, asm.DWord),
			asm.JEq.Reg(asm.R1, asm.R2, "comm"),
			asm.Mov.Imm(asm.R1, 1),
			atomicAdd(asm.R7, asm.R1, off(wordForeign)),
			asm.Ja.Label(exit),
		)
	}

	// The runtime's own processes, by the command name in R1 and R2.
	if !viaTask {
		b.label("comm")
		b.emit(
			asm.Mov.Reg(asm.R1, asm.R10),
			asm.Add.Imm(asm.R1, stComm),
			asm.Mov.Imm(asm.R2, 16),
			asm.FnGetCurrentComm.Call(),
			asm.LoadMem(asm.R1, asm.R10, stComm, asm.DWord),
			asm.LoadMem(asm.R2, asm.R10, stComm+8, asm.DWord),
		)
	}
	b.label("commcmp")
	for i, c := range p.comms {
		next := fmt.Sprintf("comm%d", i+1)
		for w, word := range []asm.Register{asm.R1, asm.R2} {
			if c.mask[w] == 0 {
				continue
			}
			b.emit(
				asm.LoadImm(asm.R3, int64(c.mask[w]), asm.DWord),
				asm.And.Reg(asm.R3, word),
				asm.LoadImm(asm.R4, int64(c.val[w]), asm.DWord),
				asm.JNE.Reg(asm.R3, asm.R4, next),
			)
		}
		b.emit(asm.Ja.Label("runtime"))
		b.label(next)
	}
	b.emit(asm.Ja.Label("sysadmin"))
	b.label("runtime")
	b.emit(
		asm.Mov.Imm(asm.R1, 1),
		atomicAdd(asm.R7, asm.R1, off(wordRuntime)),
		asm.Ja.Label(exit),
	)

	// SYS_ADMIN checks of the overcommit accounting, by the functions on
	// the kernel stack.
	b.label("sysadmin")
	b.emit(asm.JNE.Imm(asm.R8, capSysAdmin, "count"))
	if len(p.overcommit) == 0 {
		b.emit(
			asm.Mov.Imm(asm.R1, flagUnsorted),
			atomicOr(asm.R7, asm.R1, off(wordFlags)),
			asm.Mov.Imm(asm.R1, 1),
			atomicAdd(asm.R7, asm.R1, off(wordUnsorted)),
			asm.Ja.Label(exit),
		)
	} else {
		b.emit(
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, stStack),
			asm.Mov.Imm(asm.R3, 8*stackFrames),
			asm.Mov.Imm(asm.R4, 0), // kernel stack, nothing skipped
			asm.FnGetStack.Call(),
			asm.JSGT.Imm(asm.R0, 0, "stackok"),
			asm.Mov.Imm(asm.R1, flagNoStack),
			atomicOr(asm.R7, asm.R1, off(wordFlags)),
			asm.Ja.Label("count"),
		)
		// Unused frames are zero (the helper clears the rest of the
		// buffer) and match no range.
		b.label("stackok")
		for f := 0; f < stackFrames; f++ {
			b.emit(asm.LoadMem(asm.R1, asm.R10, int16(stStack+8*f), asm.DWord))
			for r, rng := range p.overcommit {
				next := fmt.Sprintf("frame%drange%d", f, r+1)
				b.emit(
					asm.LoadImm(asm.R2, int64(rng.lo), asm.DWord),
					asm.JLT.Reg(asm.R1, asm.R2, next),
					asm.LoadImm(asm.R2, int64(rng.hi), asm.DWord),
					asm.JGE.Reg(asm.R1, asm.R2, next),
					asm.Ja.Label("overcommit"),
				)
				b.label(next)
			}
		}
		b.emit(asm.Ja.Label("count"))
		b.label("overcommit")
		b.emit(
			asm.Mov.Imm(asm.R1, 1),
			atomicAdd(asm.R7, asm.R1, off(wordOvercommit)),
			asm.Ja.Label(exit),
		)
	}

	// A DAC_READ_SEARCH refusal is remembered per CPU with the task that
	// got it. If the same task's next check is a successful DAC_OVERRIDE,
	// the refusal was the permission code's first try and is counted as a
	// fallback too. The two checks are consecutive in generic_permission
	// without a sleep between them; only a migration to another CPU right
	// there loses the pairing (the refusal then stays a refusal).
	b.label("count")
	// The task's identity for the pairing: its thread id, loaded from the
	// task (no helper call) when the program reads the task by its type.
	if viaTask {
		b.emit(
			asm.LoadMem(asm.R1, asm.R10, stTask, asm.DWord),
			asm.LoadMem(asm.R0, asm.R1, int16(p.pid), asm.Word),
		)
	} else {
		b.emit(asm.FnGetCurrentPidTgid.Call())
	}
	b.emit(
		asm.StoreMem(asm.R10, stPid, asm.R0, asm.DWord),
		asm.StoreImm(asm.R10, stKey, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, p.pending),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "record"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.LoadMem(asm.R2, asm.R10, stPid, asm.DWord),
		asm.JNE.Reg(asm.R1, asm.R2, "arm"),
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.JNE.Imm(asm.R8, capDACOverride, "arm"),
		asm.JNE.Imm(asm.R9, 0, "arm"),
		asm.Mov.Imm(asm.R1, 1),
		atomicAdd(asm.R7, asm.R1, off(wordFallbackN+capDACReadSearch)),
	)
	b.label("arm")
	b.emit(
		asm.JNE.Imm(asm.R8, capDACReadSearch, "record"),
		asm.JEq.Imm(asm.R9, 0, "record"),
		asm.LoadMem(asm.R2, asm.R10, stPid, asm.DWord),
		asm.StoreMem(asm.R0, 0, asm.R2, asm.DWord),
	)

	// The check itself: a bit in the mask (set only when not yet set, so
	// the common case is a plain load) and a per-capability counter. The
	// number of checks is the sum of the counters, which user space adds
	// up: one locked instruction less on every watched check.
	b.label("record")
	b.emit(
		asm.Mov.Imm(asm.R2, 1),
		asm.LSh.Reg(asm.R2, asm.R8),
		asm.JNE.Imm(asm.R9, 0, "refused"),
	)
	for _, kind := range []struct {
		name          string
		mask, counter int
	}{
		{"used", wordUsed, wordUsedN},
		{"refused", wordRefused, wordRefusedN},
	} {
		if kind.name != "used" {
			b.label(kind.name)
		}
		b.emit(
			asm.LoadMem(asm.R1, asm.R7, off(kind.mask), asm.DWord),
			asm.And.Reg(asm.R1, asm.R2),
			asm.JNE.Imm(asm.R1, 0, kind.name+"count"),
			atomicOr(asm.R7, asm.R2, off(kind.mask)),
		)
		b.label(kind.name + "count")
		b.emit(
			asm.Mov.Reg(asm.R1, asm.R8),
			asm.LSh.Imm(asm.R1, 3),
			asm.Add.Reg(asm.R1, asm.R7),
			asm.Mov.Imm(asm.R2, 1),
			atomicAdd(asm.R1, asm.R2, off(kind.counter)),
			asm.Ja.Label(exit),
		)
	}

	b.label(exit)
	b.emit(
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
	)
	return b.done()
}

// nopProgram returns 0 and does nothing; Supported loads it.
func nopProgram() asm.Instructions {
	return asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
}
