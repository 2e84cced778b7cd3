#!/bin/sh
# Build the graphprobe Debian package with nfpm, reproducibly: two builds of
# the same commit give byte-identical .deb files.
#
# Usage: scripts/package-deb.sh [OUTDIR]      (default: dist)
# Prints the path of the .deb it wrote on stdout.
#
# Environment:
#   PACKAGE_VERSION    the package (and binary) version; default from git:
#                      tag v1.2.3 -> 1.2.3, 4 commits later ->
#                      1.2.3+git4.<commit>, no tag -> 0.0.0~git<date>.<commit>,
#                      uncommitted changes -> +dirty
#   SOURCE_DATE_EPOCH  the timestamp of every file and of the man page;
#                      default: the commit's date
#   GOARCH             the target architecture (default: this machine's)
#   GO                 the go command (default: go)
#
# The binary is built static (CGO_ENABLED=0) with -trimpath and the version
# and commit stamped into internal/buildinfo, so `graphprobe version` reports
# the package's version. nfpm runs from the Go module proxy at the version
# pinned in packaging/tools.env (go run PKG@VERSION), so it stays out of the
# project's go.mod.
set -eu

MODULE=github.com/graphprobe/graphprobe

cd "$(dirname "$0")/.."
NFPM=$(sed -n 's/^NFPM=//p' packaging/tools.env)
outdir=${1:-dist}
GO=${GO:-go}

die() {
	echo "package-deb: $*" >&2
	exit 1
}

if git rev-parse --git-dir >/dev/null 2>&1; then
	commit=$(git rev-parse --short=12 HEAD)
	epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
	if [ -z "${PACKAGE_VERSION:-}" ]; then
		if desc=$(git describe --tags --match 'v[0-9]*' --abbrev=12 HEAD 2>/dev/null); then
			# v1.2.3[-rc.1][-N-gHASH] -> 1.2.3[~rc.1][+gitN.HASH]
			PACKAGE_VERSION=$(printf '%s\n' "$desc" | sed -E \
				-e 's/^v//' \
				-e 's/-([0-9]+)-g([0-9a-f]+)$/+git\1.\2/' \
				-e 's/^([0-9][0-9.]*)-/\1~/')
		else
			PACKAGE_VERSION=0.0.0~git$(date -u -d "@$epoch" +%Y%m%d%H%M%S).$commit
		fi
		if [ -n "$(git status --porcelain)" ]; then
			case $PACKAGE_VERSION in
			*+*) PACKAGE_VERSION=$PACKAGE_VERSION.dirty ;;
			*) PACKAGE_VERSION=$PACKAGE_VERSION+dirty ;;
			esac
		fi
	fi
else
	commit=${PACKAGE_COMMIT:-unknown}
	[ -n "${PACKAGE_VERSION:-}" ] || die "not a git checkout: set PACKAGE_VERSION"
	[ -n "${SOURCE_DATE_EPOCH:-}" ] || die "not a git checkout: set SOURCE_DATE_EPOCH"
	epoch=$SOURCE_DATE_EPOCH
fi
version=$PACKAGE_VERSION
# A Debian upstream version (no epoch, no revision); also safe in sed below.
printf '%s\n' "$version" | grep -Eq '^[0-9][A-Za-z0-9.+~]*$' ||
	die "version $version: want a digit first, then letters, digits and . + ~"
case $epoch in
'' | *[!0-9]*) die "SOURCE_DATE_EPOCH $epoch: want seconds since 1970" ;;
esac

goarch=${GOARCH:-$($GO env GOARCH)}
case $goarch in
amd64 | arm64 | riscv64 | s390x) debarch=$goarch ;;
386) debarch=i386 ;;
arm) debarch=armhf ;;
ppc64le) debarch=ppc64el ;;
*) die "GOARCH $goarch: no Debian architecture known for it" ;;
esac

stage=$(mktemp -d "${TMPDIR:-/tmp}/graphprobe-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM

echo "package-deb: graphprobe $version ($commit) for $debarch, files dated $(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)" >&2

CGO_ENABLED=0 GOOS=linux GOARCH=$goarch $GO build -trimpath -buildvcs=false \
	-ldflags "-s -w -X $MODULE/internal/buildinfo.Version=$version -X $MODULE/internal/buildinfo.Commit=$commit" \
	-o "$stage/graphprobe" ./cmd/graphprobe

# gzip -n: no name, no timestamp in the header.
sed -e "s/@VERSION@/$version/g" -e "s/@DATE@/$(date -u -d "@$epoch" +%Y-%m-%d)/g" \
	packaging/man/graphprobe.1.in | gzip -9n >"$stage/graphprobe.1.gz"

mkdir -p "$outdir"
deb=$outdir/graphprobe_${version}_$debarch.deb
# nfpm runs on this machine whatever GOOS/GOARCH the binary was built for.
GOOS='' GOARCH='' GOFLAGS='' \
	GRAPHPROBE_STAGE=$stage GRAPHPROBE_VERSION=$version GRAPHPROBE_DEB_ARCH=$debarch \
	SOURCE_DATE_EPOCH=$epoch \
	$GO run "$NFPM" package \
	--config packaging/nfpm.yaml --packager deb --target "$deb" >&2

printf '%s\n' "$deb"
