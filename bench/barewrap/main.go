// Command barewrap is the floor of any Go runtime wrapper: it does nothing
// but syscall.Exec the real runtime with its own arguments. `make bench`
// builds it like capshim (static, stripped) and measures capshim against it.
package main

import (
	"os"
	"syscall"
)

// runtime is the real runtime; `make bench` sets it with
// -ldflags "-X main.runtime=/usr/bin/runc".
var runtime = "/usr/bin/runc"

func main() {
	argv := append([]string{runtime}, os.Args[1:]...)
	err := syscall.Exec(runtime, argv, os.Environ())
	os.Stderr.WriteString("barewrap: exec " + runtime + ": " + err.Error() + "\n")
	os.Exit(127)
}
