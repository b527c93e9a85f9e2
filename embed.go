// Package capshim holds what the whole module shares: the example policy,
// which is also the built-in default.
package capshim

import _ "embed"

// DefaultPolicy is shim.toml.example, the policy capshim uses when no
// policy file exists.
//
//go:embed shim.toml.example
var DefaultPolicy []byte
