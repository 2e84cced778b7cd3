package fscopy

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// content creates dst and fills it with src's data, keeping holes.
func (c *copier) content(src, dst string, st *unix.Stat_t) (err error) {
	in, err := openNoatime(src, unix.O_RDONLY)
	if err != nil {
		return &os.PathError{Op: "open", Path: src, Err: err}
	}
	defer unix.Close(in)
	// 0600 until meta sets the real mode: a 0444 or 0000 source must not
	// stop a non-root caller writing the data.
	out, err := unix.Open(dst, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: dst, Err: err}
	}
	defer func() {
		if cerr := unix.Close(out); cerr != nil && err == nil {
			err = &os.PathError{Op: "close", Path: dst, Err: cerr}
		}
	}()
	if st.Size == 0 {
		return nil
	}
	if c.tryClone {
		// FICLONE shares extents: no data moves and holes stay holes.
		cerr := unix.IoctlFileClone(out, in)
		if cerr == nil {
			return nil
		}
		switch cerr {
		case unix.EOPNOTSUPP, unix.ENOTTY, unix.EXDEV, unix.ENOSYS, unix.EBADF:
			// Not this filesystem (or not this pair): stop asking.
			c.tryClone = false
		}
		// Any other refusal is about this file (btrfs refuses mixed
		// nodatasum files with EINVAL); copy its data instead.
		if err := unix.Ftruncate(out, 0); err != nil {
			return &os.PathError{Op: "truncate", Path: dst, Err: err}
		}
	}
	if err := c.data(in, out, st.Size, st.Blocks*512 < st.Size); err != nil {
		return &os.PathError{Op: "copy data", Path: dst, Err: err}
	}
	return nil
}

// data copies size bytes from in to out. When the source may be sparse
// (fewer blocks allocated than its size says), only its data segments
// are copied into a destination already truncated to the full size, so
// holes stay holes whatever copy_file_range does on this filesystem.
func (c *copier) data(in, out int, size int64, sparse bool) error {
	if !sparse {
		return c.segment(in, out, 0, size)
	}
	if err := unix.Ftruncate(out, size); err != nil {
		return err
	}
	for off := int64(0); off < size; {
		start, err := unix.Seek(in, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			return nil // only a hole remains
		}
		if err == unix.EINVAL {
			// No SEEK_DATA here: the rest is data as far as we know.
			return c.segment(in, out, off, size)
		}
		if err != nil {
			return err
		}
		end, err := unix.Seek(in, start, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		end = min(end, size)
		if err := c.segment(in, out, start, end); err != nil {
			return err
		}
		off = end
	}
	return nil
}

// segment copies [off, end) at the same offsets.
func (c *copier) segment(in, out int, off, end int64) error {
	for off < end {
		if c.tryCopyRange {
			roff, woff := off, off
			n, err := unix.CopyFileRange(in, &roff, out, &woff, int(min(end-off, 1<<30)), 0)
			if err == nil {
				if n == 0 {
					return nil // the source shrank under us
				}
				off += int64(n)
				continue
			}
			if !errors.Is(err, unix.EXDEV) && !errors.Is(err, unix.ENOSYS) &&
				!errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) {
				return err
			}
			// Across filesystems (kernels since 5.19 refuse that
			// between different types) or not supported: read and
			// write for the rest of the copy.
			c.tryCopyRange = false
		}
		if c.buf == nil {
			c.buf = make([]byte, 1<<20)
		}
		n, err := unix.Pread(in, c.buf[:min(end-off, int64(len(c.buf)))], off)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		if n == 0 {
			return nil
		}
		for w := 0; w < n; {
			m, err := unix.Pwrite(out, c.buf[w:n], off+int64(w))
			if err != nil {
				if err == unix.EINTR {
					continue
				}
				return err
			}
			w += m
		}
		off += int64(n)
	}
	return nil
}
