// Package btrfs is Docker's btrfs graph driver: every layer is a btrfs
// subvolume in btrfs/subvolumes/<id>, a base layer made empty and every
// other layer a writable snapshot of its parent.
//
// A snapshot costs no copy and no inode per file, and a layer needs no
// mount: the subvolume is a directory. That is why dockerd preferred btrfs
// to overlay2 on a btrfs data-root until Docker 23, and why graphprobe
// measures it against overlay2 there. It only runs on a btrfs data-root.
//
// Subvolumes are made and destroyed with the btrfs ioctls directly
// (BTRFS_IOC_SUBVOL_CREATE, BTRFS_IOC_SNAP_CREATE_V2,
// BTRFS_IOC_SNAP_DESTROY), with the argument structs defined here, so the
// driver needs neither cgo nor btrfs-progs. A container may have made
// subvolumes of its own inside a layer; a snapshot destroy refuses a
// subvolume that holds others, so Remove destroys nested subvolumes
// first, deepest first, as dockerd does.
//
// Unlike dockerd, Init does not bind-mount the home onto itself: that
// mount only fixes mount propagation into containers, which graphprobe
// never runs, and it would be one more mount to leak. Quota options
// (btrfs.min_space, per-layer size) are refused as unimplemented.
package btrfs
