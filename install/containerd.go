package install

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// containerd's CRI plugin, by config version.
const (
	criV2 = "io.containerd.grpc.v1.cri"    // containerd 1.6/1.7, version = 2
	criV3 = "io.containerd.cri.v1.runtime" // containerd 2.x, version = 3
)

// Containerd runtime settings capshim writes.
var (
	podAnnotations       = []string{"capshim.io/*", "io.containers.capabilities"}
	containerAnnotations = []string{"capshim.io/*"}
)

// editContainerd registers the runtime handler "capshim" in containerd's
// config.toml (version 2 or 3), editing the text so that comments and
// everything else stay as they were. The result is read the way containerd
// reads it (see readCRI) and refused when containerd would lose a runtime,
// its default, or the CRI plugin over it.
func editContainerd(old []byte, opts Options) ([]byte, []string, error) {
	m, err := parseTOML(old)
	if err != nil {
		return nil, nil, err
	}
	var notes []string
	data := old
	var version int64 = 2
	switch v := m["version"]; {
	case len(bytes.TrimSpace(old)) == 0:
		data = []byte("version = 2\n")
	case v == nil:
		if _, ok := m["plugins"]; ok {
			return nil, nil, fmt.Errorf("the file has no version key, so containerd reads it as a version 1 config; capshim edits version 2 (containerd 1.6/1.7) and version 3 (containerd 2.x) configs only: convert it first (containerd config default shows the version 2 layout)")
		}
		var note string
		if data, note, err = toVersion2(old, m); err != nil {
			return nil, nil, err
		}
		notes = append(notes, note)
	case v == int64(2):
	case v == int64(3):
		version = 3
	case v == int64(1):
		return nil, nil, fmt.Errorf("version = 1 config: capshim edits version 2 (containerd 1.6/1.7) and version 3 (containerd 2.x) configs only: convert it first (containerd config default shows the version 2 layout)")
	default:
		return nil, nil, fmt.Errorf("unknown config version %v: capshim edits version 2 (containerd 1.6/1.7) and version 3 (containerd 2.x) configs only", v)
	}
	base, err := parseTOML(data)
	if err != nil {
		return nil, nil, err
	}
	plugin := criV2
	if version == 3 {
		plugin = criV3
	}
	cri := []string{"plugins", plugin, "containerd"}
	runtimes := append(append([]string{}, cri...), "runtimes")
	rt := append(append([]string{}, runtimes...), "capshim")
	var settings []tomlSetting
	if opts.SetDefault {
		settings = append(settings, tomlSetting{cri, "default_runtime_name", "capshim"})
	}
	// containerd 1.6/1.7 have runc only while the file has no runtimes
	// table. When the file defines no runtime but capshim's (an older
	// capshim wrote that, and hid runc), the capshim entry makes or keeps
	// such a table, so runc is written out as containerd defines it.
	// containerd 2.x keeps its runc anyway, and reads the written one as
	// the same runtime.
	if version == 2 && !definesRuntimeBesides(base, runtimes, "capshim") {
		settings = append(settings, tomlSetting{append(append([]string{}, runtimes...), builtinRuntime), "runtime_type", "io.containerd.runc.v2"})
	}
	settings = append(settings,
		tomlSetting{rt, "runtime_type", "io.containerd.runc.v2"},
		tomlSetting{rt, "pod_annotations", podAnnotations},
		tomlSetting{rt, "container_annotations", containerAnnotations},
		tomlSetting{append(append([]string{}, rt...), "options"), "BinaryName", opts.Binary},
	)
	out, editNotes, err := applyTOML(data, settings)
	if err != nil {
		return nil, nil, err
	}
	notes = append(notes, editNotes...)
	edited, err := parseTOML(out)
	if err != nil {
		return nil, nil, err
	}
	var before, after []criView
	for _, r := range readersOf(version) {
		before = append(before, readCRI(base, version, r))
		after = append(after, readCRI(edited, version, r))
	}
	checkNotes, err := checkCRI(before, after, opts)
	if err != nil {
		return nil, nil, err
	}
	notes = append(notes, checkNotes...)
	for _, v := range after {
		if v.disabled != "" {
			notes = append(notes, fmt.Sprintf("WARNING: the CRI plugin is disabled (disabled_plugins contains %q): Kubernetes and crictl cannot use containerd, nor its capshim runtime, until %q is removed from disabled_plugins and containerd is restarted. capshim leaves disabled_plugins as it is.", v.disabled, v.disabled))
			break
		}
	}
	if imports, _ := stringList(base, "imports"); len(imports) > 0 {
		// 1.6/1.7 let an imported file's plugin section replace this
		// file's; 2.x merges them key by key.
		if version == 2 {
			notes = append(notes, fmt.Sprintf("the file imports %q: containerd 1.6/1.7 replace this file's section of a plugin with an imported file's as a whole, so capshim's runtime is there only if none of them configures %s", imports, plugin))
		} else {
			notes = append(notes, fmt.Sprintf("the file imports %q: containerd 2.x merges their plugin sections into this file's, so one of them that sets %s keys wins over capshim's", imports, formatKey(rt)))
		}
	}
	if lookup(edited, append(append([]string{}, rt...), "options", "SystemdCgroup")...) != true {
		rts, _ := lookup(base, runtimes...).(map[string]any)
		var systemd []string
		for _, name := range sortedKeys(rts) {
			if name != "capshim" && lookup(rts, name, "options", "SystemdCgroup") == true {
				systemd = append(systemd, name)
			}
		}
		if len(systemd) > 0 {
			notes = append(notes, fmt.Sprintf("the runtime %s sets SystemdCgroup = true: if the kubelet uses the systemd cgroup driver, add SystemdCgroup = true under [%s.options] as well", strings.Join(systemd, ", "), formatKey(rt)))
		}
	}
	return out, notes, nil
}

