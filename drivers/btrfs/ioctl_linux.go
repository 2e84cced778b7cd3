package btrfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// From include/uapi/linux/btrfs.h and btrfs_tree.h.
const (
	ioctlMagic    = 0x94
	pathNameMax   = 4087
	subvolNameMax = 4039
	// firstFreeObjectID is the inode number of every subvolume's root
	// directory: how a subvolume is told from a plain directory.
	firstFreeObjectID = 256
	// superMagic is statfs f_type of btrfs.
	superMagic = 0x9123683E
)

// volArgs is struct btrfs_ioctl_vol_args (4096 bytes).
type volArgs struct {
	fd   int64
	name [pathNameMax + 1]byte
}

// volArgsV2 is struct btrfs_ioctl_vol_args_v2 (4096 bytes): the union
// of size/qgroup_inherit with unused[4] is 32 bytes, and the name union
// is as large as the name.
type volArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	unused  [4]uint64
	name    [subvolNameMax + 1]byte
}

func iow(nr, size uintptr) uintptr {
	return iocWrite<<iocDirShift | size<<16 | ioctlMagic<<8 | nr
}

var (
	iocSubvolCreate = iow(14, unsafe.Sizeof(volArgs{}))
	iocSnapDestroy  = iow(15, unsafe.Sizeof(volArgs{}))
	iocSnapCreateV2 = iow(23, unsafe.Sizeof(volArgsV2{}))
)

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

func openDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

func setName(dst []byte, name string) error {
	if len(name) >= len(dst) || len(name) == 0 {
		return fmt.Errorf("subvolume name %q: want 1 to %d bytes", name, len(dst)-1)
	}
	copy(dst, name)
	return nil
}

// subvolCreate makes an empty subvolume dir/name.
func subvolCreate(dir, name string) error {
	var args volArgs
	if err := setName(args.name[:], name); err != nil {
		return err
	}
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := ioctl(fd, iocSubvolCreate, unsafe.Pointer(&args)); err != nil {
		return &os.PathError{Op: "create btrfs subvolume", Path: filepath.Join(dir, name), Err: err}
	}
	return nil
}

// snapshot makes dir/name a writable snapshot of the subvolume src.
func snapshot(src, dir, name string) error {
	var args volArgsV2
	if err := setName(args.name[:], name); err != nil {
		return err
	}
	sfd, err := openDir(src)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	dfd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	args.fd = int64(sfd)
	err = ioctl(dfd, iocSnapCreateV2, unsafe.Pointer(&args))
	runtime.KeepAlive(sfd)
	if err != nil {
		return &os.PathError{Op: "snapshot btrfs subvolume " + src + " as", Path: filepath.Join(dir, name), Err: err}
	}
	return nil
}

// isSubvolume reports whether p is the root of a subvolume.
func isSubvolume(p string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return false, &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Ino == firstFreeObjectID, nil
}

// subvolDestroy destroys the subvolume dir/name and every subvolume
// nested in it. A snapshot destroy fails with ENOTEMPTY while a nested
// subvolume remains, so those go first, each with its own nested ones.
func subvolDestroy(dir, name string) error {
	root := filepath.Join(dir, name)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != root {
				return nil // gone with a subvolume destroyed just before
			}
			return err
		}
		if p == root || !d.IsDir() {
			return nil
		}
		sub, err := isSubvolume(p)
		if err != nil || !sub {
			return err
		}
		if err := subvolDestroy(filepath.Dir(p), d.Name()); err != nil {
			return err
		}
		return filepath.SkipDir
	})
	if err != nil {
		return fmt.Errorf("destroy subvolumes nested in %s: %w", root, err)
	}
	var args volArgs
	if err := setName(args.name[:], name); err != nil {
		return err
	}
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := ioctl(fd, iocSnapDestroy, unsafe.Pointer(&args)); err != nil {
		return &os.PathError{Op: "destroy btrfs subvolume", Path: root, Err: err}
	}
	return nil
}
