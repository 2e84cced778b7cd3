// Package packaging tests what ships: the Debian package that
// scripts/package-deb.sh builds from packaging/ (its contents, modes, dates
// and byte-for-byte reproducibility), the man page and shell completions
// against the CLI's own --help, the systemd unit, and, as root, a real
// dpkg install, `graphprobe version` from /usr/bin, `systemd-analyze verify`
// of the installed unit, and removal and purge leaving nothing behind.
//
// Tests that need a tool go through testutil.RequiresTool and the install
// test through testutil.RequiresRoot: they skip, or fail under
// GRAPHPROBE_REQUIRE_ROOT=1.
package packaging
