// Package overlay is Docker's first overlay storage driver ("overlay",
// removed in Docker 24), laid out as dockerd laid it out: an image layer
// is a full tree in <home>/<id>/root, and a container layer is one upper
// directory over its image's root (lower-id, upper/, work/, merged/).
//
// An image layer on top of another is made by hard-linking the parent's
// whole root and applying the diff there. Files cost nothing, but every
// directory and symlink is a new inode in every layer: this is the driver
// that runs a filesystem out of inodes long before it runs out of space,
// and graphprobe measures that cost rather than assuming it.
//
// Init runs Docker's checks: overlay in /proc/filesystems, a backing
// filesystem it accepts, d_type, and a test mount with one lower layer.
package overlay
