// Package state remembers what a `graphprobe select` run proved, so that a
// rerun on a host where nothing changed skips the driver's initialisation
// and benchmark.
//
// The unit runs select before every start of Docker; without a record each
// boot would spend a third of dockerd's own start re-proving a result that
// cannot differ. A Record holds what decided the last proof: graphprobe's
// build, the machine and its kernel, the data-root's filesystem (type,
// device, UUID, mount options), the binaries and device nodes the driver
// facts came from, the daemon.json bytes written, the flags and policy, the
// probe report and the decision. A rerun observes the cheap part again
// (Observe: a few stat calls, uname, one read of mountinfo) and reuses the
// report only when every field is equal; any difference, and any doubt
// about the record itself (missing, truncated, corrupt, a symlink, owned by
// another user, written by another graphprobe), means a full proof.
//
// The record is written with daemonjson.WriteFileAtomic after the proof and
// the daemon.json write succeeded, so a killed run never leaves a record
// of a proof it did not finish.
package state
