// Package version holds typed versions of the things graphprobe compares
// (the Docker engine, the kernel). Each is parsed once, where it enters the
// program (a flag, a command's output, a file), and passed on typed, so that
// no two parsers can disagree on what a string means.
//
// The package is a leaf: it knows how versions are written and ordered, not
// what any release changed; that knowledge lives in the tables of drivers
// and selector.
package version
