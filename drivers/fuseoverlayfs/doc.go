// Package fuseoverlayfs is Docker's fuse-overlayfs storage driver:
// overlay2's on-disk layout, mounted by the fuse-overlayfs binary instead
// of the kernel's overlay. It exists for hosts whose data-root is itself
// on overlayfs (Docker-in-Docker, CI containers), where overlay2 refuses
// to run, and for rootless Docker on kernels before 5.11.
//
// Each mount is a fuse-overlayfs process. It runs in the foreground as a
// child of graphprobe, started from a thread that lives exactly as long as
// the process and with a parent-death signal, so that a graphprobe that is
// killed takes its daemons with it instead of leaving them running with
// their mounts. Get returns once the mount shows in the mount table; Put
// unmounts and waits for the process to exit.
//
// Init runs Docker's checks (the binary on PATH, kernel 4.18) plus two
// Docker leaves to the first mount: /dev/fuse, and a real test mount.
package fuseoverlayfs
