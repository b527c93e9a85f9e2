package install

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Registration is one runtime of an engine's config that runs capshim:
// what `capshim status` reports on.
type Registration struct {
	// Name is the engine's name for the runtime (docker --runtime NAME,
	// the CRI handler, podman --runtime NAME).
	Name string
	// Binary is the program the engine runs; for Podman, the first of
	// the runtime's paths that names capshim.
	Binary string
	// Args are the runtime arguments the engine passes (Docker's
	// runtimeArgs); the other engines pass none.
	Args []string
	// Default: the engine's default runtime.
	Default bool
}

// IsCapshim reports whether the program at path is capshim by its name:
// capshim, or a link named capshim-NAME, which reads its own policy.
func IsCapshim(path string) bool {
	base := filepath.Base(path)
	return base == "capshim" || strings.HasPrefix(base, "capshim-") && base != "capshim-tools" && base != "capshim-trace"
}

// Registered reads an engine's config file content and returns the
// runtimes in it that run capshim (by IsCapshim, or the program at self),
// sorted by name, and the engine's default runtime ("" when the file
// leaves the engine's own default). Empty data registers nothing.
func Registered(e Engine, data []byte, self func(string) bool) (regs []Registration, defaultName string, err error) {
	is := func(p string) bool { return p != "" && (IsCapshim(p) || self != nil && self(p)) }
	switch e {
	case Docker:
		var d daemonRuntimes
		if len(strings.TrimSpace(string(data))) > 0 {
			if err := json.Unmarshal(data, &d); err != nil {
				return nil, "", fmt.Errorf("daemon.json: %w", err)
			}
		}
		defaultName = d.Default
		for name, rt := range d.Runtimes {
			if is(rt.Path) {
				regs = append(regs, Registration{Name: name, Binary: rt.Path, Args: rt.RuntimeArgs, Default: name == d.Default})
			}
		}
	case Containerd:
		m, err := parseTOML(data)
		if err != nil {
			return nil, "", err
		}
		cri := []string{"plugins", criPlugin(m), "containerd"}
		defaultName, _ = lookup(m, append(slices.Clone(cri), "default_runtime_name")...).(string)
		rts, _ := lookup(m, append(slices.Clone(cri), "runtimes")...).(map[string]any)
		for name := range rts {
			bin, _ := lookup(rts, name, "options", "BinaryName").(string)
			if is(bin) {
				regs = append(regs, Registration{Name: name, Binary: bin, Default: name == defaultName})
			}
		}
	case Podman:
		m, err := parseTOML(data)
		if err != nil {
			return nil, "", err
		}
		defaultName, _ = lookup(m, "engine", "runtime").(string)
		rts, _ := lookup(m, "engine", "runtimes").(map[string]any)
		for name, v := range rts {
			paths, _ := v.([]any)
			var bin string
			for _, p := range paths {
				if s, ok := p.(string); ok && is(s) {
					bin = s
					break
				}
			}
			if bin != "" {
				regs = append(regs, Registration{Name: name, Binary: bin, Default: name == defaultName})
			}
		}
	default:
		return nil, "", fmt.Errorf("unknown engine %q", e)
	}
	slices.SortFunc(regs, func(a, b Registration) int { return strings.Compare(a.Name, b.Name) })
	return regs, defaultName, nil
}

// daemonRuntimes is what capshim reads of daemon.json: the runtimes and
// the default one.
type daemonRuntimes struct {
	Runtimes map[string]struct {
		Path        string   `json:"path"`
		RuntimeArgs []string `json:"runtimeArgs"`
	} `json:"runtimes"`
	Default string `json:"default-runtime"`
}

// PolicyFlag is the policy a runtime's arguments name with
// --capshim-config (as =FILE or FILE), as the capshim binary reads its
// global flags, or "".
func PolicyFlag(args []string) string {
	for i := 0; i < len(args); i++ {
		name := strings.TrimLeft(args[i], "-")
		if name == args[i] {
			continue
		}
		if v, ok := strings.CutPrefix(name, "capshim-config="); ok {
			return v
		}
		if name == "capshim-config" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}
