// Package vmtest boots real kernels under qemu so that the probe meets
// kernels other than the one the tests run on.
//
// The host running the tests has one kernel; graphprobe is used by CI
// matrices across many. This package fetches Debian's linux-image packages
// (with a private apt state: the system's apt state is never touched),
// unpacks them with dpkg -x, builds a busybox initramfs per kernel holding
// its storage modules, and boots it with qemu-system-x86_64 (KVM when it
// works, TCG otherwise) with small raw disk images attached over virtio.
// The program inside writes its results to the second serial port, framed
// by markers, and powers the machine off.
//
// Everything downloaded or built is cached under CacheDir (the user cache
// dir, or $GRAPHPROBE_VM_CACHE), so that reruns and CI reruns are fast.
package vmtest
