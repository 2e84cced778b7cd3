// Package ovl holds what the overlay2 and fuse-overlayfs drivers share,
// and the checks overlay v1 shares with them: Docker's overlay2 on-disk
// layout (short links in l/, each layer's diff/, link, lower, work/,
// merged/ and committed), the init checks Docker runs (backing filesystem,
// d_type, a real test mount, native diff, metacopy), and the ways to mount
// a stack of lower layers.
//
// A stack is mounted without any helper process. Its mount data holds
// absolute paths when they fit in a page, which is the fastest. When they
// do not (128 lowers below a long home path), the lowers are handed to
// the kernel one at a time with fsconfig(2) "lowerdir+" (Linux 6.8), which
// has no size limit; on older kernels the mount is made with paths
// relative to the home, from a thread that changed its own working
// directory (see package nsthread). Docker used to fork a helper for that
// last case, at about 8 ms a mount.
package ovl
