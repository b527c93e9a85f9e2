package pinned

// Layout of one entry of the cgroups map, in 64-bit words. The program
// updates it in place with atomic instructions (it never inserts: only
// Watch does); user space reads it whole.
const (
	WordUsed       = 0  // bit mask of capabilities whose check succeeded
	WordRefused    = 1  // bit mask of capabilities whose check was refused
	WordChecks     = 2  // checks counted in the masks
	WordFlags      = 3  // Flag* bits: reasons the record is not complete
	WordOvercommit = 4  // SYS_ADMIN checks of the overcommit accounting, not counted
	WordRuntime    = 5  // checks by the runtime's own processes, not counted
	WordUnsorted   = 6  // SYS_ADMIN checks that could not be sorted, not counted
	WordLevel      = 7  // the cgroup's depth, written by Watch
	WordMisses     = 8  // the program's recursion misses when Watch ran
	WordForeign    = 9  // checks made with other credentials than the task's own, not counted
	WordExecs      = 10 // executables recorded in the execs map for this cgroup
	HeaderWords    = 11

	// MaxCap is the highest capability number the program records; checks
	// of higher numbers set FlagCapRange. Linux defines 0 to 40 today.
	MaxCap = 63

	NumSlots      = MaxCap + 1
	WordUsedN     = HeaderWords             // NumSlots counters of successful checks
	WordRefusedN  = WordUsedN + NumSlots    // NumSlots counters of refused checks
	WordFallbackN = WordRefusedN + NumSlots // NumSlots counters of refusals another capability made up for
	ValueWords    = WordFallbackN + NumSlots
	ValueSize     = ValueWords * 8
)

// The slots map is an array the capability program tries before the
// cgroups map for a task in a watched cgroup itself (where a container's
// tasks are; tasks below it are found in the cgroups map): slot
// SlotIndex(id) holds the cgroup id in its first word and an entry of the
// layout above after it. A hash look-up costs a watched check more than
// everything else the program does (the hash, the bucket and the element
// are cache lines the syscall between two checks has evicted), where an
// array slot is one address computed in line. Slots are direct-mapped: a
// watched cgroup whose slot another one holds is counted in its cgroups
// entry. The cgroups map stays what says which cgroups are watched;
// Harvest adds a cgroup's slot to its entry. An array is allocated whole:
// 1024 slots of 1632 bytes are 1.7 MB of kernel memory while the recorder
// is pinned (charged to the memory cgroup of the process that loaded it),
// and with a hundred containers watched about one in ten finds its slot
// taken (an estimate from the count of slots, not a measurement).
const (
	SlotBits  = 10
	Slots     = 1 << SlotBits
	SlotWords = 1 + ValueWords
	SlotSize  = SlotWords * 8
)

// SlotIndex is the slot of cgroup id.
func SlotIndex(id uint64) uint32 { return uint32(id & (Slots - 1)) }

// Flags in WordFlags.
const (
	FlagCapRange     = 1 << iota // a check of a capability above MaxCap
	FlagNoStack                  // the kernel stack of a SYS_ADMIN check could not be read; it was counted
	FlagUnsorted                 // SYS_ADMIN checks were not sorted (no overcommit addresses): WordUnsorted
	FlagNoCred                   // the task's own credentials could not be read (or located): checks were counted whoever's they were
	FlagExecOverflow             // more than MaxExecs executables: the rest were not recorded
	FlagExecPath                 // an executable's path could not be read, or was longer than ExecPathLen
)

// The execs map records, for each watched cgroup, the executables its
// tasks ran: the key is the cgroup id and the path the kernel executed
// (linux_binprm.interp: the interpreter for a script), NUL-padded; the
// value is unused. The kernel checks a binary's file capabilities at exec
// without a capability check the recorder could see, so user space reads
// them from these paths.
const (
	ExecPathLen    = 256
	ExecKeySize    = 8 + ExecPathLen
	MaxExecs       = 256   // executables recorded per cgroup
	MaxExecEntries = 16384 // of all cgroups together
)

// Layout of the one entry of the config map.
const (
	CfgLevels = 0 // bit n set: some watched cgroup is at depth n
	CfgABI    = 1 // ABIVersion of the program that owns the maps
	CfgNoExec = 2 // nonzero: the exec program is not loaded (no BTF to place it)
	CfgFilter = 3 // bit id%64 set: some watched cgroup's id is id (FilterBit)
	CfgWords  = 4
)

// ABIVersion names the layout of the maps and the meaning of their words.
// A capshim that finds pins of another version does not use them.
const ABIVersion = 4

// MaxLevel is the deepest cgroup the program looks for. Levels are tested
// with a 32-bit immediate mask, so they stay below bit 31.
const MaxLevel = 30

// MaxWatched bounds the cgroups watched at once. Entries are allocated
// when inserted (the map is not preallocated), so the bound costs nothing.
const MaxWatched = 4096

// Names of the pins in the pin directory and of the objects in the kernel
// (at most 15 characters). The link of the capability program is pinned
// last: a directory with it has everything.
const (
	PinLink     = "link"
	PinProg     = "prog"
	PinCgroups  = "cgroups"
	PinConfig   = "config"
	PinExecLink = "execlink"
	PinExecProg = "execprog"
	PinExecs    = "execs"
	PinSlots    = "slots"

	ProgName     = "capshim_cap"
	ExecProgName = "capshim_exec"
	CgroupsName  = "capshim_cgroups"
	ConfigName   = "capshim_config"
	ExecsName    = "capshim_execs"
	PendingName  = "capshim_pending"
	SlotsName    = "capshim_slots"
)

// PinNames are the pins of one recorder, the links first: unpinning them
// detaches the programs.
var PinNames = []string{PinLink, PinExecLink, PinProg, PinExecProg, PinCgroups, PinConfig, PinExecs, PinSlots}

// Where the pins and the lock live unless told otherwise. The lock file
// shares capshim's root-only directory on tmpfs with the policy cache.
const (
	DefaultDir  = "/sys/fs/bpf/capshim"
	DefaultLock = "/run/capshim/trace.lock"
)

// FilterBit is the bit of the config's filter for cgroup id: the programs
// look an ancestor up in the map only when its bit is set.
func FilterBit(id uint64) uint64 { return 1 << (id % 64) }
