#!/bin/bash
# Builds the workload test images (nginx, postgres, redis) from real Debian
# packages, once, into a cache outside the repository, and prints the
# directory that holds them.
#
# Usage: build.sh [--prune] [WORKLOAD...]
#   WORKLOAD   nginx, postgres or redis; all three when none is named
#   --prune    also remove cached images and bases of other keys
# Environment:
#   CAPSHIM_IMAGE_CACHE  cache root (default /var/cache/capshim-test/images)
# Output: one line on stdout, the image set directory
#   $CAPSHIM_IMAGE_CACHE/<key>
# holding for each workload NAME:
#   NAME/rootfs/        the root file system (entrypoint /usr/local/bin/capshim-workload)
#   NAME/rootfs.tar     the same as a plain tar (`docker import`)
#   NAME/image.tar      OCI image layout tar, with a docker-archive
#                       manifest.json beside index.json, tagged
#                       docker.io/capshim-test/NAME:1 (`ctr images import`,
#                       `podman load`, `docker load`)
#   NAME/packages.txt   the Debian packages and versions inside
# Progress goes to stderr.
#
# Only Debian's packages come from outside: debootstrap (variant minbase,
# suite bookworm) and apt fetch them from the mirror this machine's apt is
# configured with. The key is a hash of this script, the entrypoints under
# workloads/, the mirror and the architecture, so editing either rebuilds
# and a second run with nothing changed only checks that the files exist.
# The debootstrap base is cached too, under a key of its own (the code and
# inputs that make it), and copied for each workload, so it is paid once.
#
# Builds hold a lock (flock on $CAPSHIM_IMAGE_CACHE/.lock), so concurrent
# runs wait for each other instead of building twice, and every piece is
# built in a temporary directory and renamed into place when complete: a
# directory under a key is never half built.
set -euo pipefail

readonly SUITE=bookworm
readonly VARIANT=minbase
readonly PG_MAJOR=15
readonly ALL_WORKLOADS=(nginx postgres redis)

# The packages of each workload, on top of the minbase base.
readonly PKGS_NGINX="nginx curl"
readonly PKGS_POSTGRES="postgresql-common postgresql-$PG_MAJOR"
readonly PKGS_REDIS="redis-server"

SELF=$(readlink -f "${BASH_SOURCE[0]}")
HERE=$(dirname "$SELF")
CACHE=${CAPSHIM_IMAGE_CACHE:-/var/cache/capshim-test/images}
TMP_DIRS=()

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF" >&2
	exit "${1:-2}"
}

# mounts_under DIR prints the mount points at or below DIR.
mounts_under() {
	awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo
}

# remove_tree DIR removes DIR unless something is mounted below it (rm -rf
# through a mount would reach outside the cache).
remove_tree() {
	local m
	[ -e "$1" ] || return 0
	m=$(mounts_under "$1")
	[ -z "$m" ] || die "not removing $1: mounted below it: $m"
	rm -rf --one-file-system "$1"
}

on_exit() {
	local d
	for d in "${TMP_DIRS[@]+"${TMP_DIRS[@]}"}"; do
		remove_tree "$d" || true
	done
}
trap on_exit EXIT

# apt_mirror prints "URI<TAB>KEYRING" of the first Debian source of this
# machine's apt configuration that carries $SUITE main (deb822 .sources
# files first, then one-line sources.list files). KEYRING is the
# Signed-By file when there is one, else empty.
apt_mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v suite="$SUITE" '
			function has(list, word) { return (" " list " ") ~ (" " word " ") }
			function flush() {
				if (has(types, "deb") && has(suites, suite) && has(comps, "main") && enabled != "no" && uris != "") {
					split(uris, u, " ")
					print u[1] "\t" signed
					found = 1
					exit
				}
				types = suites = comps = uris = signed = enabled = ""
			}
			/^[[:space:]]*#/ { next }
			/^[[:space:]]*$/ { flush(); next }
			/^[[:space:]]/ { next }
			{
				key = tolower($1); sub(/:$/, "", key)
				val = $0; sub(/^[^:]*:[[:space:]]*/, "", val); sub(/[[:space:]]+$/, "", val)
				if (key == "types") types = val
				else if (key == "uris") uris = val
				else if (key == "suites") suites = val
				else if (key == "components") comps = val
				else if (key == "signed-by") signed = val
				else if (key == "enabled") enabled = tolower(val)
			}
			END { if (!found) flush() }
		' "$f" | head -n 1
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk -v suite="$SUITE" '
			$1 != "deb" { next }
			{
				i = 2; signed = ""
				if ($i ~ /^\[/) {
					for (; i <= NF; i++) {
						if ($i ~ /^\[?signed-by=/) { signed = $i; sub(/^\[?signed-by=/, "", signed); sub(/\]$/, "", signed) }
						if ($i ~ /\]$/) break
					}
					i++
				}
				if ($(i + 1) != suite) next
				for (j = i + 2; j <= NF; j++) if ($j == "main") { print $i "\t" signed; exit }
			}
		' "$f" | head -n 1
	done
}

