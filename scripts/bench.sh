#!/bin/sh
# The figures quoted in the README: Go benchmarks of the probe, the drivers
# and the selector, then whole commands timed side by side in one run
# (medians of repeated runs, peak memory), with the machine they ran on.
# Compare figures as ratios within one run: shared machines are noisy.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN=bin/graphprobe
N=${N:-11}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$GO build -o "$tmp/benchcmd" ./internal/tools/benchcmd

echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "# date: $(date -u +%Y-%m-%dT%H:%MZ)"

# ONLY_COMMANDS=1 skips the Go benchmarks and times the commands only.
if [ -z "${ONLY_COMMANDS:-}" ]; then
  $GO test -run '^$' -bench . -benchmem -count "${COUNT:-5}" ./probe/ ./drivers/... ./selector/
fi

cfg="$tmp/daemon.json"
lock="$tmp/lock"
host=testdata/hosts/ubuntu-16.04
echo "# whole commands ($N runs each)"
"$tmp/benchcmd" -n "$N" -name probe-live -- $BIN probe --format json
"$tmp/benchcmd" -n "$N" -name probe-fixture -- $BIN probe --format json --root-prefix "$host"
if [ "$(id -u)" -eq 0 ]; then
  "$tmp/benchcmd" -n "$N" -name select-bench-off -- $BIN select --dry-run --bench off --format json --config "$cfg" --lock-file "$lock" --state-dir "$tmp/no-state"
  "$tmp/benchcmd" -n 5 -name select-bench-quick -- $BIN select --dry-run --format json --config "$cfg" --lock-file "$lock" --state-dir "$tmp/no-state"
  # The unit's case: select before every start of Docker. The first run
  # (no record, no daemon.json) proves with the quick benchmark, writes
  # daemon.json and records the proof; a rerun that finds nothing changed
  # decides on the record. Both on a data-root of their own.
  run="$tmp/rerun"
  mkdir -p "$run"
  set -- select --format json --config "$run/daemon.json" --lock-file "$lock" --state-dir "$run/state" --data-root "$run/docker"
  # shellcheck disable=SC2016 # expanded by the inner shell
  "$tmp/benchcmd" -n 5 -name select-first-run-quick -- sh -c 'rm -rf "$1/state" "$1"/daemon.json* && shift && exec "$@"' sh "$run" $BIN "$@"
  "$tmp/benchcmd" -n "$N" -name select-rerun-unchanged -- $BIN "$@" | tee "$tmp/rerun.txt"
  $BIN "$@" | grep -q '"reused": true' || { echo "bench: the rerun did not reuse the record" >&2; exit 1; }
  # The whole suite once, with the 64 MiB copy-up: its peak memory.
  "$tmp/benchcmd" -n 1 -name select-bench-full -- $BIN select --dry-run --bench full --format json --config "$cfg" --lock-file "$lock"
fi
# What people run today to answer the same question, on the same machine.
cc=$(find "${GRAPHPROBE_DOCKER_CACHE:-$HOME/.cache/graphprobe/engines}/20.10" -name check-config.sh 2>/dev/null | head -1 || true)
if [ -n "$cc" ] && [ -r /proc/config.gz ]; then
  # It exits non-zero when the kernel lacks optional features.
  "$tmp/benchcmd" -n 5 -ok 0,1 -name check-config.sh -- bash "$cc"
fi
if [ "$(id -u)" -eq 0 ]; then
  $GO test -run '^$' -bench DockerdStart -benchtime 5x ./test/e2e/ | tee "$tmp/dockerd.txt"
  # The rerun against a dockerd start of the same run (target <= 0.03x).
  awk '/^# select-rerun-unchanged/ {r=$4} /BenchmarkDockerdStart/ {for (i=2;i<NF;i++) {if ($(i+1)=="start-ms/op") s=$i; if ($(i+1)=="start+info-ms/op") si=$i}}
    END {if (r && s) printf "# select-rerun-unchanged %.2f ms = %.3fx a dockerd start (%.0f ms), %.3fx start + docker info (%.0f ms)\n", r, r/s, s, r/si, si}' "$tmp/rerun.txt" "$tmp/dockerd.txt"
fi
