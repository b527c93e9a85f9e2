//go:build integration

package integration

// Image archives of the busybox root file system for the engines: an OCI
// layout that containerd imports, and the docker-archive manifest that
// Docker 20.10 and Podman need on top of it.

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	imageBusybox = "docker.io/capshim-test/busybox:1"
	imagePause   = "docker.io/capshim-test/pause:1"
)

// buildImageArchive writes an OCI image layout tar holding two images that
// share one busybox layer: docker.io/capshim-test/busybox:1 (CMD /bin/sh)
// and docker.io/capshim-test/pause:1 (sleeps). `ctr images import` takes
// it as it is; Docker 20.10 and Podman need the docker-archive manifest
// that buildDockerArchive adds.
func buildImageArchive(t *testing.T, out string) {
	t.Helper()
	w := t.TempDir()
	root := filepath.Join(w, "rootfs")
	buildRootfs(t, root)
	script := `set -eu
W=$1; OUT=$2; R=$W/rootfs; B=$W/oci/blobs/sha256
mkdir -p "$B"
tar -C "$R" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$W/layer.tar" .
put() { d=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$B/$d"; echo "$d"; }
L=$(put "$W/layer.tar"); LS=$(stat -c %s "$B/$L")
M=""
for spec in 'pause|["/bin/sleep","2147483647"]' 'busybox|["/bin/sh"]'; do
  name=${spec%%|*}; cmd=${spec#*|}
  printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["PATH=/bin:/sbin:/usr/bin:/usr/sbin"],"Cmd":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"capshim integration"}]}' "$cmd" "$L" >"$W/cfg"
  C=$(put "$W/cfg"); CS=$(stat -c %s "$B/$C")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$C" "$CS" "$L" "$LS" >"$W/man"
  MD=$(put "$W/man"); MS=$(stat -c %s "$B/$MD")
  [ -n "$M" ] && M="$M,"
  M="$M$(printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"docker.io/capshim-test/%s:1","org.opencontainers.image.ref.name":"1"}}' "$MD" "$MS" "$name")"
done
echo '{"imageLayoutVersion":"1.0.0"}' >"$W/oci/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "$M" >"$W/oci/index.json"
tar -C "$W/oci" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$OUT" .
`
	cmd := exec.Command("bash", "-c", script, "build", w, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building image archive: %v: %s", err, b)
	}
}

// buildDockerArchive writes an image archive that both `docker load` of
// Docker 20.10 and `podman load` accept: the OCI layout of
// buildImageArchive plus a docker-archive manifest.json next to it (Docker
// loads OCI layouts only from version 25 on; podman's oci-archive
// transport refuses an index with two images and falls back to
// docker-archive). The tags are docker.io/capshim-test/busybox:1 and
// docker.io/capshim-test/pause:1.
func buildDockerArchive(t *testing.T, out string) {
	t.Helper()
	oci := filepath.Join(t.TempDir(), "oci.tar")
	buildImageArchive(t, oci)
	if err := addDockerManifest(oci, out); err != nil {
		t.Fatalf("converting %s to a docker archive: %v", oci, err)
	}
}

// addDockerManifest copies the OCI layout tar in to out and adds the
// manifest.json of the docker-archive format.
func addDockerManifest(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	type entry struct {
		hdr  *tar.Header
		data []byte
	}
	var entries []entry
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		entries = append(entries, entry{h, data})
		files[filepath.Clean(h.Name)] = data
	}
	blob := func(digest string) (string, []byte, error) {
		algo, hex, ok := strings.Cut(digest, ":")
		if !ok {
			return "", nil, fmt.Errorf("bad digest %q", digest)
		}
		p := filepath.Join("blobs", algo, hex)
		data, ok := files[p]
		if !ok {
			return "", nil, fmt.Errorf("blob %s not in archive", p)
		}
		return p, data, nil
	}
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &index); err != nil {
		return fmt.Errorf("index.json: %w", err)
	}
	type dockerManifest struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var dm []dockerManifest
	for _, m := range index.Manifests {
		_, data, err := blob(m.Digest)
		if err != nil {
			return err
		}
		var man struct {
			Config struct {
				Digest string `json:"digest"`
			} `json:"config"`
			Layers []struct {
				Digest string `json:"digest"`
			} `json:"layers"`
		}
		if err := json.Unmarshal(data, &man); err != nil {
			return fmt.Errorf("manifest %s: %w", m.Digest, err)
		}
		cfg, _, err := blob(man.Config.Digest)
		if err != nil {
			return err
		}
		item := dockerManifest{Config: cfg}
		if name := m.Annotations["io.containerd.image.name"]; name != "" {
			item.RepoTags = []string{name}
		}
		for _, l := range man.Layers {
			lp, _, err := blob(l.Digest)
			if err != nil {
				return err
			}
			item.Layers = append(item.Layers, lp)
		}
		dm = append(dm, item)
	}
	mj, err := json.Marshal(dm)
	if err != nil {
		return err
	}
	o, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(o)
	for _, e := range entries {
		if err := tw.WriteHeader(e.hdr); err != nil {
			o.Close()
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			o.Close()
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(mj)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		o.Close()
		return err
	}
	if _, err := tw.Write(mj); err != nil {
		o.Close()
		return err
	}
	if err := tw.Close(); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}
