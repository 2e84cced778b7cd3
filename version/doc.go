// Package version holds typed versions of the things graphprobe compares
// (the Docker engine, the kernel).
//
// Each kind is parsed once, where it enters the program (uname, a captured
// host's files, dockerd --version, a flag, daemon.json's release), and
// compared as a value afterwards, so that no two parsers can disagree on
// what a string means. Kernel thresholds are values (K(4, 0)), so a bad
// one is a compile error; Docker thresholds are the release table's rows,
// parsed once when the program starts (MustDocker), so a bad one stops
// every run and test at once rather than the one path that reads it.
//
// The package is a leaf: it knows how versions are written and ordered, not
// what any release changed; that knowledge lives in the tables of drivers
// and selector.
package version
