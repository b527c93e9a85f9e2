# capshim — see README.md.
#   make run    build, then show the main job on Docker's real default spec
#   make test   install what the tests need (Debian packages), run every test
#   make build  build bin/capshim (static)
#   make bench  measure capshim against a bare Go exec wrapper and runc (BENCHMARKS.md)
#   make deb    build the Debian package into bin/deb/

GO       ?= go
BIN      := bin/capshim
COMMIT   ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS  := -s -w -X github.com/capshim/capshim.commit=$(COMMIT)
TAGS     := urfave_cli_no_docs
TOOLS_BIN := bin/capshim-tools
TRACE_BIN := bin/capshim-trace
PREFIX   ?= /usr/local
# Debian packages the integration tests drive: real runc, crun, containerd,
# dockerd and podman, and the static busybox the test images are built from.
DEPS_PKGS := runc crun containerd docker.io podman busybox-static
DEPS_BINS := runc crun containerd ctr containerd-shim-runc-v2 dockerd docker podman

# Fuzz budgets are execution counts (Nx), not durations: with a duration,
# Go 1.26's fuzz coordinator can fail a run with "context deadline
# exceeded" at the deadline although nothing failed, a known fault of the Go toolchain.
FUZZTIME ?= 2000000x
# package:target pairs for `make fuzz`.
FUZZ_TARGETS := spec:FuzzReduce policy:FuzzParse cmd/capshim:FuzzParseRuntimeArgs

.PHONY: all build install run test unit unit-nonroot integration deps vet staticcheck fuzz fuzz-short clean bench image kube-deps

all: build

# capshim is on the path of every runtime call, so bin/capshim holds only
# the runtime path; its commands (rewrite, check, caps, inspect, install,
# uninstall, policy, learn, explain, version) are in bin/capshim-tools, and the BPF recorder of
# learn/explain in bin/capshim-trace, which capshim runs from its own
# directory.
# urfave_cli_no_docs leaves out urfave/cli's man/markdown generator.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/capshim
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(TOOLS_BIN) ./cmd/capshim-tools
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(TRACE_BIN) ./cmd/capshim-trace

# Installs both binaries (root-owned, 0755: capshim refuses to trust less).
install: build
	install -d -m 0755 $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(TOOLS_BIN) $(TRACE_BIN) $(DESTDIR)$(PREFIX)/bin/

# The main job, on the built-in default policy: Docker 20.10's real default
# config.json before and after.
run: build
	@echo '$$ capshim rewrite --builtin --diff spec/testdata/config.default.json'
	@$(BIN) rewrite --builtin --diff spec/testdata/config.default.json
	@echo
	@echo '$$ capshim check --builtin --no-validate spec/testdata/config.default.json'
	@$(BIN) check --builtin --no-validate spec/testdata/config.default.json || true

deps:
	@missing=""; \
	for b in $(DEPS_BINS); do command -v $$b >/dev/null 2>&1 || missing="$$missing $$b"; done; \
	[ -x /bin/busybox ] || missing="$$missing busybox"; \
	if [ -n "$$missing" ]; then \
		echo "installing test dependencies (missing:$$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEPS_PKGS) >/dev/null; \
	fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration/

# staticcheck, installed into GOPATH/bin from the module proxy the first
# time (a warm machine reuses it).
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck
$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags integration ./integration/

# Every package's unit tests: no root, no engines. A new package is
# covered without editing this file.
unit:
	$(GO) test -count=1 -race ./...

# The unit suite once more as an unprivileged user (nobody), when make test
# runs as root as CI does: go test ./... must pass without root, and a run
# as root alone would hide a test that only passes as root. It runs on a
# copy of the tracked files, with its own Go caches (warm after the first
# run) and the Go settings of this user.
NONROOT_CACHE ?= /var/cache/capshim-test/nonroot
GO_PATH_BIN := $(dir $(shell command -v $(GO)))
unit-nonroot:
	@if [ "$$(id -u)" != 0 ]; then echo "unit-nonroot: not root, so the unit suite already ran without root"; exit 0; fi; \
	set -e; dir=$$(mktemp -d /tmp/capshim-nonroot.XXXXXX); trap 'rm -rf "$$dir"' EXIT; \
	if git rev-parse --git-dir >/dev/null 2>&1; then git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$$dir"; \
	else cp -a . "$$dir"; rm -rf "$$dir/bin"; fi; \
	install -d -o nobody -g nogroup $(NONROOT_CACHE); chown -R nobody:nogroup "$$dir"; \
	echo "go test ./... as nobody"; \
	cd "$$dir" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
		env -i PATH=$(GO_PATH_BIN):/usr/bin:/bin HOME=$(NONROOT_CACHE) TMPDIR=/tmp \
		GOCACHE=$(NONROOT_CACHE)/build GOMODCACHE=$(NONROOT_CACHE)/mod GOPATH=$(NONROOT_CACHE)/gopath \
		GOPROXY="$$($(GO) env GOPROXY)" GOSUMDB="$$($(GO) env GOSUMDB)" GONOSUMDB="$$($(GO) env GONOSUMDB)" \
		GOPRIVATE="$$($(GO) env GOPRIVATE)" GOFLAGS="$$($(GO) env GOFLAGS)" GOTOOLCHAIN="$$($(GO) env GOTOOLCHAIN)" \
		$(GO_PATH_BIN)go test -count=1 ./...

# The tests that start real runtimes and engines (build tag integration).
integration: deps kube-deps image
	$(IMAGE_ENV) $(KUBE_ENV) $(GO) test -count=1 -tags integration -timeout 60m -v ./integration/...

