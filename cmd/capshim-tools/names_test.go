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
		{"help after the engine", []string{"capshim", "install", "docker", "--help"}, []string{"capshim", "install", "--help"}},
		{"-h among flags", []string{"capshim", "uninstall", "--file", "/x", "podman", "-h"}, []string{"capshim", "uninstall", "--help"}},
		{"help of a subcommand", []string{"capshim", "policy", "install", "new.toml", "--help"}, []string{"capshim", "policy", "install", "--help"}},
		{"a value that says help stays", []string{"capshim", "install", "docker", "--file", "--help"}, []string{"capshim", "install", "--file", "--help", "docker"}},
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

func TestEditDistance(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{name: "same", a: "install", b: "install", want: 0},
		{name: "letter missing", a: "uninstal", b: "uninstall", want: 1},
		{name: "neighbours swapped", a: "versoin", b: "version", want: 1},
		{name: "swap in the middle", a: "craete", b: "create", want: 1},
		{name: "substitution", a: "chek", b: "check", want: 1},
		{name: "far", a: "frobnicate", b: "rewrite", want: 6},
		{name: "empty", a: "", b: "caps", want: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := editDistance(tt.a, tt.b); got != tt.want {
				t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
		})
	}
}
