// Package rtvalidate runs runtime-tools' validation of a config.json for
// `capshim check`. It is linked into the companion binary capshim-validate,
// never into capshim itself: runtime-tools brings the JSON-schema, HTTP and
// crypto packages, whose package init alone cost more than half a
// millisecond on every runtime call capshim makes (see BENCHMARKS.md).
//
// The protocol between the two binaries: capshim runs
// `capshim-validate --bundle DIR` with the spec on stdin; the validator
// writes a JSON array of findings (strings, possibly empty) on stdout and
// exits 0, or writes a message on stderr and exits 2.
package rtvalidate

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/validate"
	"github.com/sirupsen/logrus"
)

// MaxSize is the largest spec the validator reads, like capshim's limit.
const MaxSize = 64 << 20

// Spec runs runtime-tools' validation on a config.json of the bundle in
// bundle, leaving out the JSON-schema check (it fetches the schema over the
// network). It returns one line per finding.
func Spec(data []byte, bundle string) []string {
	logrus.SetOutput(io.Discard) // runtime-tools logs warnings through logrus
	var s rspec.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return []string{"does not decode as an OCI spec: " + err.Error()}
	}
	v, err := validate.NewValidator(&s, bundle, false, "linux")
	if err != nil {
		return []string{err.Error()}
	}
	checks := []func() error{
		v.CheckPlatform, v.CheckRoot, v.CheckMandatoryFields, v.CheckSemVer,
		v.CheckMounts, v.CheckProcess, v.CheckLinux, v.CheckAnnotations, v.CheckHooks,
	}
	out := []string{}
	for _, check := range checks {
		if err := check(); err != nil {
			for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
				line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
				if line != "" && !strings.HasPrefix(line, "Refer to:") && !strings.HasSuffix(line, "errors occurred:") && !strings.HasSuffix(line, "error occurred:") {
					out = append(out, line)
				}
			}
		}
	}
	return out
}

// Main is the validator's command line (args without the program name).
// It returns the exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("capshim-validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bundle := fs.String("bundle", ".", "the bundle `DIR` the spec belongs to (its root path is relative to it)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: capshim-validate [--bundle DIR] < config.json\n\nRuns runtime-tools' validation (without the JSON-schema check) on the spec\non stdin and writes the findings as a JSON array of strings. capshim check\nruns it; it is not meant to be run by hand.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	data, err := io.ReadAll(io.LimitReader(stdin, MaxSize+1))
	if err != nil {
		fmt.Fprintf(stderr, "capshim-validate: reading stdin: %v\n", err)
		return 2
	}
	if len(data) > MaxSize {
		fmt.Fprintf(stderr, "capshim-validate: the spec is more than %d bytes\n", MaxSize)
		return 2
	}
	out, _ := json.Marshal(Spec(data, *bundle))
	if _, err := fmt.Fprintf(stdout, "%s\n", out); err != nil {
		return 2
	}
	return 0
}
