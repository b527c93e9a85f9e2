// Package rtvalidate runs runtime-tools' validation of a config.json for
// `capshim check`. It is linked into capshim-tools, never into the capshim
// runtime binary: runtime-tools brings the JSON-schema, HTTP and crypto
// packages, whose package init alone costs more than half a millisecond on
// every runtime call (see BENCHMARKS.md).
package rtvalidate

import (
	"encoding/json"
	"io"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/validate"
	"github.com/sirupsen/logrus"
)

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
