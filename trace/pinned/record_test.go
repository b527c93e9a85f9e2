package pinned

import (
	"encoding/binary"
	"testing"
)

func TestMergeEntry(t *testing.T) {
	word := func(b []byte, w int) uint64 { return binary.NativeEndian.Uint64(b[w*8:]) }
	put := func(b []byte, w int, v uint64) { binary.NativeEndian.PutUint64(b[w*8:], v) }
	tests := []struct {
		name          string
		word          int
		dst, src, got uint64
	}{
		{name: "used mask joined", word: WordUsed, dst: 1 << 0, src: 1<<0 | 1<<21, got: 1<<0 | 1<<21},
		{name: "refused mask joined", word: WordRefused, dst: 1 << 7, src: 1 << 1, got: 1<<7 | 1<<1},
		{name: "flags joined", word: WordFlags, dst: FlagNoStack, src: FlagExecPath, got: FlagNoStack | FlagExecPath},
		{name: "level kept", word: WordLevel, dst: 3, src: 3, got: 3},
		{name: "misses at watch kept", word: WordMisses, dst: 5, src: 5, got: 5},
		{name: "runtime checks added", word: WordRuntime, dst: 4, src: 6, got: 10},
		{name: "foreign checks added", word: WordForeign, dst: 0, src: 2, got: 2},
		{name: "executables added", word: WordExecs, dst: 2, src: 0, got: 2},
		{name: "a used counter added", word: WordUsedN + 21, dst: 1, src: 41, got: 42},
		{name: "a refused counter added", word: WordRefusedN + 12, dst: 9, src: 1, got: 10},
		{name: "the last fallback counter added", word: ValueWords - 1, dst: 1, src: 1, got: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst, src := make([]byte, ValueSize), make([]byte, ValueSize)
			put(dst, tt.word, tt.dst)
			put(src, tt.word, tt.src)
			MergeEntry(dst, src)
			if got := word(dst, tt.word); got != tt.got {
				t.Errorf("word %d: %d merged with %d is %d, want %d", tt.word, tt.dst, tt.src, got, tt.got)
			}
			for w := 0; w < ValueWords; w++ {
				if w != tt.word && word(dst, w) != 0 {
					t.Errorf("word %d changed to %d", w, word(dst, w))
				}
			}
		})
	}
}
