package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/capshim/capshim/policy"
	"github.com/capshim/capshim/spec"
)

// configFlag names the policy for capshim's own commands.
var configFlag = &cli.StringFlag{
	Name:    "config",
	Usage:   "policy `FILE` (default: $CAPSHIM_CONFIG, else /etc/capshim/shim.toml, else the built-in default)",
	EnvVars: []string{"CAPSHIM_CONFIG"},
}

// builtinFlag makes a command use the built-in default policy.
var builtinFlag = &cli.BoolFlag{
	Name:  "builtin",
	Usage: "use the built-in default policy (shim.toml.example), ignoring any policy file",
}

// cliPolicy loads the built-in policy with --builtin, else the policy named
// by --config (or $CAPSHIM_CONFIG), else the default one.
func cliPolicy(c *cli.Context) (*policy.Policy, error) {
	if c.Bool("builtin") {
		return policy.Builtin(), nil
	}
	if path := c.String("config"); path != "" {
		if abs, err := filepath.Abs(path); err == nil {
			if err := policy.CheckTrusted(abs, false); err != nil {
				fmt.Fprintf(c.App.ErrWriter, "capshim: warning: %v\ncapshim: warning: as a runtime, capshim would refuse this policy file\n", err)
			}
		}
		return policy.LoadFile(path)
	}
	return policy.LoadDefault()
}

// specInput is a spec read by a capshim command, parsed and decided.
type specInput struct {
	name     string     // file name for messages ("-" is "stdin")
	file     *spec.File // nil for stdin
	data     []byte
	doc      *spec.Doc
	kind     spec.Kind
	decision policy.Decision
	out      spec.Sets
	reduced  []byte
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
	si.decision = pol.Decide(doc.Annotations, doc.Env)
	if err := pol.Check(&si.decision); err != nil {
		return nil, fmt.Errorf("%s: %w", si.name, err)
	}
	si.reduced, si.out = doc.Reduce(si.decision.Target)
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
