package pinned

import (
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
)

// TestMapEachBuckets reads a hash map whose buckets hold more elements
// than a batch asks for: the kernel refuses such a batch (ENOSPC) rather
// than split a bucket, and the reader must ask again for more, not fail
// or skip the bucket. A hundred keys in 128 buckets all sit alone with
// negligible chance (the birthday bound), and batches of one element
// meet every shared bucket.
func TestMapEachBuckets(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 128})
	if err != nil {
		t.Skipf("cannot create a BPF hash map here: %v", err)
	}
	defer m.Close()
	var want []uint64
	for k := uint64(1); k <= 100; k++ {
		if err := m.Put(k, 1000+k); err != nil {
			t.Fatal(err)
		}
		want = append(want, k)
	}
	tests := []struct {
		name     string
		from, to int
	}{
		{name: "batches of one element", from: 1, to: 1},
		{name: "batches of the runtime", from: firstBatch, to: maxBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batchFrom, batchTo = tt.from, tt.to
			defer func() { batchFrom, batchTo = firstBatch, maxBatch }()
			var got []uint64
			err := mapEach(m.FD(), 8, 8, 128, func(key, value []byte) error {
				k := binary.NativeEndian.Uint64(key)
				if v := binary.NativeEndian.Uint64(value); v != 1000+k {
					t.Errorf("key %d: value %d, want %d", k, v, 1000+k)
				}
				got = append(got, k)
				return nil
			})
			if errors.Is(err, errNoBatch) {
				t.Skip("no batched look-ups on this kernel")
			}
			if err != nil {
				t.Fatalf("mapEach: %v", err)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("read %d keys %v, want the 100 keys 1..100", len(got), got)
			}
		})
	}
}
