// Package e2e holds graphprobe's end-to-end tests: a real dockerd 20.10
// (internal/dockertest) on real filesystems made by the tests
// (internal/testutil), checked against Docker's rules and against what
// graphprobe predicts and lays out itself.
//
// The tests need root; they skip without it, and fail instead under
// GRAPHPROBE_REQUIRE_ROOT=1. They start one daemon at a time.
package e2e
