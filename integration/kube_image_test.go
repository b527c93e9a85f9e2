//go:build integration

package integration

// The installer image archive `make image` writes is one file that both
// `docker load` (Docker 20.10 reads only the docker-archive manifest.json)
// and `ctr images import` (the OCI index.json) take, under the name the
// DaemonSet runs; a container of it runs the capshim commands it carries.
// (The kube tests import and run it in Kubernetes as well.)

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestInstallerImageArchive loads the archive into a private dockerd and
// a private containerd and runs capshim from it in each.
func TestInstallerImageArchive(t *testing.T) {
	archive, name := os.Getenv("CAPSHIM_INSTALLER_IMAGE"), os.Getenv("CAPSHIM_INSTALLER_IMAGE_NAME")
	if archive == "" || name == "" {
		t.Skip("CAPSHIM_INSTALLER_IMAGE(_NAME) do not name the archive make image writes (make test sets them)")
	}
	requireContainerd(t)
	checkArchiveLayout(t, archive)
	const check = "ls /usr/local/bin && /usr/local/bin/capshim caps CAP_CHOWN >/dev/null && echo capshim-runs"
	want := "capshim\ncapshim-node-install\ncapshim-tools\ncapshim-trace\ncapshim-runs\n"

	t.Run("docker load", func(t *testing.T) {
		e := dockerStart(t, nil, nil)
		r := e.docker("load", "-i", archive)
		if r.err != nil || !strings.Contains(r.stdout, "Loaded image: "+name) {
			t.Fatalf("docker load does not load %s:\n%v", name, r)
		}
		t.Logf("docker load -i %s: %s", archive, strings.TrimSpace(r.stdout))
		r = e.docker("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", name, "-c", check)
		if r.err != nil || r.stdout != want {
			t.Fatalf("the image's capshim does not run under Docker:\n%v", r)
		}
	})
	t.Run("ctr images import", func(t *testing.T) {
		d := startContainerd(t, []criHandler{{name: "runc"}}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := d.ctr(ctx, "default", "images", "import", archive)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("ctr images import %s: %s", archive, strings.TrimSpace(out))
		if ls, err := d.ctr(ctx, "default", "images", "ls", "-q"); err != nil || !strings.Contains(ls, name+"\n") {
			t.Fatalf("%s not in ctr images ls after the import (%v):\n%s", name, err, ls)
		}
		id := "capshim-installer-image"
		t.Cleanup(func() { d.ctrRemove("default", id) })
		args := append([]string{"run", "--rm"}, d.ctrRunFlags(id)...)
		out, err = d.ctr(ctx, "default", append(args, name, id, "/bin/sh", "-c", check)...)
		if err != nil || out != want {
			t.Fatalf("the image's capshim does not run under containerd (%v):\n%s", err, out)
		}
	})
}

// checkArchiveLayout checks that the archive has the files of both formats.
func checkArchiveLayout(t *testing.T, archive string) {
	t.Helper()
	r := runCmd(cmdOpts{}, "tar", "tf", archive)
	if r.err != nil {
		t.Fatalf("%v", r)
	}
	for _, want := range []string{"./index.json", "./manifest.json", "./oci-layout"} {
		if !strings.Contains(r.stdout, want+"\n") {
			t.Errorf("%s has no %s: both docker load and ctr images import need it", archive, want)
		}
	}
}
