package fscopy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// fileID names an inode, to find the other names of a hard-linked file.
type fileID struct{ dev, ino uint64 }

type copier struct {
	opts Options
	// links maps a multiply-linked source inode to its first copy.
	links map[fileID]string
	// root is the destination root, so that a walk that reaches it (dst
	// inside src, perhaps through a bind mount) stops instead of recursing
	// for ever.
	root fileID
	// The kernel fast paths are given up for the rest of the copy once
	// they say they cannot work here (another filesystem, no support).
	tryClone     bool
	tryCopyRange bool
	buf          []byte
}

func copyTree(src, dst string, opts Options) error {
	if opts.Mode != Content && opts.Mode != Hardlink {
		return fmt.Errorf("copy %s to %s: unknown mode %d", src, dst, opts.Mode)
	}
	if err := copyRoot(src, dst, opts); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

func copyRoot(src, dst string, opts Options) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return &os.PathError{Op: "copy", Path: src, Err: unix.ENOTDIR}
	}
	if err := prepareRoot(dst); err != nil {
		return err
	}
	var dt unix.Stat_t
	if err := unix.Lstat(dst, &dt); err != nil {
		return &os.PathError{Op: "lstat", Path: dst, Err: err}
	}
	c := &copier{
		opts:         opts,
		links:        map[fileID]string{},
		root:         fileID{uint64(dt.Dev), uint64(dt.Ino)},
		tryClone:     true,
		tryCopyRange: true,
	}
	return c.dir(src, dst, &st)
}

// prepareRoot makes dst, or checks that an existing dst is an empty
// directory: copying over existing files would merge two trees silently.
func prepareRoot(dst string) error {
	err := unix.Mkdir(dst, 0o700)
	if err == nil {
		return nil
	}
	if err != unix.EEXIST {
		return &os.PathError{Op: "mkdir", Path: dst, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Lstat(dst, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: dst, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("destination %s exists and is not a directory", dst)
	}
	names, err := readNames(dst, 1)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("destination %s is not empty (found %q): copy into a new or empty directory", dst, names[0])
	}
	return nil
}

// dir copies the directory src (already lstat'ed) into dst, which exists,
// then gives dst src's metadata: after the contents, because adding
// entries changes a directory's mtime, and because a read-only mode would
// stop the copy writing into it.
func (c *copier) dir(src, dst string, st *unix.Stat_t) error {
	if (fileID{uint64(st.Dev), uint64(st.Ino)}) == c.root {
		return fmt.Errorf("destination is inside the source (reached it at %s)", src)
	}
	names, err := readNames(src, -1)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := c.entry(filepath.Join(src, name), filepath.Join(dst, name)); err != nil {
			return err
		}
	}
	return c.meta(src, dst, st)
}

func (c *copier) entry(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdir(dst, 0o700); err != nil {
			return &os.PathError{Op: "mkdir", Path: dst, Err: err}
		}
		return c.dir(src, dst, &st)
	case unix.S_IFREG:
		return c.regular(src, dst, &st)
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := unix.Symlink(target, dst); err != nil {
			return &os.PathError{Op: "symlink", Path: dst, Err: err}
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		// mknod makes all four. A socket inode is only a name (nothing
		// listens on a copied socket, as after a reboot), and an overlay
		// whiteout is the character device 0/0, copied like any other.
		// The permission bits are fixed by meta, past the umask.
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: dst, Err: err}
		}
	default:
		return fmt.Errorf("copy %s: unknown file type %#o", src, st.Mode&unix.S_IFMT)
	}
	return c.meta(src, dst, &st)
}

func (c *copier) regular(src, dst string, st *unix.Stat_t) error {
	if c.opts.Mode == Hardlink {
		// The link shares the source inode and with it all metadata, and
		// links within the source stay links: both names point at the same
		// source inode.
		if err := unix.Link(src, dst); err != nil {
			err = &os.LinkError{Op: "link", Old: src, New: dst, Err: err}
			if errors.Is(err, unix.EXDEV) {
				return fmt.Errorf("%w: hard-link copies need source and destination on one filesystem", err)
			}
			return err
		}
		return nil
	}
	id := fileID{uint64(st.Dev), uint64(st.Ino)}
	if st.Nlink > 1 {
		if first, ok := c.links[id]; ok {
			if err := unix.Link(first, dst); err != nil {
				return &os.LinkError{Op: "link", Old: first, New: dst, Err: err}
			}
			return nil
		}
	}
	if err := c.content(src, dst, st); err != nil {
		return err
	}
	if st.Nlink > 1 {
		c.links[id] = dst
	}
	return c.meta(src, dst, st)
}

// meta gives dst src's owner, xattrs, mode and times, in that order:
// chown clears setuid/setgid bits and security.capability, so the mode
// and the xattrs come after it; anything that changes the inode would
// change its times, so they come last.
func (c *copier) meta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "lchown", Path: dst, Err: err}
	}
	if err := c.xattrs(src, dst); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// Symlinks have no mode of their own on Linux.
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: dst, Err: err}
	}
	return nil
}

// xattrs copies every extended attribute of src to dst without following
// symlinks: user.*, trusted.* (overlay's opaque and redirect markers),
// security.* (file capabilities, SELinux labels) and system.* (ACLs).
func (c *copier) xattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			// A source filesystem without xattrs has none to copy.
			return nil
		}
		return err
	}
	for _, name := range names {
		val, err := getXattr(src, name)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue // removed since the listing
			}
			return err
		}
		if err := unix.Lsetxattr(dst, name, val, 0); err != nil {
			if c.opts.BestEffortXattrs && (err == unix.EOPNOTSUPP || err == unix.EPERM) {
				continue
			}
			return &os.PathError{Op: "lsetxattr " + name, Path: dst, Err: err}
		}
	}
	return nil
}

func listXattrs(path string) ([]string, error) {
	size := 256
	for {
		buf := make([]byte, size)
		n, err := unix.Llistxattr(path, buf)
		if err == unix.ERANGE {
			if n, err = unix.Llistxattr(path, nil); err != nil {
				return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
			}
			size = max(n, 2*size)
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
		}
		var names []string
		start := 0
		for i := 0; i < n; i++ {
			if buf[i] == 0 {
				if i > start {
					names = append(names, string(buf[start:i]))
				}
				start = i + 1
			}
		}
		return names, nil
	}
}

func getXattr(path, name string) ([]byte, error) {
	size := 256
	for {
		buf := make([]byte, size)
		n, err := unix.Lgetxattr(path, name, buf)
		if err == unix.ERANGE {
			if n, err = unix.Lgetxattr(path, name, nil); err != nil {
				return nil, &os.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
			}
			size = max(n, 2*size)
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "lgetxattr " + name, Path: path, Err: err}
		}
		return buf[:n], nil
	}
}

// readNames lists a directory's entries, at most n of them (n < 0: all).
// The directory is closed before the caller recurses, so that a deep tree
// does not hold one descriptor per level.
func readNames(dir string, n int) ([]string, error) {
	fd, err := openNoatime(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	names, err := f.Readdirnames(n)
	if err != nil && !(err == io.EOF && n > 0) {
		return nil, err
	}
	return names, nil
}

// openNoatime opens without touching the source's atime where the kernel
// allows it (owner or CAP_FOWNER), so that a copy does not change what it
// copies; others fall back to a plain open.
func openNoatime(path string, flags int) (int, error) {
	fd, err := unix.Open(path, flags|unix.O_NOATIME|unix.O_CLOEXEC, 0)
	if err == unix.EPERM {
		fd, err = unix.Open(path, flags|unix.O_CLOEXEC, 0)
	}
	return fd, err
}
