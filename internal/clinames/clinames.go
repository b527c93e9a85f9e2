// Package clinames lists capshim's own commands. capshim (the runtime
// binary) hands a command line whose command word is one of them to its
// companion capshim-tools; every other command line is a runtime call.
// capshim-tools' tests check that this list matches its commands.
package clinames

import "slices"

// Names are the command words capshim-tools serves, aliases included.
var Names = [...]string{"rewrite", "check", "caps", "inspect", "install", "uninstall", "learn", "explain", "policy", "help", "h"}

// Is reports whether word is one of Names.
func Is(word string) bool { return slices.Contains(Names[:], word) }

// Tools is the file name of the companion binary, next to capshim.
const Tools = "capshim-tools"
