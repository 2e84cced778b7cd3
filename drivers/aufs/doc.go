// Package aufs is Docker's aufs graph driver, the default on Ubuntu and
// Debian until overlay2 replaced it (Docker removed it in 24.0).
//
// Layout under the home: layers/<id> lists the layer's parents, one id a
// line, nearest first; diff/<id>/ holds the layer's own files with
// deletions as aufs whiteouts (.wh.<name>, .wh..wh..opq); mnt/<id>/ is
// where a layer with parents is mounted. A layer is mounted as one aufs
// union: its diff read-write on top of its parents' diffs read-only, at
// most 127 branches. The branches that do not fit in the first page of
// mount data are added by remounting with "append:" data, page by page,
// which is what makes a deep aufs mount slow.
//
// Init refuses a kernel without aufs (not in /proc/filesystems) and the
// backing filesystems aufs cannot stack on (aufs, btrfs, ecryptfs), with
// not-supported class errors so that a caller moves on as dockerd does.
// dockerd runs `modprobe aufs` first; this package never loads a module:
// the caller decides that (graphprobe select loads modules before
// initialising unless told not to).
//
// Mounts go through drivers.Options.Mounter when one is given. On a kernel
// without aufs (mainline Linux never merged it) this package is tested
// only against a recording Mounter that checks the exact mount(2) calls;
// no real aufs mount is exercised there.
package aufs
