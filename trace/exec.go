package trace

import (
	"fmt"

	"github.com/capshim/capshim/trace/pinned"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// The kernel refuses to execute a binary whose file capabilities (the
// security.capability attribute, with its effective bit) are not all in
// the bounding set, and it does so without a capability check: a profile
// made of checks alone would lack them, and the workload would fail under
// enforce although learning saw nothing wrong. So a second program, on the
// raw tracepoint sched_process_exec, records the path of every executable
// a watched cgroup's tasks run (bounded per cgroup), and user space reads
// those files' capabilities when the container is deleted.

// execParams is what the exec program is generated from.
type execParams struct {
	cgroups, config, execs int // map file descriptors
	// interp is the offset of interp in linux_binprm: the path of what
	// the kernel finally executed (the interpreter of a script).
	interp int32
}

// Stack layout of the exec program, offsets from R10.
const (
	xstKey  = -8                          // u64 cgroup id looked up
	xstPtr  = -16                         // the interp pointer read from the bprm
	xstVal  = -24                         // u64 value of the execs entry
	xstExec = xstVal - pinned.ExecKeySize // the execs key: cgroup id, path
)

// interpOffset is the byte offset of interp in the running kernel's
// linux_binprm, from its BTF.
func interpOffset() (int32, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return 0, fmt.Errorf("reading the kernel's BTF: %w", err)
	}
	var bprm *btf.Struct
	if err := spec.TypeByName("linux_binprm", &bprm); err != nil {
		return 0, fmt.Errorf("the kernel's BTF: %w", err)
	}
	return pointerOffset(bprm, "interp")
}

// emitLookup finds the watched entry of the current task: its ancestor
// at each watched level, looked up in the map, so that a task in a cgroup
// nested below a watched one is found too. The deepest level goes first,
// so that of two watched cgroups one inside the other, the inner one gets
// its tasks' checks. A level mask below the level's bit has nothing at
// this level or deeper: one comparison skips it. Every capability check
// on the host runs this, so before the hash lookup the ancestor's id is
// tested against the config's filter of watched ids (bit id mod 64): most
// tasks of the host are let go after a shift and an AND. R7 and R9 hold
// the levels and the filter and are clobbered; on a hit R0 is the entry
// and the code jumps to found, with the cgroup id at stKey; otherwise to
// exit.
func emitLookup(b *builder, m maps, config int, found, exit string) {
	emitConfig(b, config, exit)
	emitLevelLoop(b, m, found, exit)
}

// maps are the file descriptors of the maps a look-up tries: the slots
// (none when 0) and then the cgroups.
type maps struct {
	cgroups, slots int
}

// emitConfig loads the watched levels into R7 and the filter of watched
// ids into R9, and goes to exit when nothing is watched.
func emitConfig(b *builder, config int, exit string) {
	b.emit(
		asm.StoreImm(asm.R10, stKey, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, config),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, exit),
		asm.LoadMem(asm.R7, asm.R0, off(cfgLevels), asm.DWord),
		asm.JEq.Imm(asm.R7, 0, exit),
		asm.LoadMem(asm.R9, asm.R0, off(pinned.CfgFilter), asm.DWord),
	)
}

// emitTry looks up the cgroup id in R0: it goes to miss when the filter
// rules it out, to found with the entry in R0 when it is watched, and on
// otherwise, with R1 to R5 clobbered.
func emitTry(b *builder, m maps, miss, found string) {
	b.emit(
		asm.StoreMem(asm.R10, stKey, asm.R0, asm.DWord),
		asm.And.Imm(asm.R0, 63),
		asm.Mov.Imm(asm.R1, 1),
		asm.LSh.Reg(asm.R1, asm.R0),
		asm.And.Reg(asm.R1, asm.R9),
		asm.JEq.Imm(asm.R1, 0, miss),
	)
	if m.slots != 0 {
		// The slot first: the kernel computes an array element's
		// address in line, without the hash's call and cache lines. It
		// is this cgroup's when its first word is the id.
		hash := b.unique("hash")
		b.emit(
			asm.LoadMem(asm.R1, asm.R10, stKey, asm.DWord),
			asm.And.Imm(asm.R1, pinned.Slots-1),
			asm.StoreMem(asm.R10, stSlot, asm.R1, asm.Word),
			asm.LoadMapPtr(asm.R1, m.slots),
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, stSlot),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, hash),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.LoadMem(asm.R2, asm.R10, stKey, asm.DWord),
			asm.JNE.Reg(asm.R1, asm.R2, hash),
			asm.Add.Imm(asm.R0, 8),
			asm.Ja.Label(found),
		)
		b.label(hash)
	}
	b.emit(
		asm.LoadMapPtr(asm.R1, m.cgroups),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, stKey),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, found),
	)
}

