#!/bin/sh
# select-storage-driver.sh: pick Docker's storage driver with graphprobe while
# provisioning a host, and act on every outcome. POSIX sh; needs graphprobe,
# sed and awk (no jq).
#
# Usage: select-storage-driver.sh [graphprobe select flags...]
#   select-storage-driver.sh --docker-version 25.0.5 --no-load-modules
#
# What each exit code of `graphprobe select` leads to (the script exits with
# the same code, so a caller can branch on it too):
#   0  daemon.json written or already up to date: say which driver; when it
#      was written, apply it with DOCKER_RESTART_CMD
#   1  runtime error, nothing written: say what failed and stop
#   2  usage error: the flags given to this script are wrong; stop
#   3  no usable driver for this Docker release: abort, or, when
#      GRAPHPROBE_FALLBACK_DRIVER is set (e.g. vfs), select that one instead
#   4  refused for safety: never add --force from here; say why, raise an
#      alert with GRAPHPROBE_ALERT_CMD and stop
#
# Environment:
#   GRAPHPROBE                  the graphprobe binary (default: graphprobe)
#   GRAPHPROBE_FALLBACK_DRIVER  driver to accept when none is usable (unset:
#                               abort on exit 3)
#   GRAPHPROBE_ALERT_CMD        run on exit 4 with the message as its last
#                               argument (default: logger -t graphprobe -p
#                               daemon.warning, where logger exists)
#   DOCKER_RESTART_CMD          applies a written daemon.json (default:
#                               systemctl try-restart docker.service, which
#                               restarts Docker only if it is running)
set -u

gp=${GRAPHPROBE:-graphprobe}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/select-storage-driver.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf 'select-storage-driver: %s\n' "$*" >&2; }

# run_select FLAGS...: graphprobe select with YAML on $tmp/out.yaml and its
# error message on $tmp/err; returns graphprobe's exit code.
run_select() {
	"$gp" select --format yaml "$@" >"$tmp/out.yaml" 2>"$tmp/err"
}

# The error graphprobe printed, without its "graphprobe: " prefix.
error_message() { sed 's/^graphprobe: //' "$tmp/err"; }

# top KEY: a top-level scalar of the YAML document (unindented, so never a
# key of a nested candidate).
top() { sed -n "s/^$1: //p" "$tmp/out.yaml" | sed 's/^"\(.*\)"$/\1/' | head -n 1; }

# daemon_json KEY: a key of the daemonJSON block.
daemon_json() {
	awk -v key="$1:" '
		/^daemonJSON:/ { block = 1; next }
		/^[^ ]/ { block = 0 }
		block && $1 == key { print $2; exit }
	' "$tmp/out.yaml" | sed 's/^"\(.*\)"$/\1/'
}

restart_docker() {
	if [ -n "${DOCKER_RESTART_CMD:-}" ]; then
		sh -c "$DOCKER_RESTART_CMD"
	elif command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl try-restart docker.service
	else
		say "restart dockerd yourself to apply it (no systemd here)"
		return 0
	fi || {
		say "restarting Docker failed: dockerd still runs with the previous driver"
		return 1
	}
}

alert() {
	if [ -n "${GRAPHPROBE_ALERT_CMD:-}" ]; then
		sh -c "$GRAPHPROBE_ALERT_CMD \"\$1\"" alert "$1"
	elif command -v logger >/dev/null 2>&1; then
		logger -t graphprobe -p daemon.warning -- "$1"
	fi
}

run_select "$@"
rc=$?
if [ "$rc" -eq 3 ] && [ -n "${GRAPHPROBE_FALLBACK_DRIVER:-}" ]; then
	say "$(error_message) (exit 3)"
	say "falling back to $GRAPHPROBE_FALLBACK_DRIVER (GRAPHPROBE_FALLBACK_DRIVER)"
	# A later --driver wins over one given by the caller.
	run_select "$@" --driver "$GRAPHPROBE_FALLBACK_DRIVER"
	rc=$?
fi

case $rc in
0)
	driver=$(top driver)
	path=$(daemon_json path)
	if [ "$(daemon_json written)" = true ]; then
		backup=$(daemon_json backup)
		say "storage driver $driver for Docker $(top dockerVersion): wrote $path${backup:+ (previous content in $backup)}"
		restart_docker || exit 1
	else
		say "storage driver $driver for Docker $(top dockerVersion): $path already up to date"
	fi
	;;
1)
	say "graphprobe could not decide (exit 1): $(error_message)"
	say "nothing was written; check that this runs as root and that daemon.json is valid JSON"
	;;
2)
	say "graphprobe rejected its arguments (exit 2): $(error_message)"
	say "fix the flags given to this script: $*"
	;;
3)
	say "$(error_message) (exit 3)"
	say "aborting: daemon.json is unchanged; set GRAPHPROBE_FALLBACK_DRIVER=vfs to accept vfs (slow, but it always works)"
	;;
4)
	msg="graphprobe refused to change Docker's storage driver (exit 4): $(error_message)"
	say "$msg"
	say "not forcing it: existing images and containers would be hidden; review with 'graphprobe select --dry-run' and rerun with --force only where that is safe"
	alert "$msg"
	;;
*)
	say "graphprobe ended with status $rc (interrupted?): $(error_message)"
	;;
esac
exit "$rc"
