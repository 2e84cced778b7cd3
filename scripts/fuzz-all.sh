#!/usr/bin/env bash
# Run every Go fuzz target of the module for a bounded time each.
#
#   scripts/fuzz-all.sh [FUZZTIME]     FUZZTIME: 10s by default (or $FUZZTIME),
#                                      any value go test -fuzztime takes (30s, 2m, 5000x)
#   FUZZ_PKGS="./probe ./selector/..." scripts/fuzz-all.sh   only these packages
#   FUZZMINIMIZETIME=5s (default)      time go spends minimizing each new input;
#                                      Go's 60s default stalls a short run on
#                                      large seeds (kernel config, os-release)
#
# Targets are found with `go test -list '^Fuzz'`, so a new target is picked up
# without editing this script. A target that finds a failing input makes Go
# write it to the package's testdata/fuzz/<Target>/ directory, where it stays
# as a regression case for every later `go test`; commit it with the fix.
# The inputs that only widen coverage stay in Go's cache (go env GOCACHE), not
# in the tree. At the end a table gives each target's executions and result;
# the exit status is 1 if any target failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
fuzztime="${1:-${FUZZTIME:-10s}}"
pkgs="${FUZZ_PKGS:-./...}"
minimize="${FUZZMINIMIZETIME:-5s}"

logdir="$(mktemp -d)"
trap 'rm -rf "$logdir"' EXIT

# package<TAB>target, one per line.
# shellcheck disable=SC2086
targets="$(go test -list '^Fuzz' $pkgs 2>/dev/null | awk '
	/^Fuzz/ { names[++n] = $1; next }
	/^(ok|\?)[ \t]/ { for (i = 1; i <= n; i++) print $2 "\t" names[i]; n = 0 }
')"
if [ -z "$targets" ]; then
	echo "fuzz-all: no fuzz targets found in $pkgs" >&2
	exit 1
fi

echo "fuzz-all: $(echo "$targets" | wc -l) targets, $fuzztime each (minimizing new inputs for up to $minimize)"
failed=0
results=()
while IFS=$'\t' read -r pkg target; do
	log="$logdir/$(echo "$pkg.$target" | tr '/' '_').log"
	printf '%-54s %-26s ' "$pkg" "$target"
	start=$(date +%s)
	status=FAIL
	for attempt in 1 2; do
		if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$pkg" >"$log" 2>&1; then
			status=ok
			break
		fi
		# On a loaded machine Go's fuzz coordinator can miss its own
		# deadline while the workers start ("context deadline exceeded")
		# with no input found: that run tested nothing, so it runs once
		# more. A failing input is always written and never retried.
		if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"; then
			cp "$log" "$log.first"
			continue
		fi
		break
	done
	if [ "$status" = FAIL ]; then
		failed=1
	elif [ -e "$log.first" ]; then
		status="ok (rerun: the first run missed Go's fuzz deadline)"
	fi
	secs=$(( $(date +%s) - start ))
	# The last progress line holds the total: "fuzz: elapsed: 10s, execs: 123 (12/sec), new interesting: 4 (total: 9)".
	execs="$(grep -o 'execs: [0-9]*' "$log" | tail -1 | awk '{print $2}')"
	interesting="$(grep -o 'new interesting: [0-9]*' "$log" | tail -1 | awk '{print $3}')"
	printf '%10s execs %5s new  %4ss  %s\n' "${execs:-?}" "${interesting:-?}" "$secs" "$status"
	results+=("$pkg $target ${execs:-?} $status")
	if [ "$status" = FAIL ]; then
		sed -n '1,60p' "$log" | sed 's/^/    /'
		grep -h 'Failing input written to' "$log" | sed 's/^/    /' || true
	fi
done <<<"$targets"

total=0
for r in "${results[@]}"; do
	n="$(echo "$r" | awk '{print $3}')"
	[ "$n" != "?" ] && total=$((total + n))
done
echo "fuzz-all: ${#results[@]} targets, $total executions in total; $( [ $failed = 0 ] && echo 'no failure' || echo 'FAILURES above (inputs kept in testdata/fuzz)')"
exit $failed
