package hostsys

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

// StatMode is the file type of a raw stat(2) result as an fs.FileMode, for
// FileKind and fs.FileMode's tests, where a reader works on descriptors
// (fstatat) rather than os.FileInfo. Permission bits are left out.
func StatMode(st *unix.Stat_t) fs.FileMode {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFREG:
		return 0
	}
	return fs.ModeIrregular
}
