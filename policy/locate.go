package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/capshim/capshim/internal/trustfs"
)

// Dir holds the policies capshim finds by the name it is called as.
const Dir = "/etc/capshim"

// Location says where a policy is and why capshim looks there. The
// runtime and capshim's commands find their policy with Locate, so the
// same call from the same engine reads the same file.
type Location struct {
	// Path is the policy file; "" is the built-in policy.
	Path string
	// Why says how Path was chosen, for messages ("--capshim-config",
	// "the name capshim-web", "$CAPSHIM_CONFIG", "the default path").
	Why string
	// fallback: a missing file means the built-in policy (only the
	// default path, and only when nothing at all is there).
	fallback bool
	hint     string // what to do when a named policy is missing
}

// Describe says, for people, which policy p (loaded from l) is and why it
// was chosen: "/etc/capshim/web.toml (the name capshim-web)", or
// "built-in default policy (no file at /etc/capshim/shim.toml)".
func (l Location) Describe(p *Policy) string {
	switch {
	case p.Source != BuiltinSource:
		return p.Source + " (" + l.Why + ")"
	case l.Path == "":
		return BuiltinSource + " (" + l.Why + ")"
	}
	return BuiltinSource + " (no file at " + l.Path + ")"
}

// Locate finds the policy for a capshim called as argv0 with flag (the
// runtime's --capshim-config, or the commands' --config), reading the
// environment with getenv: the flag, else the file named after the name
// capshim is called as (capshim-web reads CONFIG_DIR/capshim-web.toml,
// CONFIG_DIR being $CAPSHIM_CONFIG_DIR or /etc/capshim), else
// $CAPSHIM_CONFIG, else /etc/capshim/shim.toml, which, when nothing is
// there, means the built-in default. builtin asks for the built-in policy
// outright.
func Locate(flag, argv0 string, builtin bool, getenv func(string) string) Location {
	if builtin {
		return Location{Why: "--builtin"}
	}
	if flag != "" {
		return Location{Path: flag, Why: "named on the command line",
			hint: "it is named on the command line (--capshim-config in the engine's runtime arguments, or --config): create it, or fix the argument"}
	}
	if name := filepath.Base(argv0); name != "capshim" && name != "capshim-tools" && strings.HasPrefix(name, "capshim") {
		dir := getenv("CAPSHIM_CONFIG_DIR")
		if dir == "" {
			dir = Dir
		}
		return Location{Path: filepath.Join(dir, name+".toml"), Why: "the name " + name,
			hint: "capshim reads it because it is called as " + name + ": create it, or register capshim under its own name"}
	}
	if p := getenv("CAPSHIM_CONFIG"); p != "" {
		return Location{Path: p, Why: "$CAPSHIM_CONFIG",
			hint: "it is named by $CAPSHIM_CONFIG: create it, or fix or unset the variable"}
	}
	return Location{Path: DefaultPath, Why: "the default path", fallback: true,
		hint: "it is a symbolic link to a missing file: restore the file, or remove the link to use the built-in policy"}
}

// Load reads the policy at l: opened once, checked for trust through the
// descriptor and parsed from it (see LoadTrusted). A policy file others
// could change or could have chosen is refused, a named one that does not
// exist is "not found", and a missing default path gives the built-in
// policy.
func (l Location) Load() (*Policy, error) {
	p, _, err := l.Read()
	return p, err
}

// Read is Load that also returns the text the policy was parsed from: nil
// for the built-in policy, and, for a file that was read but does not
// parse (a *LoadError), that file's text with the error.
func (l Location) Read() (*Policy, []byte, error) {
	if l.Path == "" {
		return Builtin(), nil, nil
	}
	if !filepath.IsAbs(l.Path) {
		return nil, nil, fmt.Errorf("policy path %q (%s) is not absolute; runtime calls run in the bundle directory, so give the full path", l.Path, l.Why)
	}
	data, err := ReadTrusted(l.Path)
	var te *trustfs.Error
	switch {
	case err == nil:
		p, err := Parse(data, l.Path)
		return p, data, err
	case !errors.As(err, &te):
		return nil, nil, err // the file could not be read: a *LoadError
	case errors.Is(err, fs.ErrNotExist) && l.fallback && !te.Dangling:
		return Builtin(), nil, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, fmt.Errorf("policy not found: %w; %s", err, l.hint)
	case errors.Is(err, trustfs.ErrUntrusted):
		return nil, nil, fmt.Errorf("untrusted policy: %w", err)
	}
	return nil, nil, fmt.Errorf("cannot use the policy: %w", err)
}
