//go:build integration

package integration

// The image archives images/build.sh writes (see images_workloads_test.go):
// each is a valid OCI image layout with a docker-archive manifest, whose
// blobs hash to their names, and containerd imports it whole.

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// imageMaxJSON bounds what readImageArchive keeps of a file: an archive's JSON
// files and blobs stay far below it.
const imageMaxJSON = 1 << 20

// imageDescriptor is the part of an OCI content descriptor the checks read.
type imageDescriptor struct {
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

// imageArchive is what readImageArchive found in an image.tar.
type imageArchive struct {
	files map[string][]byte // JSON files and small blobs by path
	blobs map[string]int64  // sizes of blobs/sha256/<hex>, each checked to hash to hex
}

// readImageArchive reads an image tar, keeps its JSON files and checks that
// every blob's content matches its name.
func readImageArchive(path string) (*imageArchive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a := &imageArchive{files: map[string][]byte{}, blobs: map[string]int64{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return a, nil
		}
		if err != nil {
			return nil, err
		}
		name := filepath.Clean(h.Name)
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if hexName, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			// Layers are only hashed; the small JSON blobs are kept too.
			sum := sha256.New()
			var keep strings.Builder
			dst := io.Writer(sum)
			if h.Size <= imageMaxJSON {
				dst = io.MultiWriter(sum, &keep)
			}
			n, err := io.Copy(dst, tr)
			if err != nil {
				return nil, err
			}
			if h.Size <= imageMaxJSON {
				a.files[name] = []byte(keep.String())
			}
			if got := hex.EncodeToString(sum.Sum(nil)); got != hexName {
				return nil, fmt.Errorf("blob %s holds content of sha256 %s", name, got)
			}
			a.blobs[hexName] = n
			continue
		}
		if a.files[name], err = io.ReadAll(io.LimitReader(tr, imageMaxJSON)); err != nil {
			return nil, err
		}
	}
}

// blob returns the JSON blob of digest, checking its size.
func (a *imageArchive) blob(d imageDescriptor) ([]byte, error) {
	hexName, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok {
		return nil, fmt.Errorf("digest %q is not sha256", d.Digest)
	}
	size, ok := a.blobs[hexName]
	if !ok {
		return nil, fmt.Errorf("blob %s missing", d.Digest)
	}
	if size != d.Size {
		return nil, fmt.Errorf("blob %s has %d bytes, the descriptor says %d", d.Digest, size, d.Size)
	}
	return a.files["blobs/sha256/"+hexName], nil
}

// TestImagesArchiveLayout checks each image.tar as an OCI image layout
// (one image, the names containerd and podman read, one layer, Cmd the
// entrypoint) and its docker-archive manifest.json, so an engine's import
// error would not be the first sign of a broken archive.
func TestImagesArchiveLayout(t *testing.T) {
	set := imageSet(t)
	tests := []struct {
		name     string
		workload string
	}{
		{name: "nginx", workload: "nginx"},
		{name: "postgres", workload: "postgres"},
		{name: "redis", workload: "redis"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := readImageArchive(filepath.Join(set, tc.workload, "image.tar"))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(a.files["oci-layout"]); !strings.Contains(got, `"imageLayoutVersion":"1.0.0"`) {
				t.Errorf("oci-layout = %q", got)
			}
			var index struct {
				Manifests []imageDescriptor `json:"manifests"`
			}
			if err := json.Unmarshal(a.files["index.json"], &index); err != nil {
				t.Fatalf("index.json: %v", err)
			}
			if len(index.Manifests) != 1 {
				t.Fatalf("index.json lists %d manifests, want 1", len(index.Manifests))
			}
			md := index.Manifests[0]
			ref := "docker.io/capshim-test/" + tc.workload + ":1"
			if got := md.Annotations["io.containerd.image.name"]; got != ref {
				t.Errorf("io.containerd.image.name = %q, want %q", got, ref)
			}
			if got := md.Annotations["org.opencontainers.image.ref.name"]; got != "1" {
				t.Errorf("org.opencontainers.image.ref.name = %q, want \"1\"", got)
			}
			mdata, err := a.blob(md)
			if err != nil {
				t.Fatalf("manifest: %v", err)
			}
			var man struct {
				Config imageDescriptor   `json:"config"`
				Layers []imageDescriptor `json:"layers"`
			}
			if err := json.Unmarshal(mdata, &man); err != nil {
				t.Fatalf("manifest: %v", err)
			}
			if len(man.Layers) != 1 {
				t.Fatalf("manifest has %d layers, want 1", len(man.Layers))
			}
			if _, err := a.blob(man.Layers[0]); err != nil {
				t.Fatalf("layer: %v", err)
			}
			cdata, err := a.blob(man.Config)
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			var cfg struct {
				Config struct {
					Cmd []string `json:"Cmd"`
				} `json:"config"`
				RootFS struct {
					DiffIDs []string `json:"diff_ids"`
				} `json:"rootfs"`
			}
			if err := json.Unmarshal(cdata, &cfg); err != nil {
				t.Fatalf("config: %v", err)
			}
			if !slices.Equal(cfg.Config.Cmd, []string{workloadEntrypoint}) {
				t.Errorf("config Cmd = %q, want [%q]", cfg.Config.Cmd, workloadEntrypoint)
			}
			// An uncompressed layer: its diff id is its digest.
			if want := []string{man.Layers[0].Digest}; !slices.Equal(cfg.RootFS.DiffIDs, want) {
				t.Errorf("config diff_ids = %q, want %q", cfg.RootFS.DiffIDs, want)
			}
			var dm []struct {
				Config   string
				RepoTags []string
				Layers   []string
			}
			if err := json.Unmarshal(a.files["manifest.json"], &dm); err != nil {
				t.Fatalf("manifest.json: %v", err)
			}
			wantLayer := "blobs/sha256/" + strings.TrimPrefix(man.Layers[0].Digest, "sha256:")
			wantCfg := "blobs/sha256/" + strings.TrimPrefix(man.Config.Digest, "sha256:")
			if len(dm) != 1 || dm[0].Config != wantCfg || !slices.Equal(dm[0].RepoTags, []string{ref}) || !slices.Equal(dm[0].Layers, []string{wantLayer}) {
				t.Errorf("manifest.json = %+v, want config %s, tag %s, layer %s", dm, wantCfg, ref, wantLayer)
			}
		})
	}
}

// TestImagesImportContainerd imports each image.tar with `ctr images
// import` into a private containerd (own root, state and socket, stopped
// by its PID) and checks containerd sees the image whole and unpacked.
func TestImagesImportContainerd(t *testing.T) {
	requireContainerd(t)
	set := imageSet(t)
	d := startContainerd(t, nil, nil)
	const ns = "test"
	tests := []struct {
		name     string
		workload string
	}{
		{name: "nginx", workload: "nginx"},
		{name: "postgres", workload: "postgres"},
		{name: "redis", workload: "redis"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			ref := "docker.io/capshim-test/" + tc.workload + ":1"
			out, err := d.ctr(ctx, ns, "images", "import", filepath.Join(set, tc.workload, "image.tar"))
			if err != nil {
				t.Fatalf("%v\n%s", err, d.logTail(20))
			}
			if !strings.Contains(out, "unpacking "+ref) {
				t.Errorf("ctr images import did not unpack %s:\n%s", ref, out)
			}
			out, err = d.ctr(ctx, ns, "images", "check", "name=="+ref)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, ref) || !strings.Contains(out, "complete") || !strings.Contains(out, "true") {
				t.Errorf("ctr images check: %s is not complete and unpacked:\n%s", ref, out)
			}
		})
	}
}
