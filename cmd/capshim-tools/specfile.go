package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/engine"
	"github.com/capshim/capshim/policy"
	"github.com/capshim/capshim/spec"
)

// configFlag names the policy for capshim's own commands.
var configFlag = &cli.StringFlag{
	Name:  "config",
	Usage: "policy `FILE` (default: found as the runtime finds it: the name capshim is called as, $CAPSHIM_CONFIG, /etc/capshim/shim.toml, the built-in default)",
}

// builtinFlag makes a command use the built-in default policy.
var builtinFlag = &cli.BoolFlag{
	Name:  "builtin",
	Usage: "use the built-in default policy (shim.toml.example), ignoring any policy file",
}

// cliPolicy finds and loads the policy exactly as the runtime does
// (policy.Locate with the name capshim was called as), with --config in
// the place of the runtime's --capshim-config, and --builtin for the
// built-in one. An untrusted file is refused as the runtime refuses it.
func cliPolicy(c *cli.Context) (*policy.Policy, policy.Location, error) {
	flag := c.String("config")
	if flag != "" {
		abs, err := filepath.Abs(flag)
		if err != nil {
			return nil, policy.Location{}, fmt.Errorf("policy path %s: %w", flag, err)
		}
		flag = abs
	}
	loc := policy.Locate(flag, argv0(c), c.Bool("builtin"), os.Getenv)
	pol, err := loc.Load()
	return pol, loc, err
}

// argv0 is the name capshim was called as (capshim hands it over): it
// picks the policy as it does for the runtime.
func argv0(c *cli.Context) string {
	if v, ok := c.App.Metadata["argv0"].(string); ok {
		return v
	}
	return "capshim"
}

// specInput is a spec read by a capshim command, parsed and decided.
type specInput struct {
	name    string     // file name for messages ("-" is "stdin")
	file    *spec.File // nil for stdin
	data    []byte
	doc     *spec.Doc
	kind    spec.Kind
	outcome *policy.Outcome
}

// readSpec reads a config.json or process.json (or "-" for stdin) and
// applies the policy to it. The kind is found from the content: a document
// with process.capabilities is a config.json, one with capabilities at the
// top is a process.json.
func readSpec(name string, stdin io.Reader, pol *policy.Policy) (*specInput, error) {
	si := &specInput{name: name}
	if name == "-" {
		si.name = "stdin"
		data, err := io.ReadAll(io.LimitReader(stdin, spec.MaxSize+1))
		if err != nil {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		if len(data) > spec.MaxSize {
			return nil, fmt.Errorf("stdin: more than the %d bytes capshim reads", spec.MaxSize)
		}
		si.data = data
	} else {
		f, err := spec.ReadFile(name)
		if err != nil {
			return nil, err
		}
		si.file, si.data = f, f.Data
	}
	doc, err := spec.Parse(si.data, spec.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", si.name, err)
	}
	if !doc.HasCapabilities {
		if pdoc, perr := spec.Parse(si.data, spec.Process); perr == nil && pdoc.HasCapabilities {
			doc, si.kind = pdoc, spec.Process
		}
	}
	si.doc = doc
	if si.outcome, err = pol.Apply(doc, doc.Annotations, nil, engine.Identify(doc.Annotations, "")); err != nil {
		return nil, fmt.Errorf("%s: %w", si.name, err)
	}
	return si, nil
}

// writeOutput writes data to path: atomically over an existing file,
// keeping its mode, or as a new 0644 file.
func writeOutput(path string, data []byte) error {
	f, err := spec.ReadFile(path)
	if os.IsNotExist(err) {
		f = &spec.File{Path: path, Mode: 0o644, UID: os.Getuid(), GID: os.Getgid()}
	} else if err != nil {
		return err
	}
	return f.Replace(data)
}
