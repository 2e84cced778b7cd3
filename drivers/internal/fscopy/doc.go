// Package fscopy copies directory trees with full fidelity: modes
// (setuid, setgid and sticky included), owners, timestamps, extended
// attributes of every namespace, symlinks, hard links, device nodes,
// overlay whiteouts, FIFOs, sockets and sparse files.
//
// Drivers whose layers are full trees need it. vfs copies the parent into
// every new layer, so anything the copy drops (a file capability in
// security.capability, a setuid bit, a hole) is lost in every layer above.
// overlay v1 builds each image layer by hard-linking its parent's tree: a
// new inode for every directory, symlink and special file, a shared one for
// every regular file, which is exactly the inode cost that makes overlay
// exhaust inodes and that graphprobe wants to measure.
//
// Regular file data is moved by the kernel where it can be: FICLONE shares
// extents on filesystems with reflinks (btrfs, xfs with reflink=1), and
// copy_file_range moves the rest without a trip through user space. Holes
// are found with SEEK_DATA/SEEK_HOLE and skipped explicitly, because
// copy_file_range alone does not keep a file sparse on every filesystem.
package fscopy
