package install

import (
	"fmt"
	"sort"
	"strings"
)

// An edit of containerd's config.toml is checked by reading the result the
// way containerd reads it, before anything is written. Two release lines
// read the same file differently:
//
//   - containerd 1.6 and 1.7 decode a plugin's section over its built-in
//     defaults with go-toml v1, which replaces a map as a whole. The CRI
//     plugin's only built-in runtime, "runc", therefore exists only while
//     the file has no containerd.runtimes table: a file that adds
//     runtimes.capshim alone leaves the plugin with capshim and nothing
//     else, and the plugin refuses to load when default_runtime_name still
//     says "runc". The deprecated default_runtime and
//     untrusted_workload_runtime tables add the runtimes "default" and
//     "untrusted" after decoding, and default_runtime makes "default" the
//     default whatever default_runtime_name says. A version 2 file must
//     name every plugin in full (io.containerd.TYPE.vN.ID), or containerd
//     does not start at all.
//   - containerd 2.x decodes with go-toml v2, which adds the file's map
//     entries to the built-in ones: runc stays whatever the file lists. It
//     reads version 2 files too, after moving their CRI settings to the
//     plugin io.containerd.cri.v1.runtime, and knows neither deprecated
//     table.
//
// capshim decodes the file once, with go-toml/v2, into a plain tree
// (parseTOML). How each line lays that tree over the plugin's defaults,
// replacing maps or adding to them, is modelled below, so the answers do
// not depend on the library that decoded the tree.

// ctdReader is a containerd release line reading a config file.
type ctdReader string

const (
	ctd1 ctdReader = "containerd 1.6/1.7"
	ctd2 ctdReader = "containerd 2.x"
)

// builtinRuntime is the runtime the CRI plugin defines by itself.
const builtinRuntime = "runc"

// readersOf lists the containerd lines that read a file of this version.
func readersOf(version int64) []ctdReader {
	if version == 3 {
		return []ctdReader{ctd2}
	}
	return []ctdReader{ctd1, ctd2}
}

// criView is what one containerd line makes of a config file.
type criView struct {
	reader ctdReader
	// runtimes holds every runtime handler of the CRI plugin, the
	// built-in and deprecated ones included; nil when the file does not
	// decode into them.
	runtimes map[string]bool
	// types holds each runtime's runtime_type.
	types map[string]string
	// defaultName is the runtime of a pod without a RuntimeClass.
	defaultName string
	// legacyDefault: the deprecated default_runtime table set the default.
	legacyDefault bool
	// disabled is the disabled_plugins entry that turns the CRI plugin
	// off, or "".
	disabled string
	// err says why containerd would not start, or would not load the CRI
	// plugin, with this file; it starts with "would".
	err error
}

