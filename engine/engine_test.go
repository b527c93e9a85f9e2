package engine

import (
	"testing"

	"github.com/capshim/capshim/capability"
)

func TestIdentify(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		root        string
		want        Engine
	}{
		{name: "cri container", annotations: map[string]string{CRIContainerType: "container"}, root: "/run/containerd/runc/k8s.io", want: CRI},
		{name: "cri sandbox", annotations: map[string]string{CRIContainerType: "sandbox"}, want: CRI},
		{name: "podman", annotations: map[string]string{PodmanManager: "libpod"}, want: Podman},
		{name: "podman manager of another value", annotations: map[string]string{PodmanManager: "other"}, want: Unknown},
		{name: "docker root", root: "/var/run/docker/runtime-runc/moby", want: Docker},
		{name: "docker root with a slash", root: "/var/run/docker/runtime-capshim/moby/", want: Docker},
		{name: "ctr in its own namespace", root: "/run/containerd/runc/default", want: Unknown},
		{name: "runc's default root", want: Unknown},
		{name: "cri wins over the moby root", annotations: map[string]string{CRIContainerType: "container"}, root: "/x/moby", want: CRI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Identify(tt.annotations, tt.root); got != tt.want {
				t.Fatalf("Identify = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRequest(t *testing.T) {
	netAdmin := capability.Of(capability.NetAdmin)
	tests := []struct {
		name       string
		engine     Engine
		granted    capability.Set
		privileged bool
		want       capability.Set
	}{
		{name: "docker default", engine: Docker, granted: capability.DockerDefault, want: 0},
		{name: "docker --cap-add", engine: Docker, granted: capability.DockerDefault | netAdmin, want: netAdmin},
		{name: "docker --cap-drop ALL --cap-add", engine: Docker, granted: netAdmin, want: netAdmin},
		{name: "docker --privileged", engine: Docker, granted: capability.All, privileged: true, want: 0},
		{name: "podman default", engine: Podman, granted: capability.PodmanDefault, want: 0},
		{name: "podman --cap-add NET_RAW", engine: Podman, granted: capability.PodmanDefault.Add(capability.NetRaw), want: capability.Of(capability.NetRaw)},
		{name: "unknown: Docker's default is not a request", engine: Unknown, granted: capability.DockerDefault, want: 0},
		{name: "unknown: beyond every default", engine: Unknown, granted: capability.DockerDefault | netAdmin, want: netAdmin},
		{name: "cri add", engine: CRI, granted: capability.DockerDefault | netAdmin, want: netAdmin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.engine.Request(tt.granted, tt.privileged); got != tt.want {
				t.Fatalf("Request = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestUnknownIsLargest: an engine capshim cannot tell never counts as
// asked for what a known engine grants by default.
func TestUnknownIsLargest(t *testing.T) {
	for _, e := range []Engine{Docker, CRI, Podman} {
		if e.Default()&^Unknown.Default() != 0 {
			t.Fatalf("%v's default %v is not within the unknown engine's %v", e, e.Default(), Unknown.Default())
		}
	}
}