// definesRuntimeBesides reports whether the table at path (the CRI
// plugin's runtimes) holds a runtime other than name.
func definesRuntimeBesides(m map[string]any, path []string, name string) bool {
	rts, _ := lookup(m, path...).(map[string]any)
	for k := range rts {
		if k != name {
			return true
		}
	}
	return false
}

// v1Plugins maps the version 1 names (plugin ids) of containerd 1.6's
// plugins that a config names most often to their full names.
var v1Plugins = map[string]string{
	"cri":       criV2,
	"aufs":      "io.containerd.snapshotter.v1.aufs",
	"btrfs":     "io.containerd.snapshotter.v1.btrfs",
	"devmapper": "io.containerd.snapshotter.v1.devmapper",
	"native":    "io.containerd.snapshotter.v1.native",
	"overlayfs": "io.containerd.snapshotter.v1.overlayfs",
	"zfs":       "io.containerd.snapshotter.v1.zfs",
	"opt":       "io.containerd.internal.v1.opt",
	"restart":   "io.containerd.internal.v1.restart",
	"tracing":   "io.containerd.internal.v1.tracing",
	"otlp":      "io.containerd.tracing.processor.v1.otlp",
	"cgroups":   "io.containerd.monitor.v1.cgroups",
	"linux":     "io.containerd.runtime.v1.linux",
	"task":      "io.containerd.runtime.v2.task",
	"scheduler": "io.containerd.gc.v1.scheduler",
	"bolt":      "io.containerd.metadata.v1.bolt",
}

// toVersion2 makes a file without a version key (read as version 1) and
// without plugin sections a version 2 file that means the same: it adds
// version = 2 and writes the plugin names of disabled_plugins and
// required_plugins in full, because version 1 names a plugin by its id and
// containerd refuses a version 2 file that does. It returns the note that
// says so.
func toVersion2(old []byte, m map[string]any) ([]byte, string, error) {
	data := insertVersion(old)
	var settings []tomlSetting
	var renamed []string
	for _, key := range []string{"disabled_plugins", "required_plugins"} {
		list, err := stringList(m, key)
		if err != nil {
			return nil, "", err
		}
		full := make([]string, len(list))
		changed := false
		for i, p := range list {
			full[i] = p
			if strings.Contains(p, ".") {
				continue
			}
			name, ok := v1Plugins[p]
			if !ok {
				return nil, "", fmt.Errorf("%s holds %q, a version 1 plugin name capshim does not know the full name of; the file has no version key, and version 2 (which capshim edits) names plugins in full: write it as io.containerd.TYPE.vN.%s (ctr plugins ls shows TYPE and ID) and add version = 2", key, p, p)
			}
			full[i], changed = name, true
			renamed = append(renamed, fmt.Sprintf("%s %q as %q", key, p, name))
		}
		if changed {
			settings = append(settings, tomlSetting{nil, key, full})
		}
	}
	note := "the file had no version key (containerd would read it as version 1) and configures no plugins: capshim added version = 2"
	if len(settings) > 0 {
		var err error
		if data, _, err = applyTOML(data, settings); err != nil {
			return nil, "", err
		}
		note += " and wrote " + strings.Join(renamed, ", ") + " (version 2 names plugins in full)"
	}
	return data, note + ": every setting means what it meant", nil
}

// insertVersion adds "version = 2" at the start of the line of the first
// key or table header, so that it is a top-level key and the comments
// before it stay on top; a file of comments gets it at the end.
func insertVersion(data []byte) []byte {
	nl := lineEnding(data)
	p := &unstable.Parser{}
	p.Reset(data)
	if p.NextExpression() {
		_, start, _ := keyOf(p.Expression())
		at := lineStart(data, start)
		return splice(data, at, at, "version = 2"+nl)
	}
	s := string(data)
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += nl
	}
	return []byte(s + "version = 2" + nl)
}
