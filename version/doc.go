// Package version holds typed versions of the things graphprobe compares
// (the Docker engine, the kernel).
//
// Each kind is parsed once, where it enters the program (uname, a captured
// host's files, dockerd --version, a flag, daemon.json's release), and
// compared as a value afterwards, so that no two parsers can disagree on
// what a string means: thresholds are values too, so a bad threshold is a
// compile error rather than a panic at run time.
//
// The package is a leaf: it knows how versions are written and ordered, not
// what any release changed; that knowledge lives in the tables of drivers
// and selector.
package version
