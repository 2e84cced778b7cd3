// Package selector turns a probe report into the storage driver the host's
// Docker engine will accept and run best.
//
// The decision is pure: Decide takes a probe report, the target Docker
// release and the caller's options, and returns every known driver's
// eligibility with reasons and remedies, and the choice, following dockerd's
// own rules release by release (priority lists, removed drivers, prior
// state, the containerd image store from 29). It is tested without root.
//
// Initialising and benchmarking the chosen driver (Prove) and writing
// daemon.json (the daemonjson package) are separate steps the command line
// strings together.
package selector
