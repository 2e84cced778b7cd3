// Package probe answers the questions that decide a Docker storage driver on a
// Linux host: what the kernel version says, and what a real test found.
//
// A probe runs either against the live host or against a captured fixture
// host (a directory tree read in place of /). Live probes may run test
// mounts; they do so in a private mount namespace on a dedicated OS thread,
// in a 0700 scratch directory that is removed afterwards, so that nothing
// leaks into the host's mount table even when the process is killed. Fixture
// probes never make a syscall against the host: their facts are inferred
// from the captured files, or taken from the live results stored with the
// capture.
//
// Every fact has one of three outcomes, decided once here and nowhere else:
//
//   - supported: the test (or the file, or the version) says yes;
//   - not supported: a test returned an error wrapping ErrNotSupported,
//     usually as an *UnsupportedError carrying the minimum kernel;
//   - inconclusive: any other error. The fact's verdict is null and its
//     detail says why (for example "needs root").
//
// Parsers take an io.Reader and return values; the readers of /proc, /sys,
// /boot and /lib/modules around them are thin, so that every parser is tested
// on real captured files and fuzzed.
//
// Its system calls (mount namespaces, scratch dirs, statfs, d_type, the safe
// reader of a captured tree) live in internal/hostsys, which drivers share;
// besides hostsys and the leaf package version, whose Kernel it parses the
// release into, this package imports no other package of graphprobe.
package probe
