// Package testutil holds the helpers shared by graphprobe's tests: the one
// gate for root-only tests, and real filesystems made on loop devices.
package testutil
