package hostsys

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// FS is what statfs(2) says about the filesystem holding a path, with the
// magic already named as Docker names it in "Backing Filesystem".
type FS struct {
	// Name is Docker's name for Magic ("extfs", "xfs"), or "0x<hex>".
	Name string
	// Magic is f_type, reduced to the 32 bits the kernel defines.
	Magic int64
	// ID is f_fsid as 16 hex digits: two paths with the same ID are on
	// the same mounted filesystem.
	ID string
	// Inodes and InodesFree are 0 on filesystems that allocate inodes as
	// they go (btrfs).
	Inodes, InodesFree uint64
	// BlockSize is f_bsize; Blocks, BlocksFree (root may use them) and
	// BlocksAvail (unprivileged users may) count in it.
	BlockSize                       uint64
	Blocks, BlocksFree, BlocksAvail uint64
}

// Statfs reports the filesystem holding path. It is the one statfs wrapper
// of graphprobe, so that every caller names a filesystem the same way.
func Statfs(path string) (FS, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return FS{}, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	m := int64(st.Type) & 0xFFFFFFFF
	return FS{
		Name:        FilesystemName(m),
		Magic:       m,
		ID:          fmt.Sprintf("%08x%08x", uint32(st.Fsid.Val[0]), uint32(st.Fsid.Val[1])),
		Inodes:      st.Files,
		InodesFree:  st.Ffree,
		BlockSize:   uint64(st.Bsize),
		Blocks:      st.Blocks,
		BlocksFree:  st.Bfree,
		BlocksAvail: st.Bavail,
	}, nil
}
