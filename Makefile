# graphprobe: build, run and test.
#
#   make run     build, probe this host and show a dry-run selection
#   make test    install what the tests need (Debian packages), run every test
#   make bench   print the benchmark figures quoted in the README
#   make matrix  run every fixture host and compare with its golden output

SHELL      := /bin/bash
include packaging/tools.env        # NFPM, ACTIONLINT: pinned Go tools
export PATH := $(PATH):/usr/local/go/bin
GO         ?= go
BIN        := bin/graphprobe
VERSION    ?= $(shell git describe --tags --match 'v[0-9]*' 2>/dev/null | sed 's/^v//')
COMMIT     ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS    := -s -w -X github.com/graphprobe/graphprobe/internal/buildinfo.Version=$(VERSION) \
              -X github.com/graphprobe/graphprobe/internal/buildinfo.Commit=$(COMMIT)
GOFLAGS_BUILD := -trimpath -ldflags '$(LDFLAGS)'
# Debian packages the tests drive: filesystems to make, fuse-overlayfs to
# mount, kmod for modprobe/modinfo; dpkg, systemd-analyze and man for the
# package test; shellcheck, cloud-init, ansible-core and zsh for the
# examples and completions; time for the benchmark script; qemu,
# busybox-static, cpio and xz-utils for the kernel-matrix VMs; mmdebstrap for
# the systemd boot of the package (test/boot).
TEST_DEBS  := xfsprogs btrfs-progs fuse-overlayfs fuse3 kmod e2fsprogs \
              git systemd man-db groff-base shellcheck cloud-init ansible-core zsh jq time \
              qemu-system-x86 busybox-static cpio xz-utils debian-archive-keyring mmdebstrap
FUZZTIME   ?= 10s
CI_FUZZTIME ?= 3s

.PHONY: all build run test test-go deps docker-cache tools e2e bench matrix fuzz vet package clean

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o $(BIN) ./cmd/graphprobe

# The probe, then the selection without writing anything (select mounts test
# layers in a scratch area of the data-root, which needs root).
run: build
	$(BIN) probe
	@if [ "$$(id -u)" -eq 0 ]; then $(BIN) select --dry-run; \
	else echo "(not root: skipping 'graphprobe select --dry-run', which mounts test layers)"; fi

# Install the Debian packages the tests need, only when one is missing.
deps:
	@missing=""; for p in $(TEST_DEBS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then echo "need root to install:$$missing" >&2; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Debian's docker.io 20.10, containerd and runc, unpacked into a cache
# outside the tree: the real daemon the end-to-end tests start.
docker-cache:
	./scripts/docker-cache

# Build the pinned Go tools once, so that the packaging and example tests
# stay fast on a fresh machine.
tools:
	$(GO) run $(NFPM) --version >/dev/null
	$(GO) run $(ACTIONLINT) -version >/dev/null

# Every fuzz target runs for a short bounded time too; a failing input is
# kept under the package's testdata/fuzz as a regression seed.
test: deps docker-cache tools vet test-go
	$(MAKE) fuzz FUZZTIME=$(CI_FUZZTIME)

e2e: docker-cache
	$(GO) test -count=1 -v ./internal/dockertest/ ./test/e2e/

vet:
	$(GO) vet ./...

test-go:
	$(GO) test -count=1 -timeout 30m ./...

bench: build
	./scripts/bench.sh

matrix: build
	$(GO) test -count=1 -run 'TestFixtureMatrix|TestMatrixExpected' ./cmd/graphprobe/...
	$(BIN) matrix testdata/hosts

# The Debian package, dist/graphprobe_<version>_<arch>.deb; two builds of one
# commit are byte-identical. PACKAGE_VERSION=1.2.3 overrides the version.
package:
	./scripts/package-deb.sh dist

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz-all.sh

clean:
	rm -rf bin dist
