// Package drivertest is the conformance suite every storage driver's tests
// run, and the benchmarks that compare drivers side by side.
//
// Run exercises a driver the way dockerd does: layer chains applied from
// image-layer tar streams, mounts read and written through, copy-up,
// deletes and renames across layers, reference-counted Get and Put under
// concurrency, a stack as deep as the driver allows, a Diff/ApplyDiff
// round trip, and Remove and Cleanup leaving no file and no mount behind.
// It runs as root on a real filesystem the test makes (OnFS), because
// what it checks is what the kernel does with the driver's layout.
//
// A driver without a kernel to mount with (aufs on a kernel without it)
// runs the suite with WithoutRealMounts, which keeps the checks that need
// no mount: layout, reference counts, streams.
package drivertest
