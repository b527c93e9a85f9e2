package learn

import (
	"path/filepath"
	"strings"

	"github.com/capshim/capshim/internal/safetext"
)

// About is what the engine says about a container, in the terms people
// look it up by: the engine, the container's name, its pod and namespace
// (Kubernetes) and its image. Each is "" where the engine does not say.
type About struct {
	Engine    string `json:"engine,omitempty"`
	Name      string `json:"name,omitempty"`
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Image     string `json:"image,omitempty"`
	// Sandbox marks a pod's sandbox (its pause container), which has a
	// pod but no name of its own.
	Sandbox bool `json:"sandbox,omitempty"`
}

// maxAbout bounds each value: the annotations are as long as a requester
// makes them under ctr or Podman.
const maxAbout = 256

// The annotations containerd's CRI plugin sets on every container it
// creates (and a pod's own annotations cannot set, see README).
const (
	criType      = "io.kubernetes.cri.container-type"
	criName      = "io.kubernetes.cri.container-name"
	criPod       = "io.kubernetes.cri.sandbox-name"
	criNamespace = "io.kubernetes.cri.sandbox-namespace"
	criImage     = "io.kubernetes.cri.image-name"
)

// Describe says what the engine said about a container, from the
// annotations of its spec and the runtime's --root: containerd's CRI
// plugin names the container, pod, namespace and image; Podman marks its
// containers with io.container.manager = libpod; Docker 20.10 sets no
// annotation at all, but runs every runtime with --root
// EXEC-ROOT/runtime-NAME/moby, which tells it apart.
func Describe(annotations map[string]string, root string) About {
	cut := func(s string) string { return safetext.Truncate(s, maxAbout) }
	var a About
	switch {
	case annotations[criType] != "":
		a.Engine = "containerd-cri"
		a.Name = cut(annotations[criName])
		a.Pod = cut(annotations[criPod])
		a.Namespace = cut(annotations[criNamespace])
		a.Image = cut(annotations[criImage])
		a.Sandbox = annotations[criType] == "sandbox"
	case annotations["io.container.manager"] == "libpod":
		a.Engine = "podman"
	case filepath.Base(root) == "moby" && strings.HasPrefix(filepath.Base(filepath.Dir(root)), "runtime-"):
		a.Engine = "docker"
	}
	if a.Name == "" {
		a.Name = cut(annotations["io.kubernetes.pod.name"])
	}
	return a
}

// About is what the engine said about the recorded container.
func (c *Container) About() About { return Describe(c.Engine, c.Root) }

// Matches reports whether query names the container: its name, pod/name
// or namespace/pod/name (and, for a sandbox, its pod or namespace/pod).
func (a About) Matches(query string) bool {
	if query == "" {
		return false
	}
	for _, n := range a.Names() {
		if n == query {
			return true
		}
	}
	return false
}

// Names lists the names the container answers to, most specific last.
func (a About) Names() []string {
	var out []string
	name := a.Name
	if a.Sandbox && name == "" {
		name = a.Pod
		if name != "" {
			out = append(out, name)
		}
		if a.Namespace != "" && a.Pod != "" {
			out = append(out, a.Namespace+"/"+a.Pod)
		}
		return out
	}
	if name == "" {
		return nil
	}
	out = append(out, name)
	if a.Pod != "" {
		out = append(out, a.Pod+"/"+name)
		if a.Namespace != "" {
			out = append(out, a.Namespace+"/"+a.Pod+"/"+name)
		}
	}
	return out
}

// Full is the container's most specific name ("" when it has none).
func (a About) Full() string {
	n := a.Names()
	if len(n) == 0 {
		return ""
	}
	return n[len(n)-1]
}
