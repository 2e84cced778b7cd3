// Package reliability holds the "never break a host" tests: graphprobe
// select is killed at random moments, interrupted mid-benchmark, run out of
// space and inodes, pointed at read-only filesystems, run twice at once,
// run hundreds of times in one process, fed hostile paths (planted symlinks
// and directories at scratch names, symlinked data-roots, daemon.json and
// lock files that are links, FIFOs, directories or huge) and hostile
// documents, and run without root. After each, the tests check what a host
// needs: daemon.json is the old or the new content byte for byte, no mount
// is left in the test's mount table, no scratch dir or temporary file is
// left, and nothing outside the paths graphprobe owns was touched.
//
// The tests run the real binary (built once by TestMain) as root on loop
// filesystems made by internal/testutil, with a temporary --config,
// --lock-file and --data-root, and --docker-version so that no dockerd is
// needed. They skip without root, and fail instead under
// GRAPHPROBE_REQUIRE_ROOT=1. -short runs fewer iterations; `make test`
// runs the full counts. Figures (runs, kills, leaks, durations) are printed
// with t.Logf: run with -v to see them. Nothing here asserts a duration.
package reliability
