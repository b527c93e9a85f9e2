#!/bin/sh
# Builds the Debian package of capshim from the binaries make build wrote:
#   packaging/deb/build.sh BINDIR ARCH OUTDIR
# It stages the package tree under OUTDIR/root and runs dpkg-deb, which
# every Debian system has: no packaging tool is fetched, and
# --root-owner-group makes every file root's without fakeroot (capshim
# trusts only root-owned binaries). The package holds:
#   /usr/bin/capshim, capshim-tools, capshim-trace   (one directory, as capshim needs)
#   /usr/share/man/man1/capshim.1.gz                 (the commands' --help text)
#   /usr/share/bash-completion/completions/capshim   (capshim completion bash)
#   /usr/share/doc/capshim/                          (shim.toml.example, README.md,
#                                                     SECURITY.md, CHANGELOG.md, copyright)
# and no conffile: /etc/capshim is the operator's (capshim install or
# capshim policy install writes it), so removing the package leaves the
# policy and the engines' configs as they are.
set -eu

bindir=$1
arch=$2
out=$3
top=$(cd "$(dirname "$0")/../.." && pwd)
# Debian sorts "~" before anything: 0.2.0~dev is older than 0.2.0.
version=$(tr -d ' \n' < "$top/VERSION" | tr '-' '~')
tools="$bindir/capshim-tools"

root="$out/root"
rm -rf "$root"
mkdir -p "$root/DEBIAN"
install -d -m 0755 "$root/usr/bin" "$root/usr/share/man/man1" \
	"$root/usr/share/bash-completion/completions" "$root/usr/share/doc/capshim"
install -m 0755 "$bindir/capshim" "$bindir/capshim-tools" "$bindir/capshim-trace" "$root/usr/bin/"

doc="$root/usr/share/doc/capshim"
install -m 0644 "$top/shim.toml.example" "$top/README.md" "$top/SECURITY.md" "$top/CHANGELOG.md" "$doc/"
install -m 0644 "$top/LICENSE" "$doc/copyright"

"$tools" completion bash > "$root/usr/share/bash-completion/completions/capshim"
chmod 0644 "$root/usr/share/bash-completion/completions/capshim"

# The man page is the --help text of capshim and of every command and
# subcommand, as the binaries of this build print it (urfave/cli's own man
# page generator is left out of the build by the urfave_cli_no_docs tag).
roff() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }
commands=$("$tools" --help | awk '/^COMMANDS:/{on=1; next} on && /^$/{exit} on {sub(/,$/, "", $1); print $1}' | grep -v '^help$')
{
	printf '.TH CAPSHIM 1 "" "capshim %s" "User Commands"\n' "$version"
	printf '.SH NAME\ncapshim \\- least-privilege capabilities for every container, as an OCI runtime wrapper\n'
	printf '.SH DESCRIPTION\n.nf\n'
	"$tools" --help | roff
	printf '.fi\n'
	for c in $commands; do
		printf '.SH "CAPSHIM %s"\n.nf\n' "$(echo "$c" | tr a-z A-Z)"
		"$tools" "$c" --help | roff
		printf '.fi\n'
		for s in $("$tools" "$c" --help | awk '/^COMMANDS:/{on=1; next} on && /^$/{exit} on {sub(/,$/, "", $1); print $1}' | grep -v '^help$'); do
			printf '.SS "capshim %s %s"\n.nf\n' "$c" "$s"
			"$tools" "$c" "$s" --help | roff
			printf '.fi\n'
		done
	done
	printf '.SH FILES\n.nf\n/etc/capshim/shim.toml    the policy (not part of the package; see /usr/share/doc/capshim/shim.toml.example)\n.fi\n'
} | gzip -9n > "$root/usr/share/man/man1/capshim.1.gz"
chmod 0644 "$root/usr/share/man/man1/capshim.1.gz"

size=$(du -sk "$root/usr" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: capshim
Version: $version
Architecture: $arch
Maintainer: capshim developers <capshim@localhost>
Installed-Size: $size
Section: admin
Priority: optional
Recommends: runc | crun
Homepage: https://github.com/capshim/capshim
Description: least-privilege Linux capabilities for every container
 capshim is an OCI runtime wrapper: registered as a runtime of Docker,
 containerd or Podman, it reduces the capability sets of every container to
 a policy, then runs the real runc or crun with the same command line.
 .
 capshim install docker|containerd|podman registers it; capshim status
 says how it is wired and what is wrong. The example policy is in
 /usr/share/doc/capshim/shim.toml.example.
CONTROL
(cd "$root" && find usr -type f -exec md5sum {} + | sort -k2) > "$root/DEBIAN/md5sums"

deb="$out/capshim_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
