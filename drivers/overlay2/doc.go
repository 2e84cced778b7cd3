// Package overlay2 is Docker's overlay2 storage driver: each layer's own
// changes in <home>/<id>/diff, stacked by the kernel's overlay filesystem
// over up to 128 lower layers named through 26-char short links in
// <home>/l, exactly as dockerd lays them out, so that what graphprobe
// initialises and measures is what dockerd will run.
//
// Init runs Docker's checks in the home (or its parent when the home does
// not exist yet): overlay in /proc/filesystems, a backing filesystem
// overlay2 accepts (not aufs, ecryptfs, nfs, overlayfs or zfs), d_type,
// and a real test mount with two lower layers. A host that fails one gets
// a not-supported error naming the reason and the remedy.
//
// A stack of any depth is mounted by one syscall sequence in this process,
// never by a forked helper: see package ovl for the three ways. Diff tars
// diff/ directly when the kernel allows it (Docker's "native diff") and
// otherwise compares the mounted layer with its mounted parent.
package overlay2
