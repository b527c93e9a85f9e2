// Package capshim holds what the whole module shares: the example policy,
// which is also the built-in default, and the version.
package capshim

import (
	_ "embed"
	"strings"
)

// DefaultPolicy is shim.toml.example, the policy capshim uses when no
// policy file exists.
//
//go:embed shim.toml.example
var DefaultPolicy []byte

//go:embed VERSION
var versionFile string

// commit is the source revision, set by `make build` with
// -ldflags "-X github.com/capshim/capshim.commit=..."; empty otherwise.
var commit string

// Version is capshim's version, from the VERSION file at the top of the
// repository (both binaries report the same), with the source revision
// when the build recorded one.
func Version() string {
	v := strings.TrimSpace(versionFile)
	if commit != "" {
		v += " (" + commit + ")"
	}
	return v
}
