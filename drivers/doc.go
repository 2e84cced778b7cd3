// Package drivers defines the storage driver interface that graphprobe
// initialises and benchmarks, the registry of every driver Docker has
// shipped, and the errors a driver's init returns when the host cannot run
// it.
//
// Each driver lives in a package of its own under drivers/ and registers
// itself with Register in its init function; drivers/all imports them all.
// The on-disk layout of each driver is the one Docker's graph driver of the
// same name uses, so that what graphprobe initialises and measures is what
// dockerd will run, and so that a driver can open a home dockerd wrote.
//
// Drivers make real syscalls (mount, ioctl). The caller decides the mount
// namespace: graphprobe runs them on a hostsys.MountNS thread so that a killed
// run leaks no mount.
package drivers
