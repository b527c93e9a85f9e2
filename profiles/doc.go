// Package profiles holds the capability profiles capshim ships for common
// images, one NAME.toml per workload: a policy rule in the form `capshim
// learn show` prints once `capshim learn minimize` has verified the set,
// with keep = the needed set and a match on the CRI image name, and a
// header saying which image, which package versions and which day it was
// verified with. Append a file to a policy to use it. The integration
// tests run every workload again with exactly its keep set.
package profiles

import "embed"

// Files are the shipped profiles.
//
//go:embed *.toml
var Files embed.FS