// emitAbove sets R1 to the levels of R7 above (shallower than) the level
// in R8.
func emitAbove(b *builder) {
	b.emit(
		asm.Mov.Imm(asm.R1, 1),
		asm.LSh.Reg(asm.R1, asm.R8),
		asm.Sub.Imm(asm.R1, 1),
		asm.And.Reg(asm.R1, asm.R7),
	)
}

// emitLevelLoop tries the task's ancestor at each level in the mask R7,
// deepest first, against the filter in R9 and then the map.
func emitLevelLoop(b *builder, m maps, found, exit string) {
	for lvl := maxLevel; lvl >= 1; lvl-- {
		next := fmt.Sprintf("level%d", lvl-1)
		b.emit(
			asm.JLT.Imm(asm.R7, 1<<lvl, next),
			asm.Mov.Reg(asm.R1, asm.R7),
			asm.And.Imm(asm.R1, 1<<lvl),
			asm.JEq.Imm(asm.R1, 0, next),
			asm.Mov.Imm(asm.R1, int32(lvl)),
			asm.FnGetCurrentAncestorCgroupId.Call(),
		)
		emitTry(b, m, next, found)
		b.label(next)
	}
	b.emit(asm.Ja.Label(exit))
}

// taskCgroup holds the offsets through which a program reads the current
// task's own cgroup v2 (task_struct.cgroups->dfl_cgrp), its level and its
// id (cgroup.kn->id), from the kernel's BTF.
type taskCgroup struct {
	cgroups, dflCgrp, level, kn, id int16
	// parent and owner lead from a cgroup to its parent:
	// cgroup.self.parent (a cgroup_subsys_state) and that state's cgroup.
	parent, owner int16
}

// taskCgroupOffsets reads those offsets from the running kernel's BTF.
func taskCgroupOffsets() (taskCgroup, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return taskCgroup{}, fmt.Errorf("reading the kernel's BTF: %w", err)
	}
	var tc taskCgroup
	for _, f := range []struct {
		typ, member string
		off         *int16
	}{
		{"task_struct", "cgroups", &tc.cgroups},
		{"css_set", "dfl_cgrp", &tc.dflCgrp},
		{"cgroup", "level", &tc.level},
		{"cgroup", "kn", &tc.kn},
		{"kernfs_node", "id", &tc.id},
		{"cgroup", "self", &tc.parent},
		{"cgroup_subsys_state", "cgroup", &tc.owner},
	} {
		var st *btf.Struct
		if err := spec.TypeByName(f.typ, &st); err != nil {
			return taskCgroup{}, fmt.Errorf("the kernel's BTF: %w", err)
		}
		bits, m, ok := findMember(st.Members, f.member, 0)
		if !ok || m.BitfieldSize != 0 || bits%32 != 0 || bits/8 > 1<<14 {
			return taskCgroup{}, fmt.Errorf("%s.%s is not a plain aligned member", f.typ, f.member)
		}
		*f.off = int16(bits / 8)
		if f.member == "self" {
			// self is the cgroup's own state, embedded: its parent
			// pointer is at self + css.parent.
			var css *btf.Struct
			if err := spec.TypeByName("cgroup_subsys_state", &css); err != nil {
				return taskCgroup{}, fmt.Errorf("the kernel's BTF: %w", err)
			}
			pbits, pm, ok := findMember(css.Members, "parent", 0)
			if !ok || pm.BitfieldSize != 0 || pbits%64 != 0 {
				return taskCgroup{}, fmt.Errorf("cgroup_subsys_state.parent is not a plain aligned member")
			}
			*f.off += int16(pbits / 8)
			continue
		}
		size := 8
		if f.member == "level" {
			size = 4
		}
		if sz, err := btf.Sizeof(m.Type); err != nil || sz != size {
			return taskCgroup{}, fmt.Errorf("%s.%s is not %d bytes wide", f.typ, f.member, size)
		}
	}
	return tc, nil
}

