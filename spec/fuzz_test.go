package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/capshim/capshim/capability"
)

// FuzzReduce feeds arbitrary bytes to Parse and Reduce. Any input must end
// in a clear error or in an output that satisfies every invariant, checked
// by decoding the output the way runc does and the way crun does: no
// accepted spec gives either runtime more than the target.
func FuzzReduce(f *testing.F) {
	// Seeds: the real fixtures. (Run with -fuzzminimizetime=200x as `make
	// fuzz` does: minimizing a new input from a 9-13 KB seed otherwise takes
	// the whole default minute, showing 0 execs/s.)
	for _, fx := range fixtures {
		data, err := os.ReadFile(filepath.Join("testdata", fx.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"process":{"capabilities":{"bounding":["CAP_KILL","CAP_\u0053YS_ADMIN"],"Bounding":[]}}}`))
	f.Add([]byte(`{"capabilities":{"ambient":["CAP_KILL"],"inheritable":["CAP_KILL"],"permitted":["CAP_KILL"]}}`))
	f.Add([]byte(`{"process\u0000":{"capabilities":{"bounding":["CAP_SYS_ADMIN"]}},"process":{"capabilities":{"bounding":["CAP_KILL"]}}}`))
	f.Add([]byte(`{"process":{"capabilities\u0000x":{"bounding":["CAP_SYS_ADMIN"]},"capabilities":{"bounding":["cap_sys_admin","21","CAP_SYS_ADMIN,x","CAP_SYS_ADMIN\u0000"]}}}`))
	f.Add([]byte(`{"capabilities":{"bounding\u0000":["CAP_SYS_ADMIN"],"bounding":["CAP_KILL"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The kind and the target are derived from the document, so the
		// engine mutates one input only.
		kind := Config
		if bytes.HasPrefix(bytes.TrimSpace(data), []byte(`{"capabilities"`)) {
			kind = Process
		}
		target := uint64(capability.OCIDefault) ^ uint64(len(data)%7)<<uint(len(data)%41)
		doc, err := Parse(data, kind)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		tgt := capability.Set(target) & capability.All
		out, sets := doc.Reduce(tgt)
		runc, err := runcSets(data, kind)
		if err != nil {
			// runc refuses this document; crun might still run it.
			if _, err := checkCrun(doc, data, kind, tgt, out); err != nil {
				t.Fatal(err)
			}
			return
		}
		if got := doc.Sets(); got != runc {
			t.Fatalf("capshim reads %v, runc reads %v", got, runc)
		}
		if err := checkReduce(data, kind, tgt, out, sets); err != nil {
			t.Fatal(err)
		}
	})
}
