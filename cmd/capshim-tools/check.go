package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/capability"
	"github.com/capshim/capshim/internal/rtvalidate"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/policy"
	"github.com/capshim/capshim/spec"
)

var checkCommand = &cli.Command{
	Name:      "check",
	Usage:     "report what the policy would drop from specs, and validate them",
	ArgsUsage: "FILE...",
	Description: `For each config.json or process.json, prints what capshim would drop, one
line per file and set, and the findings of runtime-tools' spec validation
(config.json only; the JSON-schema check is left out, it needs the network).
Validation findings are printed as "invalid:" lines; they change the exit
status only with --strict. The findings that the specs real engines write
have as a matter of course (runtime-tools' own spec version, a root file
system that is not there outside the bundle, Docker's root.path, annotation
keys such as capshim.io/capabilities, device minor number 0, ambient
capabilities that capshim drops anyway) are left out unless --strict.
Exit status: 0 nothing would be dropped, 1 something would be dropped (or,
with --strict, the spec is not valid), 2 a file or the policy could not be
read.`,
	Flags: []cli.Flag{
		configFlag,
		builtinFlag,
		&cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text or json"},
		&cli.BoolFlag{Name: "strict", Usage: "show every runtime-tools finding, and exit 1 when there is one"},
		&cli.BoolFlag{Name: "no-validate", Usage: "skip runtime-tools validation"},
	},
	Action: func(c *cli.Context) error {
		format := c.String("format")
		if format != "text" && format != "json" {
			return cli.Exit(fmt.Sprintf("--format %q: use text or json", format), 2)
		}
		if c.NArg() == 0 {
			return cli.Exit("check needs at least one FILE; see capshim check --help", 2)
		}
		pol, loc, err := cliPolicy(c)
		if err != nil {
			return cli.Exit(err, 2)
		}
		var results []checkResult
		code := 0
		for _, name := range c.Args().Slice() {
			r := checkFile(name, c.App.Reader, pol, !c.Bool("no-validate"), c.Bool("strict"))
			switch {
			case r.Error != "":
				code = 2
			case (len(r.Drop) > 0 || c.Bool("strict") && len(r.Invalid) > 0) && code == 0:
				code = 1
			}
			results = append(results, r)
		}
		w := c.App.Writer
		if format == "json" {
			data, _ := json.MarshalIndent(checkReport{Policy: loc.Describe(pol), Files: results}, "", "  ")
			fmt.Fprintf(w, "%s\n", data)
		} else {
			fmt.Fprintf(w, "policy: %s\n", safetext.Escape(loc.Describe(pol)))
			for _, r := range results {
				r.writeText(w)
			}
		}
		if code != 0 {
			return cli.Exit("", code)
		}
		return nil
	},
}

// checkReport is check's JSON output: which policy decided, and a report
// per file.
type checkReport struct {
	Policy string        `json:"policy"`
	Files  []checkResult `json:"files"`
}

// checkResult is one file's report.
type checkResult struct {
	File    string              `json:"file"`
	Kind    string              `json:"kind,omitempty"`
	Target  []string            `json:"target,omitempty"`
	Drop    map[string][]string `json:"drop,omitempty"`
	Invalid []string            `json:"invalid,omitempty"`
	Error   string              `json:"error,omitempty"`
}

// checkFile reads, decides and (with validate) validates one file; strict
// keeps the validation findings that every real engine's spec has.
func checkFile(name string, stdin io.Reader, pol *policy.Policy, validate, strict bool) checkResult {
	r := checkResult{File: name}
	si, err := readSpec(name, stdin, pol)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Kind = "config"
	if si.kind == spec.Process {
		r.Kind = "process"
	}
	r.Target = si.outcome.Decision.Target.Names()
	r.Drop = si.outcome.Dropped
	if validate && si.kind == spec.Config {
		r.Invalid = validateSpec(si.data, name, strict)
	}
	return r
}

// validateSpec runs runtime-tools' validation on a config.json, leaving out
// the JSON-schema check (it fetches the schema over the network), and,
// unless strict, the findings that real engines' specs all have: printed,
// they would hide the real problems of a spec.
func validateSpec(data []byte, name string, strict bool) []string {
	var out []string
	for _, f := range rtvalidate.Spec(data, filepath.Dir(name)) {
		if strict || f.Common == "" {
			out = append(out, f.Msg)
		}
	}
	return out
}

func (r *checkResult) writeText(w io.Writer) {
	switch {
	case r.Error != "":
		fmt.Fprintf(w, "%s: error: %s\n", safetext.Escape(r.File), safetext.Line(r.Error))
		return
	case len(r.Drop) == 0 && len(r.Invalid) == 0:
		fmt.Fprintf(w, "%s: ok: nothing to drop (target %s)\n", safetext.Escape(r.File), strings.Join(r.Target, ","))
		return
	}
	for s := spec.Bounding; s < spec.NumSets; s++ {
		if d, ok := r.Drop[s.String()]; ok {
			// Names from the spec: escaped, and bounded in number.
			fmt.Fprintf(w, "%s: %s: would drop %s\n", safetext.Escape(r.File), s, strings.Join(capability.ShowNames(d), ","))
		}
	}
	for _, msg := range r.Invalid {
		fmt.Fprintf(w, "%s: invalid: %s\n", safetext.Escape(r.File), safetext.Line(msg))
	}
}
