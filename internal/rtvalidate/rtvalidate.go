// Package rtvalidate runs runtime-tools' validation of a config.json for
// `capshim check`. It is linked into capshim-tools, never into the capshim
// runtime binary: runtime-tools brings the JSON-schema, HTTP and crypto
// packages, whose package init alone costs more than half a millisecond on
// every runtime call (see BENCHMARKS.md).
package rtvalidate

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/validate"
	"github.com/sirupsen/logrus"
)

// Finding is one problem runtime-tools' validation reports.
type Finding struct {
	Msg string
	// Common, when set, says why the finding is one that the specs real
	// engines write have as a matter of course (Docker's, containerd's,
	// runc's own; see spec/testdata), rather than a problem of this spec.
	// `capshim check` shows such findings only with --strict.
	Common string
}

// Spec runs runtime-tools' validation on a config.json of the bundle in
// bundle, leaving out the JSON-schema check (it fetches the schema over the
// network). It returns one finding per problem.
func Spec(data []byte, bundle string) []Finding {
	logrus.SetOutput(io.Discard) // runtime-tools logs warnings through logrus
	var s rspec.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return []Finding{{Msg: "does not decode as an OCI spec: " + err.Error()}}
	}
	v, err := validate.NewValidator(&s, bundle, false, "linux")
	if err != nil {
		return []Finding{{Msg: err.Error()}}
	}
	checks := []struct {
		run func() error
		// sorted: the check walks a map, so its findings come in a
		// different order on every run; sorted, the output is stable.
		sorted bool
	}{
		{run: v.CheckPlatform}, {run: v.CheckRoot}, {run: v.CheckMandatoryFields}, {run: v.CheckSemVer},
		{run: v.CheckMounts}, {run: v.CheckProcess}, {run: v.CheckLinux}, {run: v.CheckAnnotations, sorted: true}, {run: v.CheckHooks},
	}
	devices := deviceMessages(&s)
	out := []Finding{}
	for _, check := range checks {
		var lines []string
		if err := check.run(); err != nil {
			for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
				line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
				if line != "" && !strings.HasPrefix(line, "Refer to:") && !strings.HasSuffix(line, "errors occurred:") && !strings.HasSuffix(line, "error occurred:") {
					lines = append(lines, line)
				}
			}
		}
		if check.sorted {
			sort.Strings(lines)
		}
		for _, line := range lines {
			out = append(out, classify(line, devices))
		}
	}
	return out
}

// The findings real engines' specs have, each with a test of
// runtime-tools' message and the reason it is no problem of the spec.
var common = []struct {
	match func(msg string) bool
	why   string
}{
	{prefix("validate currently only handles version "),
		"runtime-tools validates against its own spec version only; engines write theirs (Docker, containerd and runc 1.0.2-dev)"},
	{prefix("cannot find the root path "),
		"the root file system is there only while the engine creates the container; a spec checked on its own has none"},
	{func(m string) bool {
		return strings.HasPrefix(m, "root.path is ") && strings.Contains(m, ", but it MUST be a child of ")
	},
		"Docker (and Podman) point root.path into their image store, outside the bundle"},
	{prefix("path name should be the conventional 'rootfs'"),
		"Docker (and Podman) point root.path into their image store, whose directory is not called rootfs"},
	{func(m string) bool {
		return strings.HasPrefix(m, "key ") && strings.HasSuffix(m, " SHOULD be named using a reverse domain notation")
	}, "annotation keys of the form prefix/name (capshim.io/capabilities, Kubernetes' keys) and ctr's labels are not reverse domain names, which the spec only recommends"},
	{prefix("ambient capability "),
		"runc spec writes ambient capabilities without inheritable ones; capshim drops them from ambient itself (ambient stays within permitted and inheritable), and its would-drop line says so"},
	{prefix("effective capability "),
		"capshim drops an effective capability that is not permitted itself, and its would-drop line says so"},
}

// prefix matches messages that start with p.
func prefix(p string) func(string) bool {
	return func(m string) bool { return strings.HasPrefix(m, p) }
}

// classify makes a finding of one message.
func classify(msg string, devices map[string]device) Finding {
	if d, ok := devices[msg]; ok {
		f := Finding{Msg: fmt.Sprintf("device %s (%s %d:%d) is invalid", d.Path, d.Type, d.Major, d.Minor)}
		if d.Major > 0 && d.Minor == 0 && (d.Type == "c" || d.Type == "b" || d.Type == "u") {
			f.Common = "runtime-tools takes minor number 0 for invalid, but /dev/tty (5:0) and /dev/loop0 (7:0) are real devices, which docker run --privileged passes in"
		}
		return f
	}
	for _, c := range common {
		if c.match(msg) {
			return Finding{Msg: msg, Common: c.why}
		}
	}
	return Finding{Msg: msg}
}

// device is a device of the spec.
type device = rspec.LinuxDevice

// deviceMessages maps runtime-tools' message about each device it finds
// invalid to that device. The message prints the device's struct, with
// the addresses of its pointer fields, so it differs from run to run;
// capshim prints the device's path and numbers instead.
func deviceMessages(s *rspec.Spec) map[string]device {
	m := map[string]device{}
	if s.Linux == nil {
		return m
	}
	for _, d := range s.Linux.Devices {
		m[fmt.Sprintf("device %v is invalid", d)] = d
	}
	return m
}
