package trace

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
)

// overcommitFuncs are the kernel functions whose CAP_SYS_ADMIN check only
// tunes the memory-overcommit heuristic: security_vm_enough_memory_mm runs
// the LSM hook cap_vm_enough_memory, which asks for SYS_ADMIN without
// auditing; neither checks any other capability.
var overcommitFuncs = []string{"security_vm_enough_memory_mm", "cap_vm_enough_memory"}

// maxFuncSize bounds what a resolved function may span; a larger range
// means the symbol table was not what it seemed (no next symbol, hidden
// addresses) and the range is not used.
const maxFuncSize = 1 << 16

// kernelRanges reads the text ranges of names (and of compiler clones of
// them such as name.cold or name.constprop.0) from /proc/kallsyms. It fails
// when none of them is there.
func kernelRanges(names []string) ([]addrRange, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, fmt.Errorf("reading kernel symbols: %w", err)
	}
	defer f.Close()
	return parseRanges(f, names)
}

// parseRanges finds the functions of names in a kallsyms listing. The
// kernel's own symbols come in address order (the build sorts them), so a
// function ends at the next line with a higher address, and the reading
// stops once every name has its end: the listing takes tens of
// milliseconds to generate in full. A compiler clone listed after that
// point is not found; the clones (.cold parts) hold no capability check.
func parseRanges(r io.Reader, names []string) ([]addrRange, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	var found []addrRange
	ended := func() bool {
		done := 0
		for _, rg := range found {
			if rg.hi == 0 {
				return false
			}
			if want[rg.name] {
				done++
			}
		}
		return done == len(want)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		// address type name [module]
		sp := bytes.IndexByte(line, ' ')
		if sp <= 0 || len(line) < sp+3 || line[sp+2] != ' ' {
			continue
		}
		addr, err := strconv.ParseUint(string(line[:sp]), 16, 64)
		if err != nil || addr == 0 {
			continue
		}
		for i := range found {
			if found[i].hi == 0 && addr > found[i].lo {
				found[i].hi = addr
			}
		}
		if len(found) > 0 && ended() {
			break
		}
		if typ := line[sp+1]; typ != 't' && typ != 'T' {
			continue
		}
		name := line[sp+3:]
		if tab := bytes.IndexByte(name, '\t'); tab >= 0 {
			name = name[:tab]
		}
		base := name
		if dot := bytes.IndexByte(name, '.'); dot > 0 {
			base = name[:dot]
		}
		if want[string(base)] {
			found = append(found, addrRange{name: string(name), lo: addr})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading kernel symbols: %w", err)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("kernel symbols %v not found (addresses hidden?)", names)
	}
	ok := found[:0]
	for _, rg := range found {
		if rg.hi != 0 && rg.hi-rg.lo <= maxFuncSize {
			ok = append(ok, rg)
		}
	}
	// One of them is enough: a kernel may inline the hook into its caller.
	if len(ok) == 0 {
		return nil, fmt.Errorf("kernel symbols %v: no plausible end", names)
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].lo < ok[j].lo })
	return ok, nil
}