// emitTaskLookup is emitLookup for a program that may read the task
// through its BTF type. It reads the task's own cgroup, its id and level
// once: when that level is watched, the task's own cgroup is its ancestor
// there and needs no look-up; levels deeper than the task's cannot hold
// its ancestor and are left out; only the levels above it take the
// ancestor look-up (a helper call). On a host whose containers sit deeper
// than its services, most checks of the host end there. The task pointer
// is left at stTask for the rest of the program.
func emitTaskLookup(b *builder, m maps, config int, tc taskCgroup, found, exit string) {
	emitConfig(b, config, exit)
	b.emit(
		asm.FnGetCurrentTaskBtf.Call(),
		asm.StoreMem(asm.R10, stTask, asm.R0, asm.DWord),
		asm.LoadMem(asm.R3, asm.R0, tc.cgroups, asm.DWord),
		asm.LoadMem(asm.R3, asm.R3, tc.dflCgrp, asm.DWord),
		asm.LoadMem(asm.R8, asm.R3, tc.level, asm.Word),
		// Deeper than any level that can be watched: the ancestor
		// look-up at each watched level, as without the task's type.
		asm.JGT.Imm(asm.R8, maxLevel, "deep"),
	)
	// The task's own cgroup, R3 (kept at stCgrp across a map look-up),
	// then the levels above it, walking up.
	emitTryCgroup(b, m, tc, "above", found)
	// The levels above and the ancestor look-up try the cgroups map
	// alone: a task below its container's cgroup is rare, and every
	// look-up that may end in either map doubles what the verifier walks
	// after it (a load takes a sixth longer with the slots at every
	// level). What such a task's checks add to the cgroups entry, Harvest
	// adds to the slot's.
	m = maps{cgroups: m.cgroups}
	b.label("above")
	emitAbove(b)
	b.emit(
		asm.Mov.Reg(asm.R7, asm.R1),
		asm.JEq.Imm(asm.R7, 0, exit),
	)
	// Each step goes one level up; R8 is the level R3 is at. After
	// walkSteps, the levels still above go to the ancestor look-up: a task
	// that deep below its container is rare, and each step is more for the
	// verifier to follow at load.
	for step := 0; step < walkSteps; step++ {
		next := fmt.Sprintf("up%d", step+1)
		// Nothing watched above this level: done.
		emitAbove(b)
		b.emit(
			asm.JEq.Imm(asm.R1, 0, exit),
			asm.LoadMem(asm.R3, asm.R3, tc.parent, asm.DWord),
			asm.LoadMem(asm.R3, asm.R3, tc.owner, asm.DWord),
			asm.Sub.Imm(asm.R8, 1),
		)
		emitTryCgroup(b, m, tc, next, found)
		b.label(next)
	}
	emitAbove(b)
	b.emit(
		asm.Mov.Reg(asm.R7, asm.R1),
		asm.JEq.Imm(asm.R7, 0, exit),
	)
	b.label("deep")
	emitLevelLoop(b, m, found, exit)
}

// emitTryCgroup tries the cgroup in R3, at the level in R8, when that
// level is watched: it goes to found with the entry, or to miss with R3
// and R8 as they were.
func emitTryCgroup(b *builder, m maps, tc taskCgroup, miss, found string) {
	b.emit(
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.RSh.Reg(asm.R1, asm.R8),
		asm.And.Imm(asm.R1, 1),
		asm.JEq.Imm(asm.R1, 0, miss),
		asm.StoreMem(asm.R10, stCgrp, asm.R3, asm.DWord),
		asm.LoadMem(asm.R0, asm.R3, tc.kn, asm.DWord),
		asm.LoadMem(asm.R0, asm.R0, tc.id, asm.DWord),
	)
	emitTry(b, m, miss, found)
	b.emit(asm.LoadMem(asm.R3, asm.R10, stCgrp, asm.DWord))
}

// walkSteps is how many levels emitTaskLookup climbs from a task's own
// cgroup before it leaves the rest to the ancestor look-up.
const walkSteps = 8

