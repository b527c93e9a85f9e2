package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/capshim/capshim/internal/atomicfile"
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
//
// Reading the listing costs most of a first load (tens of milliseconds),
// and capshim loads the recorder again whenever it was released, at the
// start of the next recorded container. The addresses change only with a
// reboot, so they are kept in cache, next to the lock and keyed on the
// kernel's boot id; a cache of another boot, or one that cannot be read,
// is resolved again.
func kernelRanges(names []string, cache string) ([]addrRange, error) {
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	key := strings.TrimSpace(string(boot)) + " " + strings.Join(names, ",")
	if cache != "" && len(boot) > 0 {
		if r, ok := readRangeCache(cache, key); ok {
			return r, nil
		}
	}
	r, err := readKallsyms(names)
	if err == nil && cache != "" && len(boot) > 0 {
		writeRangeCache(cache, key, r)
	}
	return r, err
}

// rangeCache is the cache file's content.
type rangeCache struct {
	Key    string      `json:"key"`
	Ranges [][3]string `json:"ranges"` // name, lo, hi (hexadecimal)
}

func readRangeCache(path, key string) ([]addrRange, bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	var st syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st) != nil || st.Uid != 0 || st.Mode&0o022 != 0 {
		return nil, false
	}
	var c rangeCache
	if json.NewDecoder(io.LimitReader(f, 64<<10)).Decode(&c) != nil || c.Key != key || len(c.Ranges) == 0 {
		return nil, false
	}
	out := make([]addrRange, 0, len(c.Ranges))
	for _, r := range c.Ranges {
		lo, err1 := strconv.ParseUint(r[1], 16, 64)
		hi, err2 := strconv.ParseUint(r[2], 16, 64)
		if err1 != nil || err2 != nil || hi <= lo || hi-lo > maxFuncSize {
			return nil, false
		}
		out = append(out, addrRange{name: r[0], lo: lo, hi: hi})
	}
	return out, true
}

// writeRangeCache is best effort: a failure only means reading the
// symbols again next time.
func writeRangeCache(path, key string, ranges []addrRange) {
	c := rangeCache{Key: key}
	for _, r := range ranges {
		c.Ranges = append(c.Ranges, [3]string{r.name, strconv.FormatUint(r.lo, 16), strconv.FormatUint(r.hi, 16)})
	}
	data, err := json.Marshal(c)
	if err != nil {
		return
	}
	atomicfile.Write(path, data, atomicfile.Options{Kind: "kernel symbol cache", Mode: 0o600, NoSync: true})
}

// readKallsyms resolves names in /proc/kallsyms.
func readKallsyms(names []string) ([]addrRange, error) {
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
