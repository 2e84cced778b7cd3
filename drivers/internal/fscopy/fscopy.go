package fscopy

import "strconv"

// Mode says how regular files are copied.
type Mode int

const (
	// Content copies file data (sparse files stay sparse). Hard links
	// within the source tree become hard links within the copy.
	Content Mode = iota
	// Hardlink links regular files instead of copying them; directories,
	// symlinks and special files are still new inodes, which is exactly
	// overlay v1's inode cost. Source and destination must be on the same
	// filesystem.
	Hardlink
)

func (m Mode) String() string {
	switch m {
	case Content:
		return "content"
	case Hardlink:
		return "hardlink"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Options configure CopyWith.
type Options struct {
	Mode Mode
	// BestEffortXattrs skips extended attributes the destination refuses
	// (EOPNOTSUPP, EPERM) instead of failing. It exists for vfs's
	// vfs.xattrs=i_want_broken_containers option: a copy that silently
	// drops security.capability breaks binaries such as ping, so the
	// default is to fail.
	BestEffortXattrs bool
}

// Copy copies the tree at src into dst, which must not exist or be an
// empty directory; dst's parent must exist. The root of dst gets the
// metadata of src.
//
// The source is read without moving its atimes (O_NOATIME), except for
// symlinks: readlink(2) moves a symlink's atime and has no such flag. The
// copy gets the times the source had before it was read.
func Copy(src, dst string, mode Mode) error {
	return CopyWith(src, dst, Options{Mode: mode})
}

// CopyWith is Copy with options.
func CopyWith(src, dst string, opts Options) error {
	return copyTree(src, dst, opts)
}
