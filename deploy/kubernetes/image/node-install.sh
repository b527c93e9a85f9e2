#!/bin/sh
# capshim-node-install is the init container of the installer DaemonSet.
# It sees the node's directories where the DaemonSet mounts them:
#   /host/usr/local/bin    the binaries go here
#   /host/etc/capshim      the policy (from the ConfigMap at /config/shim.toml)
#   /host/etc/containerd   containerd's config.toml
# and is told by its environment:
#   CAPSHIM_ACTION       install (default) or uninstall
#   CAPSHIM_HOST_PREFIX  where the node's / is as containerd sees it: the
#                        handler's BinaryName is PREFIX/usr/local/bin/capshim
#                        (default "": the node's own root)
#   CAPSHIM_RESTART_CMD  run (by sh -c) when containerd's config changed;
#                        default: systemctl restart containerd in the
#                        host's namespaces (needs hostPID and the
#                        capabilities SYS_ADMIN, SYS_PTRACE, SYS_CHROOT)
# Running containers keep running across the restart: their shims do not
# depend on the daemon.
set -eu

action=${CAPSHIM_ACTION:-install}
prefix=${CAPSHIM_HOST_PREFIX:-}
restart=${CAPSHIM_RESTART_CMD:-nsenter -t 1 -m -u -i -n -p -- systemctl restart containerd}
config=/host/etc/containerd/config.toml

case "$prefix" in
"" | /*) ;;
*) echo "capshim-node-install: CAPSHIM_HOST_PREFIX=$prefix is not an absolute path; set it to the node's path of the root the DaemonSet's hostPath volumes are below, or to \"\"" >&2; exit 1 ;;
esac
[ -f "$config" ] || { echo "capshim-node-install: no $config: the node's /etc/containerd/config.toml is missing (or the host-etc-containerd volume points elsewhere); nothing changed" >&2; exit 1; }

# put SRC DST MODE: copy next to the target, then rename, so that a
# container starting meanwhile runs either the old or the new file.
put() {
	cp "$1" "$(dirname "$2")/.$(basename "$2").new"
	chown 0:0 "$(dirname "$2")/.$(basename "$2").new"
	chmod "$3" "$(dirname "$2")/.$(basename "$2").new"
	mv -f "$(dirname "$2")/.$(basename "$2").new" "$2"
	echo "installed $2"
}

before=$(sha256sum "$config")
case "$action" in
install)
	# capshim (the runtime), capshim-tools (its commands) and capshim-trace
	# (learn's recorder) belong in the same directory.
	for b in capshim-tools capshim-trace capshim; do put "/usr/local/bin/$b" "/host/usr/local/bin/$b" 0755; done
	# capshim refuses a policy that others can write or a directory they can.
	chmod 0755 /host/etc/capshim
	put /config/shim.toml /host/etc/capshim/shim.toml 0644
	# The policy is in place (above); install only registers the handler.
	/usr/local/bin/capshim install containerd --set-default=false --file "$config" \
		--binary "$prefix/usr/local/bin/capshim" --no-policy
	;;
uninstall)
	# The binaries and the policy stay: containers created with capshim
	# may still need them (capshim runs at their exec, kill and delete).
	/usr/local/bin/capshim uninstall containerd --file "$config" --policy /host/etc/capshim/shim.toml
	;;
*)
	echo "capshim-node-install: CAPSHIM_ACTION=$action: use install or uninstall; nothing changed" >&2
	exit 1 ;;
esac
if [ "$(sha256sum "$config")" != "$before" ]; then
	echo "containerd config changed, restarting containerd: $restart"
	sh -c "$restart"
else
	echo "containerd config unchanged"
fi
