#!/bin/sh
# build.sh builds the Kubernetes binaries the kube integration tests run
# (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl)
# into a cache directory outside the repository and reuses them while the
# version matches. k8s.io/kubernetes cannot be built with `go install ...@v`
# because its go.mod replaces the staging modules, so a throwaway module that
# requires it, with the same replaces pinned to released versions, is written
# next to the cache and built from there.
#
#   build.sh [cache-root]   (default /var/cache/capshim-test/kube)
#
# KUBE_VERSION overrides the version (default below).
set -eu

version=${KUBE_VERSION:-v1.34.4}
root=${1:-/var/cache/capshim-test/kube}
dir=$root/$version
bin=$dir/bin
cmds="kube-apiserver kubelet kube-controller-manager kube-scheduler kubectl"

have=1
for c in $cmds; do [ -x "$bin/$c" ] || have=0; done
if [ "$have" = 1 ] && [ "$(cat "$dir/.built" 2>/dev/null)" = "$version" ]; then
	echo "kube $version: cached in $bin"
	exit 0
fi

# The staging modules are released as v0.X.Y for Kubernetes v1.X.Y.
staging_version=v0.${version#v1.}
staging="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
cloud-provider cluster-bootstrap code-generator component-base component-helpers
controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
sample-apiserver sample-cli-plugin sample-controller"

mod=$dir/module
mkdir -p "$mod" "$bin"
{
	echo "module capshim.test/kubebuild"
	echo
	echo "go 1.24"
	echo
	echo "require k8s.io/kubernetes $version"
	echo
	for m in $staging; do
		echo "replace k8s.io/$m => k8s.io/$m $staging_version"
	done
} >"$mod/go.mod"
cat >"$mod/tools.go" <<'GO'
//go:build tools

package kubebuild
GO

cd "$mod"
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
# Resolve the module graph once; the build below then only compiles.
go get "k8s.io/kubernetes@$version"
for c in $cmds; do
	echo "kube $version: building $c"
	go build -trimpath -o "$bin/$c" \
		-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2)" \
		"k8s.io/kubernetes/cmd/$c"
done
echo "$version" >"$dir/.built"
echo "kube $version: built in $bin"
