//go:build integration

package integration

// OCI bundles for the runtime tests: a busybox root file system made from
// the host's static busybox, and bundles with Docker's 14 default
// capabilities that either have a rootfs of their own (newBundle) or share
// one (rootfsBundle, whose spec crun reads too).

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
)

// buildRootfs fills dir with a minimal busybox root file system made from
// the static busybox binary of the host (Debian package busybox-static).
func buildRootfs(t *testing.T, dir string) {
	t.Helper()
	bb := "/bin/busybox"
	if _, err := os.Stat(bb); err != nil {
		t.Fatalf("static busybox missing (apt-get install busybox-static): %v", err)
	}
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("chroot", dir, "/bin/busybox", "--install", "-s", "/bin").CombinedOutput()
	if err != nil {
		t.Fatalf("busybox --install: %v: %s", err, out)
	}
	writeFile(t, filepath.Join(dir, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n", 0o644)
	writeFile(t, filepath.Join(dir, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n", 0o644)
}

// printCaps is the container command of most tests.
var printCaps = []string{"sh", "-c", "grep Cap /proc/self/status"}

// bundleSpec describes the config.json of a test bundle.
type bundleSpec struct {
	args        []string          // process.args; default printCaps
	inhAmb      bool              // also put the caps into inheritable and ambient
	extraCaps   []string          // caps added to bounding/effective/permitted (and inh/amb when inhAmb)
	env         []string          // extra process.env entries
	annotations map[string]string // config.json annotations
}

// newBundle makes a bundle directory with a busybox rootfs and a config.json
// generated with runtime-tools: Docker's 14 default capabilities in
// bounding, effective and permitted (and inheritable and ambient when
// bs.inhAmb), no terminal, no user namespace, own network namespace.
func newBundle(t *testing.T, bs bundleSpec) string {
	t.Helper()
	b := filepath.Join(t.TempDir(), "bundle")
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	buildRootfs(t, filepath.Join(b, "rootfs"))
	// Runs after the container cleanups (registered later): nothing may
	// stay mounted under the bundle.
	t.Cleanup(func() { checkNoMounts(t, b) })
	g, err := generate.New("linux")
	if err != nil {
		t.Fatal(err)
	}
	g.SetRootPath("rootfs")
	g.SetHostname("capshim-it")
	args := bs.args
	if args == nil {
		args = printCaps
	}
	g.SetProcessArgs(args)
	g.SetProcessTerminal(false)
	// This VM's root has no CAP_SYS_RESOURCE: never ask for an rlimit above
	// the current hard limit (NOFILE's hard limit may be low here), and set
	// no oomScoreAdj.
	g.ClearProcessRlimits()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	nofile := min(uint64(1024), lim.Max)
	g.AddProcessRlimits("RLIMIT_NOFILE", nofile, nofile)
	g.Config.Process.OOMScoreAdj = nil
	caps := append(append([]string{}, dockerCaps...), bs.extraCaps...)
	c := &rspec.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	if bs.inhAmb {
		c.Inheritable, c.Ambient = caps, caps
	}
	g.Config.Process.Capabilities = c
	for _, e := range bs.env {
		k, v, _ := strings.Cut(e, "=")
		g.AddProcessEnv(k, v)
	}
	for k, v := range bs.annotations {
		g.AddAnnotation(k, v)
	}
	// Keep the container's own network namespace (no network setup) and
	// no user namespace.
	netns := false
	for _, ns := range g.Config.Linux.Namespaces {
		switch {
		case ns.Type == rspec.UserNamespace:
			t.Fatal("generated spec has a user namespace")
		case ns.Type == rspec.NetworkNamespace && ns.Path == "":
			netns = true
		}
	}
	if !netns {
		t.Fatal("generated spec has no network namespace of its own")
	}
	if err := g.SaveToFile(filepath.Join(b, "config.json"), generate.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	return b
}

// checkNoMounts fails the test when a mount point lies under dir.
func checkNoMounts(t *testing.T, dir string) {
	t.Helper()
	for _, mp := range mountsUnder(dir) {
		t.Errorf("leftover mount under the bundle: %s", mp)
	}
}

// rootfsBundle writes B/config.json for rootfs: Docker's 14 capabilities in
// the bounding, effective and permitted sets, args as the process, plus
// extra process env and annotations.
func rootfsBundle(t *testing.T, rootfs string, args, env []string, annotations map[string]string) string {
	t.Helper()
	g, err := generate.New("linux")
	if err != nil {
		t.Fatal(err)
	}
	// runtime-spec v1.3.0 writes ociVersion 1.3.0, which crun 1.8.1 rejects
	// ("unknown version specified": it accepts 1.0.x only); Docker 20.10
	// and containerd 1.6 write 1.0.2-dev.
	g.Config.Version = "1.0.2-dev"
	g.SetRootPath(rootfs)
	g.SetRootReadonly(true)
	g.SetHostname("capshim-crun")
	g.SetProcessTerminal(false)
	g.SetProcessArgs(args)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		g.AddProcessEnv(k, v)
	}
	for k, v := range annotations {
		g.AddAnnotation(k, v)
	}
	caps := append([]string(nil), dockerCaps...)
	g.Config.Process.Capabilities = &rspec.LinuxCapabilities{
		Bounding:  caps,
		Effective: caps,
		Permitted: caps,
	}
	bundle := t.TempDir()
	if err := g.SaveToFile(filepath.Join(bundle, "config.json"), generate.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	return bundle
}

// editBundleSpec changes a bundle's config.json.
func editBundleSpec(t *testing.T, bundle string, edit func(*rspec.Spec)) {
	t.Helper()
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var spec rspec.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatalf("%s is not a readable spec: %v", path, err)
	}
	edit(&spec)
	if data, err = json.MarshalIndent(&spec, "", "\t"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(data), 0o644)
}