# Each fuzz target for FUZZTIME; crashers land in PKG/testdata/fuzz and
# then run as regression cases in every `go test`.
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run=NONE -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=200x ./$$pkg || exit 1; \
	done

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=400000x

test: deps vet staticcheck unit unit-nonroot
	@$(MAKE) --no-print-directory fuzz-short
	@$(MAKE) --no-print-directory integration

# `make bench`: the rewrite's Go benchmarks, then capshim, the bare Go exec
# wrapper (bench/barewrap, the floor of any Go wrapper) and runc side by
# side, interleaved; prints one table, writes bench/results.json and
# bench/chart.png. Needs root, runc and busybox-static (installed if
# missing); no network traffic. BENCH_PASS/BENCH_CYCLES: rounds;
# BENCH_CHECKS: passes of the capability-check benchmark that runs one
# state after another (for the program's own run time); BENCH_ROUNDS:
# rounds of the one that pairs the states within rounds (the targets).
BENCH_RUNC   ?= /usr/bin/runc
BENCH_PASS   ?= 1000
BENCH_CYCLES ?= 200
BENCH_CHECKS ?= 3
BENCH_ROUNDS ?= 300
bench: build
	@command -v runc >/dev/null 2>&1 && [ -x /bin/busybox ] || { \
		echo "installing runc and busybox-static for make bench"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc busybox-static >/dev/null; }
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.runtime=$(BENCH_RUNC)' -o bin/barewrap ./bench/barewrap
	$(GO) build -o bin/bench-e2e ./bench/e2e
	@echo "go test -bench ./spec (rewrite in process)..."
	@$(GO) test -run=NONE -bench=Rewrite -benchmem -count=1 ./spec/ > bin/gobench.txt || { cat bin/gobench.txt; exit 1; }
	@echo "go test -bench Chown ./trace (a capability check under the recorder, $(BENCH_CHECKS) passes)..."
	@# One go test per pass, so that a pass runs every state in turn (-count
	@# would run each state's passes back to back).
	@: > bin/tracebench.txt; for i in $$(seq $(BENCH_CHECKS)); do \
		$(GO) test -run=NONE -bench='^BenchmarkChown$$' -benchtime=1000000x -count=1 ./trace/ >> bin/tracebench.txt || { cat bin/tracebench.txt; exit 1; }; \
	done
	@echo "go test -bench ChownPaired ./trace (each state against none within rounds, $(BENCH_ROUNDS) rounds)..."
	@$(GO) test -run=NONE -bench='^BenchmarkChownPaired$$' -benchtime=$(BENCH_ROUNDS)x -count=1 ./trace/ >> bin/tracebench.txt || { cat bin/tracebench.txt; exit 1; }
	@bin/bench-e2e -capshim $(BIN) -barewrap bin/barewrap -runc $(BENCH_RUNC) \
		-pass $(BENCH_PASS) -cycles $(BENCH_CYCLES) -gobench bin/gobench.txt -tracebench bin/tracebench.txt \
		-json bench/results.json -chart bench/chart.png

# ---- make deb: the Debian package (packaging/deb/build.sh says what it
# holds). dpkg-deb is on every Debian system; the package goes to bin/deb/.
DEB_ARCH ?= $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
.PHONY: deb
deb: build
	@packaging/deb/build.sh bin $(DEB_ARCH) bin/deb
# ---- end of make deb

clean:
	rm -rf bin

# ---- Kubernetes: the node-installer image, and what the kube tests run ----
# `make image` writes the installer image of deploy/kubernetes as one
# archive (OCI layout plus docker-archive manifest.json) from bin/ and the
# static busybox, offline; installer-daemonset.yaml names IMAGE_NAME.
VERSION      := $(shell cat VERSION)
IMAGE_NAME := ghcr.io/capshim/capshim-installer:$(VERSION)
IMAGE_OUT    := bin/capshim-installer-$(VERSION).tar
BUSYBOX      ?= /bin/busybox
IMAGE_ENV := CAPSHIM_INSTALLER_IMAGE=$(abspath $(IMAGE_OUT)) CAPSHIM_INSTALLER_IMAGE_NAME=$(IMAGE_NAME)

image: build
	sh deploy/kubernetes/image/build.sh bin $(BUSYBOX) '$(IMAGE_NAME)' $(IMAGE_OUT)

# `make kube-deps` builds (or finds cached, outside the repository)
# Kubernetes, etcd and containerd 2.x for integration/kube_*_test.go.
KUBE_VERSION ?= v1.34.4
KUBE_CACHE   ?= /var/cache/capshim-test/kube
CONTAINERD2_VERSION ?= v2.2.7
CONTAINERD2_CACHE   ?= /var/cache/capshim-test/containerd
KUBE_ENV := CAPSHIM_KUBE_BIN=$(KUBE_CACHE)/$(KUBE_VERSION)/bin \
	CAPSHIM_ETCD=$(KUBE_CACHE)/etcd/usr/bin/etcd \
	CAPSHIM_CONTAINERD2=$(CONTAINERD2_CACHE)/$(CONTAINERD2_VERSION)/bin/containerd

kube-deps:
	KUBE_VERSION=$(KUBE_VERSION) sh integration/kube/build.sh $(KUBE_CACHE)
	sh integration/kube/etcd.sh $(KUBE_CACHE)
	CONTAINERD2_VERSION=$(CONTAINERD2_VERSION) sh integration/kube/containerd2.sh $(CONTAINERD2_CACHE)