// execProgram generates the exec recorder. R6 is the tracepoint context,
// R8 the watched entry.
func execProgram(p execParams) (asm.Instructions, error) {
	b := &builder{}
	const (
		exit  = "exit"
		found = "found"
	)
	b.emit(asm.Mov.Reg(asm.R6, asm.R1))
	// Executions are few: the cgroups map alone, without the slots.
	emitLookup(b, maps{cgroups: p.cgroups}, p.config, found, exit)

	b.label(found)
	b.emit(
		asm.Mov.Reg(asm.R8, asm.R0),
		// A plain read of the count: tasks of one cgroup exec'ing on
		// several CPUs at once may overshoot the bound by a few; the map's
		// own size is the hard bound.
		asm.LoadMem(asm.R1, asm.R8, off(pinned.WordExecs), asm.DWord),
		asm.JLT.Imm(asm.R1, pinned.MaxExecs, "room"),
		asm.Mov.Imm(asm.R1, pinned.FlagExecOverflow),
		atomicOr(asm.R8, asm.R1, off(wordFlags)),
		asm.Ja.Label(exit),
	)
	b.label("room")
	// The key: the cgroup id, then the path padded with zeros, so that one
	// path is one key.
	b.emit(asm.Mov.Imm(asm.R1, 0))
	for o := 8; o < pinned.ExecKeySize; o += 8 {
		b.emit(asm.StoreMem(asm.R10, int16(xstExec+o), asm.R1, asm.DWord))
	}
	b.emit(
		asm.LoadMem(asm.R1, asm.R10, stKey, asm.DWord),
		asm.StoreMem(asm.R10, xstExec, asm.R1, asm.DWord),
		// Raw tracepoint arguments: task, old_pid, bprm.
		asm.LoadMem(asm.R3, asm.R6, 2*8, asm.DWord),
		asm.Add.Imm(asm.R3, p.interp),
		asm.Mov.Reg(asm.R1, asm.R10),
		asm.Add.Imm(asm.R1, xstPtr),
		asm.Mov.Imm(asm.R2, 8),
		asm.FnProbeReadKernel.Call(),
		asm.JNE.Imm(asm.R0, 0, "badpath"),
		asm.LoadMem(asm.R3, asm.R10, xstPtr, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R10),
		asm.Add.Imm(asm.R1, xstExec+8),
		asm.Mov.Imm(asm.R2, pinned.ExecPathLen),
		asm.FnProbeReadKernelStr.Call(),
		asm.JSLE.Imm(asm.R0, 1, "badpath"),
		// The whole buffer used: the path may be cut short. It is kept
		// (its start tells the evidence something), and the record says so.
		asm.JLT.Imm(asm.R0, pinned.ExecPathLen, "insert"),
		asm.Mov.Imm(asm.R1, pinned.FlagExecPath),
		atomicOr(asm.R8, asm.R1, off(wordFlags)),
	)
	b.label("insert")
	b.emit(
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreMem(asm.R10, xstVal, asm.R1, asm.DWord),
		asm.LoadMapPtr(asm.R1, p.execs),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, xstExec),
		asm.Mov.Reg(asm.R3, asm.R10),
		asm.Add.Imm(asm.R3, xstVal),
		asm.Mov.Imm(asm.R4, 1), // BPF_NOEXIST: an executable run again is not counted again
		asm.FnMapUpdateElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "added"),
		// -EEXIST is a path seen before; anything else (the map full) is a
		// path lost.
		asm.JEq.Imm(asm.R0, -17, exit),
		asm.Mov.Imm(asm.R1, pinned.FlagExecOverflow),
		atomicOr(asm.R8, asm.R1, off(wordFlags)),
		asm.Ja.Label(exit),
	)
	b.label("badpath")
	b.emit(
		asm.Mov.Imm(asm.R1, pinned.FlagExecPath),
		atomicOr(asm.R8, asm.R1, off(wordFlags)),
		asm.Ja.Label(exit),
	)
	b.label("added")
	b.emit(
		asm.Mov.Imm(asm.R1, 1),
		atomicAdd(asm.R8, asm.R1, off(pinned.WordExecs)),
	)
	b.label(exit)
	b.emit(
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
	)
	return b.done()
}
