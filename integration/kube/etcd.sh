#!/bin/sh
# etcd.sh unpacks Debian's etcd-server into a cache directory outside the
# repository for the kube integration tests. The package is downloaded,
# not installed: installing it would start a system etcd on the host.
#
#   etcd.sh [cache-root]   (default /var/cache/capshim-test/kube)
set -eu

root=${1:-/var/cache/capshim-test/kube}
dir=$root/etcd
if [ -x "$dir/usr/bin/etcd" ]; then
	echo "etcd: cached in $dir/usr/bin/etcd"
	exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download etcd-server >/dev/null 2>&1; then
	apt-get update -qq
	apt-get download etcd-server
fi
mkdir -p "$dir.new"
dpkg -x etcd-server_*.deb "$dir.new"
rm -rf "$dir"
mv "$dir.new" "$dir"
echo "etcd: $("$dir/usr/bin/etcd" --version | head -1) in $dir/usr/bin/etcd"
