// Package capability is capshim's vocabulary of Linux capabilities: their
// numbers and canonical names, sets of them as bit masks, the engines'
// default sets, and the two ways a name is read: exactly, as runtimes read
// a spec, and leniently, as people write a policy or a request.
package capability

import (
	"math/bits"
	"strconv"
	"strings"
)

// Cap is a capability number (0 is CAP_CHOWN).
type Cap uint8

// The capabilities Linux defines, by number.
const (
	Chown Cap = iota
	DACOverride
	DACReadSearch
	Fowner
	Fsetid
	Kill
	Setgid
	Setuid
	Setpcap
	LinuxImmutable
	NetBindService
	NetBroadcast
	NetAdmin
	NetRaw
	IPCLock
	IPCOwner
	SysModule
	SysRawio
	SysChroot
	SysPtrace
	SysPacct
	SysAdmin
	SysBoot
	SysNice
	SysResource
	SysTime
	SysTTYConfig
	Mknod
	Lease
	AuditWrite
	AuditControl
	Setfcap
	MACOverride
	MACAdmin
	Syslog
	WakeAlarm
	BlockSuspend
	AuditRead
	Perfmon
	BPF
	CheckpointRestore

	// NumCaps is the number of capabilities Linux defines today.
	NumCaps = 41
)

// names holds the canonical name of every capability, indexed by its
// number. It is a fixed array, so it costs nothing at program start.
var names = [NumCaps]string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// String returns the canonical CAP_UPPER name.
func (c Cap) String() string {
	if int(c) < NumCaps {
		return names[c]
	}
	return "CAP_" + strconv.Itoa(int(c))
}

// Set is a set of capabilities as a bit mask: bit n is capability n.
type Set uint64

// All holds every capability Linux defines.
const All Set = 1<<NumCaps - 1

// The engines' default sets. They are constants, so nothing is computed at
// program start.
const (
	// OCIDefault is what `runc spec` writes, and capshim's default.
	OCIDefault Set = 1<<AuditWrite | 1<<Kill | 1<<NetBindService
	// PodmanDefault is Podman's default set (11 capabilities).
	PodmanDefault Set = 1<<Chown | 1<<DACOverride | 1<<Fowner | 1<<Fsetid | 1<<Kill |
		1<<NetBindService | 1<<Setfcap | 1<<Setgid | 1<<Setpcap | 1<<Setuid | 1<<SysChroot
	// DockerDefault is the default of Docker and containerd (14
	// capabilities).
	DockerDefault Set = PodmanDefault | 1<<Mknod | 1<<NetRaw | 1<<AuditWrite
)

// Of returns the set of the given capabilities.
func Of(caps ...Cap) Set {
	var s Set
	for _, c := range caps {
		s = s.Add(c)
	}
	return s
}

// Has reports whether c is in s.
func (s Set) Has(c Cap) bool { return s&(1<<c) != 0 }

// Add returns s with c added.
func (s Set) Add(c Cap) Set { return s | 1<<c }

// Len is the number of capabilities in s.
func (s Set) Len() int { return bits.OnesCount64(uint64(s)) }

// Caps lists the members of s in capability-number order.
func (s Set) Caps() []Cap {
	out := make([]Cap, 0, s.Len())
	for c := Cap(0); c < NumCaps; c++ {
		if s.Has(c) {
			out = append(out, c)
		}
	}
	return out
}

// Names lists the canonical names of the members of s in number order.
func (s Set) Names() []string {
	out := make([]string, 0, s.Len())
	for _, c := range s.Caps() {
		out = append(out, c.String())
	}
	return out
}

// String renders s as a comma list of names, or "none".
func (s Set) String() string {
	if s == 0 {
		return "none"
	}
	return strings.Join(s.Names(), ",")
}

// Exact returns the capability whose canonical name is exactly name, the
// way runc looks names up in a spec: "CAP_KILL" is known, "kill" and
// "cap_kill" are not.
func Exact(name string) (Cap, bool) {
	if len(name) < 5 || name[:4] != "CAP_" {
		return 0, false
	}
	for i := range names {
		if names[i] == name {
			return Cap(i), true
		}
	}
	return 0, false
}

// Lookup parses a capability name given by a person (policy, annotation,
// command line): case-insensitive, with or without the CAP_ prefix, with
// surrounding blanks ignored.
func Lookup(name string) (Cap, bool) {
	name = strings.TrimSpace(name)
	if len(name) >= 4 && strings.EqualFold(name[:4], "CAP_") {
		name = name[4:]
	}
	if name == "" {
		return 0, false
	}
	for i := range names {
		if strings.EqualFold(names[i][4:], name) {
			return Cap(i), true
		}
	}
	return 0, false
}

// ParseList parses names with Lookup. It returns the set of known names and
// the names it did not know, in input order.
func ParseList(list []string) (set Set, unknown []string) {
	for _, n := range list {
		if c, ok := Lookup(n); ok {
			set = set.Add(c)
		} else {
			unknown = append(unknown, n)
		}
	}
	return set, unknown
}

// ParseCommaList splits a comma-separated request such as
// "CAP_CHOWN, setuid" and parses it with ParseList. Empty items are ignored.
func ParseCommaList(list string) (set Set, unknown []string) {
	for _, item := range strings.Split(list, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		if c, ok := Lookup(item); ok {
			set = set.Add(c)
		} else {
			unknown = append(unknown, strings.TrimSpace(item))
		}
	}
	return set, unknown
}
