package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/internal/runtimefind"
	"github.com/capshim/capshim/internal/safetext"
	"github.com/capshim/capshim/policy"
)

// versionTimeout bounds each program version runs.
const versionTimeout = 10 * time.Second

var versionCommand = &cli.Command{
	Name:  "version",
	Usage: "print the versions of capshim's binaries and of the real runtime",
	Description: `Prints the version of capshim, capshim-tools and capshim-trace, each asked of
the binary itself (they lie in one directory: the one this program is in, or
--dir), and the --version output of the real runtime: the one the policy
names, or runc on PATH, found with the runtime's own lookup and trust check.
The three binaries should be of one build; a line says so when they are not.
Exit status: 0, or 1 when a binary or the runtime could not be asked.`,
	Flags: []cli.Flag{
		configFlag,
		&cli.StringFlag{Name: "dir", Usage: "the `DIR` holding capshim, capshim-tools and capshim-trace (default: this program's)"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() > 0 {
			return cli.Exit("version takes no operands; see capshim version --help", 2)
		}
		dir := c.String("dir")
		if dir == "" {
			self, err := sibling("capshim")
			if err != nil {
				return cli.Exit(err, 2)
			}
			dir = filepath.Dir(self)
		}
		w := c.App.Writer
		failed := false
		versions := map[string]bool{}
		line := func(name, v string, err error) {
			path := filepath.Join(dir, name)
			if name == "capshim-tools" {
				// This program, wherever --dir points.
				path, _ = sibling(name)
			}
			if err != nil {
				failed = true
				fmt.Fprintf(w, "%-14s unknown: %s\n", name, safetext.Line(err.Error()))
				return
			}
			versions[v] = true
			fmt.Fprintf(w, "%-14s %s  %s\n", name, safetext.Escape(v), safetext.Escape(path))
		}
		v, err := capshimVersion(filepath.Join(dir, "capshim"))
		line("capshim", v, err)
		line("capshim-tools", version, nil)
		v, err = traceVersion(filepath.Join(dir, "capshim-trace"))
		line("capshim-trace", v, err)
		if len(versions) > 1 {
			fmt.Fprintf(w, "warning: the binaries are of different builds: install them together (make build, then make install)\n")
		}
		if err := runtimeVersion(c, w, filepath.Join(dir, "capshim")); err != nil {
			failed = true
			problem(c, err)
		}
		if failed {
			return cli.Exit("", 1)
		}
		return nil
	},
}

// output runs a program for its version and returns its standard output.
func output(path string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), versionTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(errOut.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return nil, fmt.Errorf("running %s %s: %w", path, strings.Join(args, " "), err)
	}
	return out, nil
}

// capshimVersion asks the capshim binary for its own version, which it
// gives without loading a policy or finding a runtime.
func capshimVersion(path string) (string, error) {
	out, err := output(path, "--capshim-version")
	if err != nil {
		return "", err
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "capshim version ")
	if !ok || strings.Contains(v, "\n") {
		return "", fmt.Errorf("%s --capshim-version printed %q, not capshim's version: is it capshim?", path, out)
	}
	return v, nil
}

// traceVersion asks capshim-trace for its version (one JSON object).
func traceVersion(path string) (string, error) {
	out, err := output(path, "version")
	if err != nil {
		return "", err
	}
	var r struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(out, &r); err != nil || r.Version == "" {
		return "", fmt.Errorf("%s version printed %q, not capshim-trace's version: is it capshim-trace?", path, out)
	}
	return r.Version, nil
}

// runtimeVersion writes the --version output of the runtime capshim
// would run for a --version call: the policy's, or runc on PATH; with a
// policy that does not load, runc on PATH, as the runtime does for calls
// that carry no capabilities.
func runtimeVersion(c *cli.Context, w io.Writer, capshimBin string) error {
	pol, loc, err := cliPolicy(c)
	about := loc.Describe
	if err != nil {
		fmt.Fprintf(w, "warning: %s; --version carries no capabilities, so the runtime uses runc on PATH\n", safetext.Line("capshim: "+err.Error()))
		pol = policy.Builtin()
		about = func(*policy.Policy) string { return "none that loads" }
	}
	rt, err := runtimefind.Find(pol, os.Getenv("PATH"), runtimefind.SameFile(capshimBin))
	if err != nil {
		fmt.Fprintf(w, "%-14s unknown\n", "runtime")
		return err
	}
	rt.File.Close()
	why := "named in the policy"
	if rt.OnPath {
		why = "runc on PATH"
	}
	fmt.Fprintf(w, "%-14s %s (%s; policy: %s)\n", "runtime", safetext.Escape(rt.Path), why, safetext.Escape(about(pol)))
	// The path that was just checked; this only asks for a version.
	out, err := output(rt.Path, "--version")
	if err != nil {
		return err
	}
	text := strings.TrimRight(string(out), "\n")
	if text == "" {
		return errors.New(rt.Path + " --version printed nothing")
	}
	for _, l := range strings.Split(text, "\n") {
		fmt.Fprintf(w, "  %s\n", safetext.Line(l))
	}
	return nil
}
