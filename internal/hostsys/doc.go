// Package hostsys is graphprobe's one home for the system calls that the
// probe, the drivers and the selector's file handling share: a private
// mount namespace on a dedicated thread, safe scratch directories, statfs
// with Docker's filesystem names, the d_type check, the structured error of
// a failed mount, the overlay test-mount fixture, naming a file's kind, and
// reading a captured host's files without leaving its tree.
//
// These used to live in probe, which made probe a syscall toolbox that every
// driver imported. Here they carry no knowledge of facts, drivers or Docker
// releases, so any package may import hostsys and hostsys imports no other
// package of graphprobe.
//
// Linking the package pins the main goroutine to the main thread (see
// mainthread_linux.go), because the namespace threads must never be it.
package hostsys
