// Package archive moves layers as image-layer tar streams, as an image pull
// and push do: Apply unpacks a stream into a layer directory, turning the
// stream's aufs-form whiteouts into the driver's own form; Export and
// ExportChanges produce a stream with aufs-form whiteouts; ConvertWhiteouts
// turns one on-disk form into the other.
//
// A stream is untrusted input. Apply refuses entries that would land
// outside the layer (a "../" or absolute name, a hard link to such a name,
// a parent directory reached through a symlink that leaves the layer)
// before it writes anything for them, and it never follows a symlink at
// the final component of an entry. It replaces an existing file by
// unlinking it and writing a new inode, never by writing into it: overlay
// v1's image layers share every file's inode with their parent through
// hard links, and an in-place write would change the parent too.
//
// Everything a layer records is kept: modes with setuid, setgid and sticky
// bits, owners, nanosecond modification times, extended attributes (PAX
// records SCHILY.xattr.*), symlinks, hard links, device nodes and FIFOs.
// overlay's private xattrs (trusted.overlay.*) are on-disk bookkeeping of
// the kernel, never part of a stream.
package archive
