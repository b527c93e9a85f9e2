package install

import (
	"bytes"
	"fmt"
	"strings"
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
// everything else stay as they were.
func editContainerd(old []byte, opts Options) ([]byte, []string, error) {
	m, err := parseTOML(old)
	if err != nil {
		return nil, nil, err
	}
	var notes []string
	data := old
	plugin := criV2
	switch v := m["version"]; {
	case len(bytes.TrimSpace(old)) == 0:
		data = []byte("version = 2\n")
	case v == nil:
		if _, ok := m["plugins"]; ok {
			return nil, nil, fmt.Errorf("the file has no version key, so containerd reads it as a version 1 config; capshim edits version 2 (containerd 1.6/1.7) and version 3 (containerd 2.x) configs only: convert it first (containerd config default shows the version 2 layout)")
		}
		data = insertVersion(old)
		notes = append(notes, "the file had no version key (containerd would read it as version 1) and configures no plugins: capshim added version = 2, which means the same for every other key")
	case v == int64(2):
	case v == int64(3):
		plugin = criV3
	case v == int64(1):
		return nil, nil, fmt.Errorf("version = 1 config: capshim edits version 2 (containerd 1.6/1.7) and version 3 (containerd 2.x) configs only: convert it first (containerd config default shows the version 2 layout)")
	default:
		return nil, nil, fmt.Errorf("unknown config version %v: capshim edits version 2 (containerd 1.6/1.7) and version 3 (containerd 2.x) configs only", v)
	}
	cri := []string{"plugins", plugin, "containerd"}
	rt := append(append([]string{}, cri...), "runtimes", "capshim")
	var settings []tomlSetting
	if opts.SetDefault {
		settings = append(settings, tomlSetting{cri, "default_runtime_name", "capshim"})
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
	if d := disabledCRI(m); d != "" {
		notes = append(notes, fmt.Sprintf("WARNING: the CRI plugin is disabled (disabled_plugins contains %q): Kubernetes and crictl cannot use containerd, nor its capshim runtime, until %q is removed from disabled_plugins and containerd is restarted. capshim leaves disabled_plugins as it is.", d, d))
	}
	if lookup(m, append(append([]string{}, cri...), "runtimes", "runc", "options", "SystemdCgroup")...) == true &&
		lookup(m, append(append([]string{}, rt...), "options", "SystemdCgroup")...) != true {
		notes = append(notes, fmt.Sprintf("the runc runtime sets SystemdCgroup = true: if the kubelet uses the systemd cgroup driver, add SystemdCgroup = true under [%s.options] as well", formatKey(rt)))
	}
	return out, notes, nil
}

// disabledCRI returns the name under which disabled_plugins disables the
// CRI plugin, or "".
func disabledCRI(m map[string]any) string {
	list, _ := m["disabled_plugins"].([]any)
	for _, p := range list {
		switch p {
		case "cri", criV2, criV3:
			return p.(string)
		}
	}
	return ""
}

// insertVersion adds "version = 2" before the first line that is not
// blank or a comment (a top-level key or the first table header), so that
// it is a top-level key; a file of comments gets it at the end.
func insertVersion(data []byte) []byte {
	lines := splitLines(string(data))
	nl := "\n"
	if len(lines) > 0 && strings.HasSuffix(lines[0], "\r\n") {
		nl = "\r\n"
	}
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if t != "" && !strings.HasPrefix(t, "#") {
			return []byte(strings.Join(lines[:i], "") + "version = 2" + nl + strings.Join(lines[i:], ""))
		}
	}
	s := string(data)
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += nl
	}
	return []byte(s + "version = 2" + nl)
}
