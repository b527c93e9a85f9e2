package spec

import "github.com/capshim/capshim/capability"

// The capability vocabulary lives in package capability; these names keep
// spec's callers compiling while they move to it.
type (
	// Cap is capability.Cap.
	Cap = capability.Cap
	// CapSet is capability.Set.
	CapSet = capability.Set
)

// Constants of package capability.
const (
	NumCaps       = capability.NumCaps
	AllCaps       = capability.All
	OCIDefault    = capability.OCIDefault
	PodmanDefault = capability.PodmanDefault
	DockerDefault = capability.DockerDefault
)

// Exact is capability.Exact.
func Exact(name string) (Cap, bool) { return capability.Exact(name) }

// Lookup is capability.Lookup.
func Lookup(name string) (Cap, bool) { return capability.Lookup(name) }

// ParseList is capability.ParseList.
func ParseList(names []string) (CapSet, []string) { return capability.ParseList(names) }

// ParseCommaList is capability.ParseCommaList.
func ParseCommaList(list string) (CapSet, []string) { return capability.ParseCommaList(list) }
