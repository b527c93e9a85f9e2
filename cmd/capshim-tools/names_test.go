package main

import (
	"io"
	"slices"
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
	slices.Sort(served)
	slices.Sort(listed)
	if !slices.Equal(served, listed) {
		t.Fatalf("capshim-tools serves %v, internal/clinames lists %v", served, listed)
	}
}

// TestFlagsAfterOperands: flags may follow the operands, as in runc.
func TestFlagsAfterOperands(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"bool after file", []string{"capshim", "rewrite", "c.json", "--diff"}, []string{"capshim", "rewrite", "--diff", "c.json"}},
		{"value flag after file", []string{"capshim", "check", "a.json", "--format", "json", "b.json"}, []string{"capshim", "check", "--format", "json", "a.json", "b.json"}},
		{"value with =", []string{"capshim", "caps", "chown", "--format=json"}, []string{"capshim", "caps", "--format=json", "chown"}},
		{"engine then flags", []string{"capshim", "install", "docker", "--set-default", "--file", "/x"}, []string{"capshim", "install", "--set-default", "--file", "/x", "docker"}},
		{"double dash keeps the rest", []string{"capshim", "rewrite", "--", "-odd.json"}, []string{"capshim", "rewrite", "--", "-odd.json"}},
		{"stdin dash is an operand", []string{"capshim", "rewrite", "-", "--diff"}, []string{"capshim", "rewrite", "--diff", "-"}},
		{"unknown command untouched", []string{"capshim", "nope", "x", "--y"}, []string{"capshim", "nope", "x", "--y"}},
	}
	cmds := newApp(io.Discard, io.Discard).Commands
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := flagsFirst(tt.args, cmds); !slices.Equal(got, tt.want) {
				t.Fatalf("flagsFirst(%q) = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}
