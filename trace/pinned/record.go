package pinned

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/capshim/capshim/capability"
)

// Record is what the processes of one cgroup did with capabilities while
// it was watched.
type Record struct {
	CgroupID uint64

	// Used holds the capabilities with at least one successful check.
	Used capability.Set
	// Refused holds the capabilities with at least one refused check that
	// was not a fallback (below): the workload asked for them and went
	// without.
	Refused capability.Set
	// Fallback holds the capabilities whose refusals were all first tries
	// that another capability then satisfied in the same access: a
	// DAC_READ_SEARCH refusal followed by a successful DAC_OVERRIDE. With
	// DAC_OVERRIDE dropped, DAC_READ_SEARCH would be needed instead.
	Fallback capability.Set

	// Per-capability counts of checks, indexed by capability number.
	// FallbackCount counts refusals (they are in RefusedCount too) that a
	// fallback made up for.
	UsedCount, RefusedCount, FallbackCount [MaxCap + 1]uint64

	// Checks is the number of checks counted above.
	Checks uint64
	// Overcommit is the number of CAP_SYS_ADMIN checks made by the
	// memory-overcommit accounting, which are not counted above.
	Overcommit uint64
	// Runtime is the number of checks made by the OCI runtime's own
	// processes (runc's or crun's init), not counted above.
	Runtime uint64
	// Foreign is the number of checks made for the cgroup's tasks with
	// credentials other than their own (overlayfs's copy-up under its
	// mounter's), not counted above.
	Foreign uint64

	// Execs are the paths of the executables the cgroup's tasks ran, as
	// the kernel executed them (Harvest fills them in).
	Execs []string

	// Complete is false when checks may be missing or were not sorted;
	// Gaps says why.
	Complete bool
	Gaps     []string
}

// DecodeRecord reads an entry of the cgroups map. misses is the program's
// recursion-miss count now: the kernel skips the program when it would run
// inside itself on one CPU (a check from an interrupt taken while it ran),
// and such a skipped check may have been this cgroup's.
func DecodeRecord(id uint64, b []byte, misses uint64) Record {
	w := func(i int) uint64 { return binary.NativeEndian.Uint64(b[i*8:]) }
	r := Record{
		CgroupID:   id,
		Used:       capability.Set(w(WordUsed)),
		Overcommit: w(WordOvercommit),
		Runtime:    w(WordRuntime),
		Foreign:    w(WordForeign),
	}
	refused := w(WordRefused)
	for c := 0; c <= MaxCap; c++ {
		r.UsedCount[c] = w(WordUsedN + c)
		r.RefusedCount[c] = w(WordRefusedN + c)
		r.FallbackCount[c] = w(WordFallbackN + c)
		r.Checks += r.UsedCount[c] + r.RefusedCount[c]
		if refused&(1<<c) == 0 {
			continue
		}
		if r.FallbackCount[c] < r.RefusedCount[c] {
			r.Refused = r.Refused.Add(capability.Cap(c))
		} else {
			r.Fallback = r.Fallback.Add(capability.Cap(c))
		}
	}
	flags := w(WordFlags)
	if flags&FlagCapRange != 0 {
		r.Gaps = append(r.Gaps, fmt.Sprintf("checks of capabilities above %d were not recorded", MaxCap))
	}
	if flags&FlagNoStack != 0 {
		r.Gaps = append(r.Gaps, "some SYS_ADMIN checks had no readable kernel stack and were counted even if they were the overcommit accounting's")
	}
	if flags&FlagUnsorted != 0 {
		r.Gaps = append(r.Gaps, fmt.Sprintf("%d SYS_ADMIN checks were not recorded: the overcommit functions of this kernel are unknown", w(WordUnsorted)))
	}
	if flags&FlagNoCred != 0 {
		r.Gaps = append(r.Gaps, "checks made with other credentials than the task's own (an overlay file system's copy-up) could not be told apart and were counted")
	}
	if flags&FlagExecOverflow != 0 {
		r.Gaps = append(r.Gaps, fmt.Sprintf("more than %d executables were run: the file capabilities of the rest are not known", MaxExecs))
	}
	if flags&FlagExecPath != 0 {
		r.Gaps = append(r.Gaps, fmt.Sprintf("the path of an executable could not be read or was longer than %d bytes: its file capabilities are not known", ExecPathLen-1))
	}
	if misses > w(WordMisses) {
		r.Gaps = append(r.Gaps, fmt.Sprintf("the kernel skipped the recorder %d times (checks nested in a check) while this cgroup was watched", misses-w(WordMisses)))
	}
	r.Complete = len(r.Gaps) == 0
	return r
}

// String summarises r on one line.
func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cgroup %d: used %s; refused %s", r.CgroupID, r.Used, r.Refused)
	if r.Fallback != 0 {
		fmt.Fprintf(&b, "; fallback %s", r.Fallback)
	}
	fmt.Fprintf(&b, " (%d checks, %d overcommit, %d runtime, %d other credentials)", r.Checks, r.Overcommit, r.Runtime, r.Foreign)
	if !r.Complete {
		fmt.Fprintf(&b, "; incomplete: %s", strings.Join(r.Gaps, "; "))
	}
	return b.String()
}

// NewEntry is the value Watch inserts.
func NewEntry(level int, misses uint64) []byte {
	b := make([]byte, ValueSize)
	binary.NativeEndian.PutUint64(b[WordLevel*8:], uint64(level))
	binary.NativeEndian.PutUint64(b[WordMisses*8:], misses)
	return b
}

// MergeEntry adds to the entry dst what the entry src recorded: masks and
// flags are joined, counts added; the level and the misses at Watch are
// dst's, which Watch wrote to both.
func MergeEntry(dst, src []byte) {
	for w := 0; w < ValueWords; w++ {
		d, s := dst[w*8:w*8+8], src[w*8:w*8+8]
		switch w {
		case WordLevel, WordMisses:
		case WordUsed, WordRefused, WordFlags:
			binary.NativeEndian.PutUint64(d, binary.NativeEndian.Uint64(d)|binary.NativeEndian.Uint64(s))
		default:
			binary.NativeEndian.PutUint64(d, binary.NativeEndian.Uint64(d)+binary.NativeEndian.Uint64(s))
		}
	}
}

// EntryLevel reads the level Watch stored.
func EntryLevel(b []byte) int {
	return int(binary.NativeEndian.Uint64(b[WordLevel*8:]))
}
