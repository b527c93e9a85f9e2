package pinned

import "testing"

// NoBatches makes the map readers take the one-element path of a kernel
// without batched look-ups until the test ends.
func NoBatches(t testing.TB) {
	batchFrom = 0
	t.Cleanup(func() { batchFrom = firstBatch })
}
