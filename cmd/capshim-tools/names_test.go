package main

import (
	"io"
	"slices"
	"sort"
	"testing"

	"github.com/capshim/capshim/internal/clinames"
)

// TestCommandNamesMatch: the capshim binary hands exactly the command
// words this program serves over to it.
func TestCommandNamesMatch(t *testing.T) {
	var served []string
	for _, c := range newApp(io.Discard, io.Discard).Commands {
		served = append(served, c.Name)
		served = append(served, c.Aliases...)
	}
	served = append(served, "help", "h") // urfave/cli's own help command
	listed := slices.Clone(clinames.Names[:])
	sort.Strings(served)
	sort.Strings(listed)
	if !slices.Equal(served, listed) {
		t.Fatalf("capshim-tools serves %v, internal/clinames lists %v", served, listed)
	}
}
