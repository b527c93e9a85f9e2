#!/bin/sh
# build.sh writes the node-installer image of deploy/kubernetes as one
# image archive, offline: the three static binaries of `make build`, the
# node-install script and a static busybox for its shell and tools. The
# archive is an OCI image layout (index.json, oci-layout, blobs) that also
# carries the docker-archive manifest.json, so `ctr images import`, `docker
# load` (Docker 20.10 knows only docker-archive) and `podman load` all take
# it. Everything is written with fixed owners and times: the same inputs
# give the same archive.
#
#   build.sh BIN_DIR BUSYBOX IMAGE_NAME OUT.tar
set -eu

[ $# -eq 4 ] || { echo "usage: build.sh BIN_DIR BUSYBOX IMAGE_NAME OUT.tar" >&2; exit 2; }
bindir=$1 busybox=$2 name=$3 out=$4
here=$(cd "$(dirname "$0")" && pwd)
for f in "$bindir/capshim" "$bindir/capshim-tools" "$bindir/capshim-trace"; do
	[ -x "$f" ] || { echo "build.sh: $f missing: run make build first" >&2; exit 1; }
done
[ -x "$busybox" ] || { echo "build.sh: $busybox missing: install busybox-static" >&2; exit 1; }
if ! file "$busybox" 2>/dev/null | grep -q "statically linked"; then
	case "$(readelf -d "$busybox" 2>/dev/null)" in *NEEDED*) echo "build.sh: $busybox is not static: install busybox-static" >&2; exit 1 ;; esac
fi
tag=${name##*:}

w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
r=$w/rootfs
mkdir -p "$r/bin" "$r/usr/local/bin" "$r/host" "$r/config" "$r/tmp"
chmod 1777 "$r/tmp"
cp "$busybox" "$r/bin/busybox"
for a in sh cat chmod chown cmp cp echo grep kill ls mkdir mv nsenter readlink rm sha256sum sleep test touch [; do
	ln -s busybox "$r/bin/$a"
done
for b in capshim capshim-tools capshim-trace; do cp "$bindir/$b" "$r/usr/local/bin/$b"; done
cp "$here/node-install.sh" "$r/usr/local/bin/capshim-node-install"
chmod 0755 "$r/bin/busybox" "$r/usr/local/bin/"*

B=$w/oci/blobs/sha256
mkdir -p "$B"
tar -C "$r" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$w/layer.tar" .
put() { d=$(sha256sum "$1" | cut -d' ' -f1); mv "$1" "$B/$d"; echo "$d"; }
L=$(put "$w/layer.tar"); LS=$(stat -c %s "$B/$L")
printf '{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["PATH=/usr/local/bin:/bin"],"Entrypoint":["/usr/local/bin/capshim-node-install"],"WorkingDir":"/","Labels":{"org.opencontainers.image.title":"capshim node installer","org.opencontainers.image.version":"%s"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"deploy/kubernetes/image/build.sh"}]}' "$tag" "$L" >"$w/cfg"
C=$(put "$w/cfg"); CS=$(stat -c %s "$B/$C")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' "$C" "$CS" "$L" "$LS" >"$w/man"
M=$(put "$w/man"); MS=$(stat -c %s "$B/$M")
echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' "$M" "$MS" "$name" "$tag" >"$w/oci/index.json"
printf '[{"Config":"blobs/sha256/%s","RepoTags":["%s"],"Layers":["blobs/sha256/%s"]}]' "$C" "$name" "$L" >"$w/oci/manifest.json"
mkdir -p "$(dirname "$out")"
tar -C "$w/oci" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$out.tmp" .
mv -f "$out.tmp" "$out"
echo "image $name: $out (manifest sha256:$M)"
