// Package daemonjson reads, edits and writes Docker's daemon.json without
// losing anything graphprobe does not own.
//
// Provisioning tools, configuration management and people all edit
// daemon.json; graphprobe runs at every boot and must leave their work
// alone. So the file is never decoded into a struct and re-encoded: Parse
// walks encoding/json's tokens (the decoder dockerd uses, so that both
// agree on what is JSON) and notes where the values it reads stand in the
// original bytes, and Merge splices new values into those bytes. Only
// storage-driver, storage-opts and features.containerd-snapshotter change;
// every other key keeps its bytes (number spelling, escapes, whitespace)
// and its place.
//
// The parser is stricter than dockerd where dockerd would silently guess:
// duplicate keys are refused (encoding/json keeps the last one, so which
// value is in force is easy to misread, and editing one of two copies is
// wrong either way), and documents over MaxSize bytes or nested deeper than
// MaxDepth levels are refused before they cost time or memory. Like dockerd
// it accepts an empty file as {} and a UTF-8 byte order mark (kept on
// write); unlike dockerd it refuses UTF-16 files rather than re-encoding
// them.
//
// A keyed null ("storage-driver": null) counts as absent, as it does for
// dockerd's decoder; other wrong types of the keys graphprobe reads are
// errors naming the key, because dockerd refuses them too.
//
// Writing goes through File: the file is opened without following a FIFO
// or device, symlinks are resolved so that the link's final target is
// replaced (not the link), and the replacement is a temporary file in the
// target's directory that is fsynced and renamed over the target, followed
// by an fsync of the directory. The previous content is kept beside it as
// <name>.graphprobe-backup. Temporary files are named
// .<name>.graphprobe-<pid>.<random>.tmp so that a later run can tell those
// of killed runs from those of a run still in progress.
package daemonjson
