package learn

import (
	"fmt"
	"strings"
)

// MaxName bounds a profile name.
const MaxName = 64

// CheckName accepts a stored profile's name: 1 to MaxName characters of
// [a-z0-9._-], not starting with a dot, so that a name is always one plain
// file name in the profile directory.
func CheckName(name string) error {
	if name == "" || len(name) > MaxName || name[0] == '.' {
		return fmt.Errorf("profile name %q: want 1 to %d characters of a-z, 0-9, '.', '_' or '-', not starting with '.'", name, MaxName)
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return fmt.Errorf("profile name %q: character %q is not allowed; use a-z, 0-9, '.', '_' or '-'", name, name[i])
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// Sanitize turns any text (a request, an image name, a container id) into
// a valid profile name: lower case, every run of other characters one '-',
// no leading dots or dashes, at most MaxName bytes. It returns "" when
// nothing usable is left.
func Sanitize(s string) string {
	var b strings.Builder
	dash := false
	for i := 0; i < len(s) && b.Len() < MaxName; i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if nameByte(c) && !(b.Len() == 0 && (c == '.' || c == '-')) {
			b.WriteByte(c)
			dash = false
			continue
		}
		if b.Len() > 0 && !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-.")
}

// ImageName strips the tag and digest from an image reference:
// "docker.io/library/nginx:1.25@sha256:..." is "docker.io/library/nginx".
// A port in the registry part ("reg:5000/app") is kept.
func ImageName(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	slash := strings.LastIndexByte(ref, '/')
	if i := strings.LastIndexByte(ref, ':'); i > slash {
		ref = ref[:i]
	}
	return ref
}

// SandboxProfile is the profile of CRI pod sandboxes.
const SandboxProfile = "cri-sandbox"

// ProfileName derives a workload's profile name from what the engine says
// about the container: the CRI image (without tag or digest) and container
// name, else the container id. Every CRI pod sandbox is the same workload,
// the node's pause process, and has neither image nor container name in
// its annotations (containerd 1.6): they share SandboxProfile rather than
// leave a profile named by its id behind every learned pod.
func ProfileName(annotations map[string]string, id string) string {
	if annotations["io.kubernetes.cri.container-type"] == "sandbox" {
		return SandboxProfile
	}
	image := annotations["io.kubernetes.cri.image-name"]
	name := annotations["io.kubernetes.cri.container-name"]
	if image != "" {
		base := ImageName(image)
		if i := strings.LastIndexByte(base, '/'); i >= 0 {
			base = base[i+1:]
		}
		n := base
		if name != "" && name != base {
			n += "-" + name
		}
		if s := Sanitize(n); s != "" {
			return s
		}
	}
	if s := Sanitize(name); s != "" {
		return s
	}
	return Sanitize(id)
}
