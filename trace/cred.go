package trace

import (
	"fmt"

	"github.com/cilium/ebpf/btf"
)

// A capability check is the task's own when it is made with the task's
// own credentials, task_struct.real_cred. The kernel also checks
// capabilities on a task's behalf with other credentials it puts in place
// for a while (override_creds): overlayfs, the root file system of every
// engine's containers, copies a file up and writes its upper and work
// directories with the credentials of whoever mounted it, so a container
// that writes a file of its image shows SYS_ADMIN, DAC_OVERRIDE and more
// used, none of which it holds or needs. The program compares the
// tracepoint's credentials with real_cred and does not count the others.

// realCredOffset is the byte offset of real_cred in the running kernel's
// task_struct, from its BTF.
func realCredOffset() (int32, error) {
	task, err := kernelTask()
	if err != nil {
		return 0, err
	}
	return pointerOffset(task, "real_cred")
}

// commOffset is the byte offset of comm, the task's 16-byte command name,
// in the running kernel's task_struct, from its BTF.
func commOffset() (int32, error) {
	return taskMember("comm", "an aligned 16-byte array", func(t btf.Type, bits btf.Bits) bool {
		a, isArray := t.(*btf.Array)
		return isArray && a.Nelems == 16 && bits%64 == 0 && bits/8 <= 1<<15-16
	})
}

// pidOffset is the byte offset of pid (the thread id, a 32-bit pid_t) in
// task_struct, which a program reading the task by its BTF type loads
// instead of calling bpf_get_current_pid_tgid on every watched check.
func pidOffset() (int32, error) {
	return taskMember("pid", "an aligned 32-bit integer", func(t btf.Type, bits btf.Bits) bool {
		i, isInt := t.(*btf.Int)
		return isInt && i.Size == 4 && bits%32 == 0 && bits/8 <= 1<<15-4
	})
}

// taskMember is the byte offset of the member name of task_struct, whose
// underlying type and bit offset must pass ok (want says what ok wants).
func taskMember(name, want string, ok func(t btf.Type, bits btf.Bits) bool) (int32, error) {
	task, err := kernelTask()
	if err != nil {
		return 0, err
	}
	bits, m, found := findMember(task.Members, name, 0)
	if !found {
		return 0, fmt.Errorf("%s has no member %s", task.Name, name)
	}
	if !ok(btf.UnderlyingType(m.Type), bits) {
		return 0, fmt.Errorf("%s.%s at bit %d is not %s", task.Name, name, bits, want)
	}
	return int32(bits / 8), nil
}

// kernelTask is task_struct in the running kernel's BTF.
func kernelTask() (*btf.Struct, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("reading the kernel's BTF: %w", err)
	}
	var task *btf.Struct
	if err := spec.TypeByName("task_struct", &task); err != nil {
		return nil, fmt.Errorf("the kernel's BTF: %w", err)
	}
	return task, nil
}

// pointerOffset finds the pointer member name of s, also inside the
// anonymous structs and unions a kernel built with randomised layouts
// wraps its fields in, and returns its byte offset.
func pointerOffset(s *btf.Struct, name string) (int32, error) {
	bits, m, ok := findMember(s.Members, name, 0)
	if !ok {
		return 0, fmt.Errorf("%s has no member %s", s.Name, name)
	}
	if _, isPtr := btf.UnderlyingType(m.Type).(*btf.Pointer); !isPtr || m.BitfieldSize != 0 {
		return 0, fmt.Errorf("%s.%s is not a pointer", s.Name, name)
	}
	if bits%64 != 0 || bits/8 > 1<<20 {
		return 0, fmt.Errorf("%s.%s at bit %d is not an aligned pointer", s.Name, name, bits)
	}
	return int32(bits / 8), nil
}

func findMember(members []btf.Member, name string, base btf.Bits) (btf.Bits, btf.Member, bool) {
	for _, m := range members {
		if m.Name == name {
			return base + m.Offset, m, true
		}
		if m.Name != "" {
			continue
		}
		var inner []btf.Member
		switch t := btf.UnderlyingType(m.Type).(type) {
		case *btf.Struct:
			inner = t.Members
		case *btf.Union:
			inner = t.Members
		}
		if bits, found, ok := findMember(inner, name, base+m.Offset); ok {
			return bits, found, true
		}
	}
	return 0, btf.Member{}, false
}
