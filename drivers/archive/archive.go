package archive

import (
	"errors"
	"fmt"
)

// WhiteoutFormat is how deletions are recorded on disk in a layer.
type WhiteoutFormat int

const (
	// WhiteoutNone: the layer is a full tree (vfs, btrfs, overlay v1's
	// root/); a whiteout in the stream deletes the path in the tree.
	WhiteoutNone WhiteoutFormat = iota
	// WhiteoutAUFS: ".wh.<name>" files and ".wh..wh..opq" markers are kept
	// as they are in the stream.
	WhiteoutAUFS
	// WhiteoutOverlay: a 0/0 character device named like the deleted
	// file, and the trusted.overlay.opaque=y xattr on opaque directories.
	WhiteoutOverlay
)

func (f WhiteoutFormat) String() string {
	switch f {
	case WhiteoutNone:
		return "none"
	case WhiteoutAUFS:
		return "aufs"
	case WhiteoutOverlay:
		return "overlay"
	}
	return fmt.Sprintf("whiteout-format(%d)", int(f))
}

// The aufs whiteout names, which image tars carry.
const (
	// WhiteoutPrefix starts the name of a whiteout: ".wh.<name>" deletes
	// <name> of the layers below.
	WhiteoutPrefix = ".wh."
	// WhiteoutMetaPrefix starts aufs's own entries, which are not
	// whiteouts of a file called ".wh.<something>".
	WhiteoutMetaPrefix = WhiteoutPrefix + WhiteoutPrefix
	// WhiteoutOpaqueDir in a directory hides everything the layers below
	// have in that directory.
	WhiteoutOpaqueDir = WhiteoutMetaPrefix + ".opq"
	// WhiteoutLinkDir at the top of an aufs layer holds the targets of
	// hard links whose other names were removed.
	WhiteoutLinkDir = WhiteoutMetaPrefix + "plnk"
)

// OverlayOpaqueXattr marks an overlay directory as opaque when set to "y".
const OverlayOpaqueXattr = "trusted.overlay.opaque"

// overlayXattrPrefix is overlay's private namespace: redirect, origin,
// impure, metacopy and opaque are kernel bookkeeping of one upper dir and
// mean nothing in another layer.
const overlayXattrPrefix = "trusted.overlay."

// paxXattrPrefix is how tar (GNU tar, Docker, containerd) carries xattrs.
const paxXattrPrefix = "SCHILY.xattr."

// ApplyOptions configure Apply.
type ApplyOptions struct {
	Whiteouts WhiteoutFormat
}

// ExportOptions configure Export.
type ExportOptions struct {
	// Whiteouts is the on-disk form in the directory exported; the stream
	// always carries the aufs form.
	Whiteouts WhiteoutFormat
}

// ErrUnsafePath is wrapped by every refusal of a tar entry that would
// write outside the layer.
var ErrUnsafePath = errors.New("unsafe path in layer archive")

// UnsafePathError names the refused entry and why it was refused.
type UnsafePathError struct {
	Entry  string
	Reason string
}

func (e *UnsafePathError) Error() string {
	return fmt.Sprintf("tar entry %q: %v: %s", e.Entry, ErrUnsafePath, e.Reason)
}

func (e *UnsafePathError) Unwrap() error { return ErrUnsafePath }

// ChangeKind says what happened to a path between a parent and a layer.
type ChangeKind int

const (
	ChangeModify ChangeKind = iota
	ChangeAdd
	ChangeDelete
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeModify:
		return "C"
	case ChangeAdd:
		return "A"
	case ChangeDelete:
		return "D"
	}
	return "?"
}

// Change is one changed path, relative to the layer root, as
// `docker diff` lists them.
type Change struct {
	Path string
	Kind ChangeKind
}

func (c Change) String() string { return c.Kind.String() + " " + c.Path }
