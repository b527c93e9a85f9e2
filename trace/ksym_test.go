package trace

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestKernelRangesCache: the second resolve comes from the cache, which
// holds what /proc/kallsyms said; a cache of another boot is not used.
func TestKernelRangesCache(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("kernel addresses are hidden from other users")
	}
	cache := filepath.Join(t.TempDir(), "kernel-symbols.json")
	first, err := kernelRanges(overcommitFuncs, cache)
	if err != nil {
		t.Skipf("this kernel lists no overcommit functions: %v", err)
	}
	if _, err := os.Stat(cache); err != nil {
		t.Fatalf("no cache written: %v", err)
	}
	again, ok := readRangeCache(cache, cacheKeyForTest(t))
	if !ok || !slices.Equal(again, first) {
		t.Fatalf("cache holds %v, kallsyms said %v", again, first)
	}
	if _, ok := readRangeCache(cache, "another-boot "+strings.Join(overcommitFuncs, ",")); ok {
		t.Fatal("a cache of another boot was used")
	}
	os.WriteFile(cache, []byte("{"), 0o600)
	if r, err := kernelRanges(overcommitFuncs, cache); err != nil || !slices.Equal(r, first) {
		t.Fatalf("a broken cache: %v %v", r, err)
	}
}

func cacheKeyForTest(t *testing.T) string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(boot)) + " " + strings.Join(overcommitFuncs, ",")
}
