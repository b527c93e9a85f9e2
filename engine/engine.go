// Package engine tells which container engine wrote a spec, and what that
// engine grants a container when nobody asks for more. A capability a
// spec holds beyond that default was added by the engine's own flag
// (docker and podman --cap-add, Kubernetes securityContext.capabilities.add),
// and capshim's policy takes it as a request.
//
// The engine is told from what it writes itself: the annotations of the
// CRI plugin and of Podman, and the runtime state root dockerd hands
// down. None of it is a trust boundary: a requester who could forge it
// could as well ask with an annotation or CAPSHIM_CAPABILITIES, and the
// policy decides either way.
package engine

import (
	"path/filepath"

	"github.com/capshim/capshim/capability"
)

// Engine is the engine that wrote a spec.
type Engine uint8

// The engines capshim tells apart.
const (
	// Unknown is any engine capshim cannot tell: only what lies beyond
	// every known engine's default counts as its request.
	Unknown Engine = iota
	// Docker is dockerd (through containerd and its runc shim).
	Docker
	// CRI is Kubernetes through containerd's CRI plugin.
	CRI
	// Podman is Podman (libpod, through conmon).
	Podman
)

// Annotations and state roots the engines write themselves.
const (
	// CRIContainerType is set by containerd's CRI plugin on every
	// sandbox and container spec ("sandbox" or "container").
	CRIContainerType = "io.kubernetes.cri.container-type"
	// PodmanManager is set by Podman to "libpod" on every spec.
	PodmanManager = "io.container.manager"
	// dockerNamespace is the containerd namespace dockerd uses; the runc
	// shim puts it last in the runtime's --root.
	dockerNamespace = "moby"
)

// Identify tells the engine from a spec's annotations and the runtime's
// --root ("" when none was given).
func Identify(annotations map[string]string, root string) Engine {
	switch {
	case annotations[CRIContainerType] != "":
		return CRI
	case annotations[PodmanManager] == "libpod":
		return Podman
	case root != "" && filepath.Base(root) == dockerNamespace:
		return Docker
	}
	return Unknown
}

// String names the engine in logs and records.
func (e Engine) String() string {
	switch e {
	case Docker:
		return "docker"
	case CRI:
		return "kubernetes"
	case Podman:
		return "podman"
	}
	return "unknown"
}

// Flag names the engine's own way of adding a capability, as logs and
// explain show the source of its request.
func (e Engine) Flag() string {
	switch e {
	case Docker:
		return "docker --cap-add"
	case CRI:
		return "securityContext.capabilities.add"
	case Podman:
		return "podman --cap-add"
	}
	return "engine --cap-add"
}

// Default is what the engine grants a container by default: 14
// capabilities for Docker and containerd (the CRI plugin's default spec
// is containerd's), Podman's 11 (containers.conf default_capabilities as
// Podman ships it). For an engine capshim cannot tell it is the union of
// them all, so that nothing an engine grants by default counts as asked
// for.
func (e Engine) Default() capability.Set {
	switch e {
	case Docker, CRI:
		return capability.DockerDefault
	case Podman:
		return capability.PodmanDefault
	}
	return capability.DockerDefault | capability.PodmanDefault
}

// Request is what the engine's flag asked for, given every capability its
// spec grants (in any set): what lies beyond its default. A privileged
// container asks for nothing: --privileged grants everything for reasons
// of its own (devices, mounts), and is no request for any capability.
func (e Engine) Request(granted capability.Set, privileged bool) capability.Set {
	if privileged {
		return 0
	}
	return granted &^ e.Default()
}
