#!/bin/sh
# containerd2.sh builds containerd 2.x (containerd, its runc shim and ctr)
# from the Go module proxy into a cache directory outside the repository:
# no Debian release ships containerd 2.x. The binaries are static
# (CGO_ENABLED=0), so the snapshotters and graph drivers that need cgo
# are left out by build tag; the tests use overlayfs.
#
#   containerd2.sh [cache-root]   (default /var/cache/capshim-test/containerd)
#
# CONTAINERD2_VERSION overrides the version (default below).
set -eu

version=${CONTAINERD2_VERSION:-v2.2.7}
root=${1:-/var/cache/capshim-test/containerd}
bin=$root/$version/bin
# The binaries report the version without its "v" ("containerd ... 2.2.7"),
# which is what the tests look for; the stamp records the build settings,
# so a cache from other settings is rebuilt.
stamp="${version#v} no_btrfs no_devmapper no_zfs no_aufs"
if [ -x "$bin/containerd" ] && [ -x "$bin/containerd-shim-runc-v2" ] && [ -x "$bin/ctr" ] &&
	[ "$(cat "$bin/.built" 2>/dev/null)" = "$stamp" ]; then
	echo "containerd $version: cached in $bin"
	exit 0
fi
mkdir -p "$bin"
for c in containerd containerd-shim-runc-v2 ctr; do
	echo "containerd $version: building $c"
	CGO_ENABLED=0 GOBIN="$bin" GOFLAGS=-buildvcs=false go install -trimpath \
		-tags "no_btrfs no_devmapper no_zfs no_aufs" \
		-ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=${version#v}" \
		"github.com/containerd/containerd/v2/cmd/$c@$version"
done
echo "$stamp" >"$bin/.built"
echo "containerd $version: built in $bin"
