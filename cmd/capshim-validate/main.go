// Command capshim-validate runs runtime-tools' spec validation for
// `capshim check`, which runs it from the directory capshim is in. It is a
// separate binary so that capshim, which is on the path of every container
// start, does not link runtime-tools and its dependencies (see
// internal/rtvalidate).
package main

import (
	"os"

	"github.com/capshim/capshim/internal/rtvalidate"
)

func main() {
	os.Exit(rtvalidate.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
