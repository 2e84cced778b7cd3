// Package archive moves layers as image-layer tar streams, as an image pull
// and push do: Apply unpacks a stream into a layer directory, turning the
// stream's aufs-form whiteouts into the driver's own form; Export and
// ExportChanges produce a stream with aufs-form whiteouts.
package archive

import (
	"errors"
	"io"
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

var errUnimplemented = errors.New("archive: not implemented yet")

// Apply unpacks the tar stream r into dest and returns the bytes of file
// content written.
func Apply(dest string, r io.Reader, opts ApplyOptions) (int64, error) {
	return 0, errUnimplemented
}

// Export tars the directory dir (a layer's own changes, such as overlay's
// diff/ or aufs's diff/<id>) with aufs-form whiteouts.
func Export(dir string, opts ExportOptions) (io.ReadCloser, error) {
	return nil, errUnimplemented
}

// ExportChanges compares the full tree layer with the full tree parent
// (parent "" for a base layer) and tars what changed, deleted paths as
// aufs-form whiteouts: the naive diff, for drivers whose layers are full
// trees.
func ExportChanges(layer, parent string) (io.ReadCloser, error) {
	return nil, errUnimplemented
}