# in_root ROOT CMD...: runs CMD chrooted into ROOT, in a private mount and
# PID namespace with /proc and /dev mounted there: whatever happens, those
# mounts and any daemon a package starts go away with the namespace.
in_root() {
	local root=$1
	shift
	# shellcheck disable=SC2016 # expanded by the inner shell
	unshare --mount --pid --fork --propagation private -- /bin/sh -ec '
		r=$1; shift
		mount -t proc proc "$r/proc"
		mount --rbind /dev "$r/dev"
		exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
	' in_root "$root" "$@"
}

# apt_install ROOT PKG...: installs the packages without recommends, from
# fresh package lists. The chroot borrows the host's name resolution for
# this only.
apt_install() {
	local root=$1
	shift
	cp /etc/hosts "$root/etc/hosts"
	cp -L /etc/resolv.conf "$root/etc/resolv.conf"
	in_root "$root" apt-get -q update >&2
	in_root "$root" apt-get -q -y --no-install-recommends install "$@" >&2
}

# base_config ROOT: settings every image shares, made right after
# debootstrap so they apply to all later installs.
base_config() {
	local root=$1
	# No service may start while packages are installed into the image.
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 0755 "$root/usr/sbin/policy-rc.d"
	# Small images: no documentation, manuals or translations (copyrights stay).
	mkdir -p "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/apt/apt.conf.d"
	cat >"$root/etc/dpkg/dpkg.cfg.d/capshim-test-slim" <<-'EOF'
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/locale/*
		path-include /usr/share/locale/locale.alias
	EOF
	cat >"$root/etc/apt/apt.conf.d/capshim-test-slim" <<-'EOF'
		APT::Install-Recommends "false";
		APT::Install-Suggests "false";
		Acquire::Languages "none";
	EOF
	find "$root/usr/share/doc" -mindepth 1 -depth \( -type f -o -type l \) ! -name copyright -delete
	find "$root/usr/share/doc" -mindepth 1 -depth -type d -empty -delete
	rm -rf "${root:?}"/usr/share/man/* "${root:?}"/usr/share/info/*
}

# build_base DIR MIRROR KEYRING: the shared debootstrap base in DIR/rootfs.
build_base() {
	local dir=$1 mirror=$2 keyring=$3 opts=()
	[ -z "$keyring" ] || opts+=("--keyring=$keyring")
	# debootstrap mounts /proc and /sys in the target: a private mount
	# namespace makes sure they never outlive it.
	unshare --mount --propagation private -- \
		debootstrap --variant="$VARIANT" --arch="$ARCH" "${opts[@]+"${opts[@]}"}" \
		"$SUITE" "$dir/rootfs" "$mirror" >&2
	base_config "$dir/rootfs"
}

# prepare_nginx ROOT: Debian's nginx.conf already runs the workers as
# www-data, which is what the test needs; the build refuses an image
# where it does not.
prepare_nginx() {
	local root=$1
	# shellcheck disable=SC2086 # a list of package names
	apt_install "$root" $PKGS_NGINX
	grep -qx 'user www-data;' "$root/etc/nginx/nginx.conf" ||
		die "nginx.conf of the package has no 'user www-data;' line"
	# As the official image: the logs go to the container's output.
	ln -sf /dev/stdout "$root/var/log/nginx/access.log"
	ln -sf /dev/stderr "$root/var/log/nginx/error.log"
}

# prepare_postgres ROOT: as the official image, no cluster is made at
# install time (the entrypoint runs initdb). PGDATA is left root-owned, as
# a fresh volume or host directory is, so the entrypoint's chown really
# happens; the socket directory is made as the official image makes it.
prepare_postgres() {
	local root=$1
	apt_install "$root" postgresql-common
	sed -ri 's/#(create_main_cluster) .*$/\1 = false/' "$root/etc/postgresql-common/createcluster.conf"
	grep -qx 'create_main_cluster = false' "$root/etc/postgresql-common/createcluster.conf" ||
		die "could not turn off create_main_cluster in createcluster.conf"
	# shellcheck disable=SC2086 # a list of package names
	apt_install "$root" $PKGS_POSTGRES
	[ -x "$root/usr/lib/postgresql/$PG_MAJOR/bin/initdb" ] || die "no initdb in the postgres image"
	install -d -m 0755 -o 0 -g 0 "$root/var/lib/postgresql/data"
	in_root "$root" install -d -m 3777 -o postgres -g postgres /var/run/postgresql
}

# prepare_redis ROOT: /data is left root-owned, as a fresh volume or host
# directory is, so the entrypoint's chown really happens.
prepare_redis() {
	local root=$1
	# shellcheck disable=SC2086 # a list of package names
	apt_install "$root" $PKGS_REDIS
	install -d -m 0755 -o 0 -g 0 "$root/data"
}

# finish_rootfs ROOT NAME: the entrypoint, then what a container needs no
# copy of: apt's caches and lists, logs of the build, the host's name
# resolution, device nodes (the runtime mounts its own /dev).
finish_rootfs() {
	local root=$1 name=$2
	install -D -m 0644 "$HERE/workloads/lib.sh" "$root/usr/local/lib/capshim-workload/lib.sh"
	install -D -m 0755 "$HERE/workloads/$name.sh" "$root/usr/local/bin/capshim-workload"
	in_root "$root" apt-get clean
	rm -rf "${root:?}"/var/lib/apt/lists/* "${root:?}"/var/cache/apt/*.bin \
		"${root:?}"/var/log/apt/* "${root:?}"/var/cache/debconf/*-old "${root:?}"/var/lib/dpkg/*-old
	find "$root/var/log" -type f -name '*.log' -delete # the nginx links stay
	find "$root/tmp" "$root/var/tmp" "$root/dev" -mindepth 1 -delete
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
	: >"$root/etc/resolv.conf"
	echo capshim-test >"$root/etc/hostname"
}

# oci_archive DIR NAME: DIR/image.tar from DIR/rootfs.tar: an OCI image
# layout with one uncompressed layer and Cmd set to the entrypoint, and a
# docker-archive manifest.json next to index.json, so that ctr, podman
# and docker all load the same file.
oci_archive() {
	local dir=$1 name=$2 w blobs layer layer_size cfg cfg_size man man_size env
	w=$dir/oci
	blobs=$w/blobs/sha256
	mkdir -p "$blobs"
	put() {
		local d
		d=$(sha256sum "$1" | cut -d' ' -f1)
		mv "$1" "$blobs/$d"
		echo "$d"
	}
	cp "$dir/rootfs.tar" "$w/layer"
	layer=$(put "$w/layer")
	layer_size=$(stat -c %s "$blobs/$layer")
	env='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","LANG=C.UTF-8"'
	printf '{"architecture":"%s","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":[%s],"Cmd":["/usr/local/bin/capshim-workload"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"capshim integration/images/build.sh"}]}' \
		"$ARCH" "$env" "$layer" >"$w/config"
	cfg=$(put "$w/config")
	cfg_size=$(stat -c %s "$blobs/$cfg")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
		"$cfg" "$cfg_size" "$layer" "$layer_size" >"$w/manifest"
	man=$(put "$w/manifest")
	man_size=$(stat -c %s "$blobs/$man")
	echo '{"imageLayoutVersion":"1.0.0"}' >"$w/oci-layout"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"docker.io/capshim-test/%s:1","org.opencontainers.image.ref.name":"1"}}]}' \
		"$man" "$man_size" "$ARCH" "$name" >"$w/index.json"
	printf '[{"Config":"blobs/sha256/%s","RepoTags":["docker.io/capshim-test/%s:1"],"Layers":["blobs/sha256/%s"]}]' \
		"$cfg" "$name" "$layer" >"$w/manifest.json"
	tar -C "$w" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$dir/image.tar" \
		oci-layout index.json manifest.json blobs
	rm -rf "$w"
}

# build_workload DIR NAME BASE: the whole image of workload NAME in DIR.
build_workload() {
	local dir=$1 name=$2 base=$3 root
	root=$dir/rootfs
	cp -a --reflink=auto "$base/rootfs" "$root"
	"prepare_$name" "$root"
	finish_rootfs "$root" "$name"
	# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
	in_root "$root" dpkg-query -W -f '${Package} ${Version}\n' >"$dir/packages.txt"
	# Numeric owners and file capabilities as they are: the image must
	# hand the workload the same files the rootfs has.
	tar -C "$root" --sort=name --numeric-owner --xattrs --xattrs-include='security.capability' \
		-cf "$dir/rootfs.tar" .
	oci_archive "$dir" "$name"
}

# new_tmp NAME: a fresh directory in the cache (same file system as its
# final place, so the rename is atomic), removed at exit unless renamed.
new_tmp() {
	local d
	d=$(mktemp -d "$CACHE/.tmp-$1-XXXXXX")
	chmod 0755 "$d"
	TMP_DIRS+=("$d")
	echo "$d"
}

# need_debootstrap installs debootstrap from the same Debian mirror when
# it is missing (it is only needed on a cold build).
need_debootstrap() {
	command -v debootstrap >/dev/null && return 0
	log "installing debootstrap"
	apt-get -qq update >&2
	DEBIAN_FRONTEND=noninteractive apt-get -qq -y install debootstrap >&2
	command -v debootstrap >/dev/null || die "debootstrap still missing after apt-get install"
}

# hash_of reads stdin and prints its sha256.
hash_of() { sha256sum | cut -d' ' -f1; }

main() {
	local prune=0 want=() w known
	while (($#)); do
		case $1 in
		-h | --help) usage 0 ;;
		--prune) prune=1 ;;
		-*) log "unknown option $1" && usage ;;
		*)
			known=0
			for w in "${ALL_WORKLOADS[@]}"; do [ "$1" = "$w" ] && known=1; done
			((known)) || die "unknown workload '$1' (known: ${ALL_WORKLOADS[*]})"
			want+=("$1")
			;;
		esac
		shift
	done
	((${#want[@]})) || want=("${ALL_WORKLOADS[@]}")
	[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, file owners)"

	ARCH=$(dpkg --print-architecture)
	local src mirror keyring
	src=$(apt_mirror | head -n 1)
	[ -n "$src" ] || die "no '$SUITE main' source in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
	mirror=${src%%$'\t'*}
	keyring=${src#*$'\t'}
	[ -f "$keyring" ] || keyring=""

	local key base_key set_dir
	key=$({
		printf 'suite=%s variant=%s arch=%s mirror=%s\n' "$SUITE" "$VARIANT" "$ARCH" "$mirror"
		for f in "$SELF" "$HERE"/workloads/*.sh; do
			printf '== %s\n' "${f##*/}"
			cat "$f"
		done
	} | hash_of)
	base_key=$({
		printf 'suite=%s variant=%s arch=%s mirror=%s keyring=%s\n' "$SUITE" "$VARIANT" "$ARCH" "$mirror" "$keyring"
		declare -f build_base base_config
	} | hash_of)
	set_dir=$CACHE/$key

	missing() {
		local n out=()
		for n in "${want[@]}"; do [ -f "$set_dir/$n/image.tar" ] || out+=("$n"); done
		echo "${out[*]}"
	}
	if [ -z "$(missing)" ] && ((!prune)); then
		log "cached: $set_dir (${want[*]})"
		echo "$set_dir"
		return 0
	fi

	mkdir -p "$CACHE"
	chmod 0755 "$CACHE"
	exec 9>"$CACHE/.lock"
	if ! flock -n 9; then
		log "waiting for another build (lock $CACHE/.lock)"
		flock 9
	fi
	# Holding the lock: any temporary directory left is from a build that
	# was killed. (Its children inherit fd 9, so a killed build's apt or
	# debootstrap still running keeps the lock until it ends.)
	local d
	for d in "$CACHE"/.tmp-*; do
		[ -e "$d" ] || continue
		log "removing the leftover of an interrupted build: $d"
		remove_tree "$d"
	done
	if ((prune)); then
		for d in "$CACHE"/*/ "$CACHE"/base/*/; do
			d=${d%/}
			[ -d "$d" ] || continue
			case $d in "$set_dir" | "$CACHE/base" | "$CACHE/base/$base_key") continue ;; esac
			log "pruning $d"
			remove_tree "$d"
		done
	fi

	local todo start
	read -r -a todo <<<"$(missing)"
	if ((${#todo[@]})); then
		log "building ${todo[*]} from $mirror ($SUITE, $VARIANT, $ARCH) into $set_dir"
		local base=$CACHE/base/$base_key
		if [ ! -d "$base" ]; then
			need_debootstrap
			start=$SECONDS
			d=$(new_tmp base)
			build_base "$d" "$mirror" "$keyring"
			mkdir -p "$CACHE/base"
			mv -T "$d" "$base"
			log "base built in $((SECONDS - start))s: $base"
		fi
		mkdir -p "$set_dir"
		for w in "${todo[@]}"; do
			start=$SECONDS
			d=$(new_tmp "$w")
			build_workload "$d" "$w" "$base"
			mv -T "$d" "$set_dir/$w"
			log "$w built in $((SECONDS - start))s: $set_dir/$w ($(du -sh "$set_dir/$w/rootfs" | cut -f1) rootfs)"
		done
	fi
	echo "$set_dir"
}

main "$@"