// readCRI returns what reader makes of the decoded config m, a version 2
// or 3 file.
func readCRI(m map[string]any, version int64, reader ctdReader) criView {
	v := criView{reader: reader}
	names := map[string][]string{}
	for _, key := range []string{"disabled_plugins", "required_plugins"} {
		list, err := stringList(m, key)
		if err != nil {
			v.err = fmt.Errorf("would not start: %w", err)
			return v
		}
		names[key] = list
		for _, p := range list {
			if v.err == nil && !fullPluginName(p, reader) {
				v.err = fmt.Errorf("would not start: %s holds %q, which is not a full plugin name (io.containerd.TYPE.vN.ID, e.g. %s)", key, p, criV2)
			}
		}
	}
	for _, p := range names["disabled_plugins"] {
		if p == criV2 || reader == ctd2 && p == criV3 {
			v.disabled = p
		}
	}
	plugins, err := tableAt(m, "plugins")
	if err != nil {
		v.err = fmt.Errorf("would not start: %w", err)
		return v
	}
	if reader == ctd1 && v.err == nil {
		for _, p := range sortedKeys(plugins) {
			if v.err == nil && !fullPluginName(p, reader) {
				v.err = fmt.Errorf("would not start: the plugin section %q is not named in full (io.containerd.TYPE.vN.ID)", p)
			}
		}
	}
	plugin := criV2
	if version == 3 {
		plugin = criV3
	}
	p, err := tableAt(m, "plugins", plugin)
	if err == nil {
		err = v.runtimesOf(p)
	}
	if err != nil {
		v.runtimes = nil
		if v.err == nil {
			v.err = fmt.Errorf("would not load the CRI plugin: %w", err)
		}
		return v
	}
	if v.err == nil {
		switch {
		case v.defaultName == "":
			v.err = fmt.Errorf("would not load the CRI plugin: default_runtime_name is empty")
		case !v.runtimes[v.defaultName]:
			v.err = fmt.Errorf("would not load the CRI plugin: default_runtime_name = %q names no runtime of containerd.runtimes (it has %s)", v.defaultName, runtimeList(v.runtimes))
		}
	}
	if reader == ctd1 && v.err == nil {
		// Deprecated settings that hold only for a default runtime of
		// the old runtime v1 type.
		c, _ := p["containerd"].(map[string]any)
		for _, s := range []struct {
			key string
			on  bool
		}{{"systemd_cgroup", p["systemd_cgroup"] == true}, {"no_pivot", c["no_pivot"] == true}} {
			if s.on && v.err == nil && v.types[v.defaultName] != runtimeV1 {
				v.err = fmt.Errorf("would not load the CRI plugin: %s = true works only when the default runtime has runtime_type %s, and %q has %q", s.key, runtimeV1, v.defaultName, v.types[v.defaultName])
			}
		}
	}
	return v
}

// runtimeV1 is the runtime type of containerd's first shim API, which a
// few deprecated CRI settings need.
const runtimeV1 = "io.containerd.runtime.v1.linux"

// runtimesOf fills in the runtimes and the default from the CRI plugin's
// table p (nil when the file has none).
func (v *criView) runtimesOf(p map[string]any) error {
	v.runtimes, v.types = map[string]bool{}, map[string]string{}
	c, err := tableAt(p, "containerd")
	if err != nil {
		return err
	}
	rts, err := tableAt(c, "runtimes")
	if err != nil {
		return err
	}
	if rts == nil || v.reader == ctd2 {
		v.runtimes[builtinRuntime] = true
		v.types[builtinRuntime] = "io.containerd.runc.v2"
	}
	for _, name := range sortedKeys(rts) {
		r, err := tableAt(rts, name)
		if err != nil {
			return fmt.Errorf("containerd.runtimes.%s: %w", formatKey([]string{name}), err)
		}
		v.runtimes[name] = true
		if typ, ok := r["runtime_type"].(string); ok {
			v.types[name] = typ
		} else if v.reader == ctd1 {
			// go-toml v1 gives the entry a zero value.
			v.types[name] = ""
		}
	}
	v.defaultName = builtinRuntime
	if s, ok := c["default_runtime_name"]; ok {
		name, isString := s.(string)
		if !isString {
			return fmt.Errorf("default_runtime_name is not a string")
		}
		v.defaultName = name
	}
	if v.reader != ctd1 {
		return nil
	}
	legacy := func(key string) (string, error) {
		t, err := tableAt(c, key)
		if err != nil {
			return "", err
		}
		typ, _ := t["runtime_type"].(string)
		return typ, nil
	}
	untrusted, err := legacy("untrusted_workload_runtime")
	if err != nil {
		return err
	}
	if untrusted != "" {
		if v.runtimes["untrusted"] {
			return fmt.Errorf("the file defines both untrusted_workload_runtime and runtimes.untrusted")
		}
		v.runtimes["untrusted"], v.types["untrusted"] = true, untrusted
	}
	def, err := legacy("default_runtime")
	if err != nil {
		return err
	}
	if def != "" {
		v.runtimes["default"], v.types["default"] = true, def
		v.defaultName = "default"
		v.legacyDefault = true
	}
	return nil
}

// fullPluginName reports whether reader accepts p as a plugin name in a
// version 2 or 3 file: 1.6/1.7 want at least four dotted parts, 2.x a dot.
func fullPluginName(p string, reader ctdReader) bool {
	if reader == ctd1 {
		return len(strings.Split(p, ".")) >= 4
	}
	return strings.Contains(p, ".")
}

