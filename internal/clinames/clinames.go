// Package clinames lists the command words capshim tells apart. capshim
// (the runtime binary) hands a command line whose command word is one of
// its own commands to its companion capshim-tools; a runtime command goes
// to the runtime. capshim-tools' tests check that Names matches its
// commands.
package clinames

import "slices"

// Names are the command words capshim-tools serves, aliases included.
var Names = [...]string{"rewrite", "check", "caps", "inspect", "install", "uninstall", "status", "learn", "explain", "report", "policy", "version", "completion", "help", "h"}

// Is reports whether word is one of Names.
func Is(word string) bool { return slices.Contains(Names[:], word) }

// Runtime are the commands of the runtimes capshim wraps: runc's (1.1 to
// 1.3) and crun's. Engines call capshim with them; a word that is neither
// one of these nor one of Names, given without runtime flags before it,
// is a person's typing mistake, which capshim-tools answers.
var Runtime = [...]string{
	"create", "start", "run", "exec", "kill", "delete", "state", "ps", "pause", "resume", "update",
	"events", "list", "spec", "features", "checkpoint", "restore",
	"mounts", // crun
}

// IsRuntime reports whether word is one of Runtime.
func IsRuntime(word string) bool { return slices.Contains(Runtime[:], word) }

// Tools is the file name of the companion binary, next to capshim.
const Tools = "capshim-tools"
