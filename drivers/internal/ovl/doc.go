// Package ovl holds what the overlay-family drivers share. overlay2 and
// fuse-overlayfs differ only in how a stack is mounted (a Backend), so
// their layer operations are here (Layers): Docker's overlay2 layout (short
// links in l/, each layer's diff/, link, lower, work/, merged/ and
// committed), and diffs straight in and out of diff/ where the driver
// allows it. All three, overlay v1 included, share the init checks Docker
// runs (backing filesystem, d_type, a real test mount, native diff,
// metacopy), the ways to mount a stack of lower layers, and what is done
// around a mount (Mounts): reference counts, unmounting on the last Put,
// refusing to remove a mounted layer, and the naive diff of the mounted
// layer against its mounted parent.
//
// The kernel's overlay (Kernel) mounts a stack without any helper
// process. Its mount data holds absolute paths when they fit in a page,
// which is the fastest. When they do not (128 lowers below a long home
// path), the lowers are handed to the kernel one at a time with
// fsconfig(2) "lowerdir+" (Linux 6.8), which has no size limit; on older
// kernels the mount is made with paths relative to the home, from a
// thread that changed its own working directory (see package nsthread).
// Docker used to fork a helper for that last case, at about 8 ms a mount.
package ovl