// tableAt returns the table at the dotted path below m: nil when it is
// missing, an error when something else is there.
func tableAt(m map[string]any, path ...string) (map[string]any, error) {
	t := m
	for i, p := range path {
		v, ok := t[p]
		if !ok {
			return nil, nil
		}
		if t, ok = v.(map[string]any); !ok {
			return nil, fmt.Errorf("%s is not a table", formatKey(path[:i+1]))
		}
	}
	return t, nil
}

// stringList returns the top-level key as a list of strings (nil when
// missing).
func stringList(m map[string]any, key string) ([]string, error) {
	v, ok := m[key]
	if !ok {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s is not a list", key)
	}
	out := make([]string, len(arr))
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%s holds %v, which is not a string", key, e)
		}
		out[i] = s
	}
	return out, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// runtimeList writes runtime names sorted, for messages.
func runtimeList(rts map[string]bool) string {
	if len(rts) == 0 {
		return "none"
	}
	names := make([]string, 0, len(rts))
	for n := range rts {
		names = append(names, fmt.Sprintf("%q", n))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// checkCRI compares what containerd makes of the file before and after
// capshim's edit, reader by reader. The edit must not make containerd
// refuse a file it accepted, must keep every runtime and the default
// (unless opts.SetDefault makes capshim the default), and must add
// capshim. A file containerd refuses already gets a warning instead when
// the edit leaves it so: the edit cannot make it worse, and capshim does
// not guess at the fix.
func checkCRI(before, after []criView, opts Options) ([]string, error) {
	// What was wrong with the old file, once per message with the
	// readers it concerns, and whether the edit repairs it.
	type fault struct {
		msg      string
		repaired bool
	}
	var faults []fault
	readers := map[fault][]string{}
	for i, b := range before {
		a := after[i]
		switch {
		case b.err != nil:
			f := fault{b.err.Error(), a.err == nil}
			if readers[f] == nil {
				faults = append(faults, f)
			}
			readers[f] = append(readers[f], string(b.reader))
			if a.err != nil {
				continue
			}
		case a.err != nil:
			return nil, fmt.Errorf("capshim's change would break the file: %s %w", a.reader, a.err)
		}
		if !a.runtimes["capshim"] {
			return nil, fmt.Errorf("%s would not see the runtime capshim in the edited file: add it by hand", a.reader)
		}
		if opts.SetDefault && a.defaultName != "capshim" {
			if a.legacyDefault {
				return nil, fmt.Errorf("%s would keep the runtime %q as its default: the file sets the deprecated table default_runtime, which takes the place of default_runtime_name; move that runtime to containerd.runtimes (with default_runtime_name naming it), or install without --set-default", a.reader, a.defaultName)
			}
			return nil, fmt.Errorf("%s would use the runtime %q by default, not capshim: set default_runtime_name by hand", a.reader, a.defaultName)
		}
		if b.err != nil {
			continue
		}
		var lost []string
		for name := range b.runtimes {
			if !a.runtimes[name] {
				lost = append(lost, name)
			}
		}
		if len(lost) > 0 {
			sort.Strings(lost)
			return nil, fmt.Errorf("capshim's change would hide the runtime %q from %s", lost, a.reader)
		}
		if !opts.SetDefault && a.defaultName != b.defaultName {
			return nil, fmt.Errorf("capshim's change would make %s use the runtime %q by default, not %q", a.reader, a.defaultName, b.defaultName)
		}
	}
	var notes []string
	for _, f := range faults {
		who := strings.Join(readers[f], " and ")
		if f.repaired {
			notes = append(notes, fmt.Sprintf("with the old file, %s %s; capshim's change repairs that", who, f.msg))
		} else {
			notes = append(notes, fmt.Sprintf("WARNING: with this file, %s %s, before capshim's change as after it: capshim leaves that as it is; fix it before restarting containerd", who, f.msg))
		}
	}
	return notes, nil
}
