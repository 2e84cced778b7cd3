// Package version holds typed versions of the things graphprobe compares.
//
// Each kind is parsed once, where it enters the program (uname, a captured
// host's files, dockerd --version), and compared as a value afterwards:
// thresholds are values too, so a bad threshold is a compile error rather
// than a panic at run time.
package version
