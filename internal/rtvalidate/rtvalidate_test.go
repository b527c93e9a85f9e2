package rtvalidate

import (
	"os"
	"strings"
	"testing"
)

func TestSpec(t *testing.T) {
	data, err := os.ReadFile("../../spec/testdata/config.runc-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	out := Spec(data, t.TempDir())
	joined := strings.Join(out, "\n")
	// runc spec's ambient set lacks inheritable, and the bundle has no rootfs.
	for _, want := range []string{"ambient capability", "root path"} {
		if !strings.Contains(joined, want) {
			t.Errorf("findings lack %q:\n%s", want, joined)
		}
	}
	if got := Spec([]byte(`{"process":`), "."); len(got) != 1 || !strings.Contains(got[0], "does not decode") {
		t.Errorf("truncated spec: %q", got)
	}
}
