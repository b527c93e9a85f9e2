#!/bin/sh
# cni-podnet.sh is the CNI plugin of the kube integration tests, installed
# under the names "capshim-podnet" and "loopback" (containerd's CRI plugin
# always runs "loopback" first). A pod gets its loopback up and an eth0
# that is one end of a veth pair whose other end stays in the same network
# namespace, so the pod has an address for the kubelet to report but no
# way out: nothing is added to the host's network.
# Addresses come from a counter next to this script (10.244.0.2 on).
set -eu

ver='"cniVersion":"0.4.0"'
case "${CNI_COMMAND:-}" in
VERSION)
	echo "{$ver,\"supportedVersions\":[\"0.3.0\",\"0.3.1\",\"0.4.0\"]}"
	exit 0 ;;
DEL|CHECK)
	cat >/dev/null
	exit 0 ;;
ADD) ;;
*)
	echo "{$ver,\"code\":4,\"msg\":\"unknown CNI_COMMAND ${CNI_COMMAND:-}\"}"
	exit 1 ;;
esac
conf=$(cat)
# The result is in the version the network config asks for.
cv=$(printf '%s' "$conf" | sed -n 's/.*"cniVersion" *: *"\([^"]*\)".*/\1/p')
ver="\"cniVersion\":\"${cv:-0.4.0}\""
in_ns() { nsenter --net="$CNI_NETNS" "$@"; }
case "$conf" in
*'"type":"loopback"'* | *'"type": "loopback"'*)
	in_ns ip link set lo up
	echo "{$ver,\"interfaces\":[{\"name\":\"lo\",\"sandbox\":\"$CNI_NETNS\"}],\"ips\":[{\"version\":\"4\",\"address\":\"127.0.0.1/8\",\"interface\":0}]}"
	exit 0 ;;
esac
counter=$(dirname "$0")/podnet.next
n=$(flock "$counter.lock" sh -c 'n=$(cat "$1" 2>/dev/null || echo 2); echo $((n + 1)) >"$1"; echo "$n"' sh "$counter")
addr=10.244.$((n / 250)).$((n % 250 + 2))
in_ns ip link add "$CNI_IFNAME" type veth peer name podnet0
in_ns ip addr add "$addr/16" dev "$CNI_IFNAME"
in_ns ip link set podnet0 up
in_ns ip link set "$CNI_IFNAME" up
echo "{$ver,\"interfaces\":[{\"name\":\"$CNI_IFNAME\",\"sandbox\":\"$CNI_NETNS\"}],\"ips\":[{\"version\":\"4\",\"address\":\"$addr/16\",\"interface\":0}]}"
