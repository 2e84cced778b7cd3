// Package vfs is Docker's vfs graph driver: every layer is a full copy of
// its parent in vfs/dir/<id>, made with no kernel support at all.
//
// It is the driver every host can run, which is why dockerd falls back to
// it silently, and why graphprobe measures what that fallback costs: each
// layer spends one inode per file, directory and symlink of the image below it and the full size
// of its data (where the filesystem cannot share extents), and creating a
// layer takes as long as copying the image.
//
// The copy keeps everything a container relies on: modes with setuid and
// sticky bits, owners, every extended attribute (file capabilities in
// security.capability among them), symlinks, hard links, device nodes and
// holes. Layers are never mounted: Get returns the directory, but
// references are still counted, so that a Put without a Get is caught as
// it would be on a driver that mounts.
package vfs
