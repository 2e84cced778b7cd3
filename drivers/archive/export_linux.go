package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/graphprobe/graphprobe/drivers/internal/nsthread"
	"golang.org/x/sys/unix"
)

// Export tars the directory dir (a layer's own changes, such as overlay's
// diff/ or aufs's diff/<id>, or a whole tree) with aufs-form whiteouts.
//
// The stream is produced while it is read; closing it early stops the
// work. It is produced on a thread in the caller's mount namespace, so a
// dir below a mount made in a private namespace exports what the caller
// sees.
func Export(dir string, opts ExportOptions) (io.ReadCloser, error) {
	switch opts.Whiteouts {
	case WhiteoutNone, WhiteoutAUFS, WhiteoutOverlay:
	default:
		return nil, fmt.Errorf("export %s: unknown whiteout format %v", dir, opts.Whiteouts)
	}
	if err := checkDir(dir); err != nil {
		return nil, fmt.Errorf("export %s: %w", dir, err)
	}
	return stream("export "+dir, func(w *writer) error {
		return w.walk(dir, ".", opts.Whiteouts)
	})
}

// ExportChanges compares the full tree layer with the full tree parent
// (parent "" for a base layer) and tars what changed, deleted paths as
// aufs-form whiteouts: the naive diff, for drivers whose layers are full
// trees or are seen through a mount.
func ExportChanges(layer, parent string) (io.ReadCloser, error) {
	changes, err := Changes(layer, parent)
	if err != nil {
		return nil, err
	}
	return stream("export changes of "+layer, func(w *writer) error {
		for _, c := range changes {
			if c.Kind == ChangeDelete {
				if err := w.whiteoutFor(layer, c.Path); err != nil {
					return err
				}
				continue
			}
			if err := w.add(filepath.Join(layer, c.Path), c.Path, WhiteoutNone); err != nil {
				return err
			}
		}
		return nil
	})
}

func checkDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return &os.PathError{Op: "export", Path: dir, Err: unix.ENOTDIR}
	}
	return nil
}

// stream runs fn on a thread of the caller's mount namespace, writing a
// tar stream into a pipe whose reading end it returns.
func stream(op string, fn func(w *writer) error) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	err := nsthread.Go(func() {
		w := &writer{tw: tar.NewWriter(pw), links: map[fileKey]string{}}
		err := fn(w)
		if err == nil {
			err = w.tw.Close()
		}
		if err != nil && !errors.Is(err, io.ErrClosedPipe) {
			err = fmt.Errorf("%s: %w", op, err)
		}
		pw.CloseWithError(err)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return pr, nil
}

type fileKey struct{ dev, ino uint64 }

type writer struct {
	tw *tar.Writer
	// links maps a multiply-linked inode to the first name it was written
	// under, so that its other names become hard links in the stream.
	links map[fileKey]string
	buf   []byte
}

// walk writes the entries below full (named rel in the stream) in
// lexical order, parents before children.
func (w *writer) walk(full, rel string, format WhiteoutFormat) error {
	entries, err := os.ReadDir(full)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		childRel := path.Join(rel, name)
		if format == WhiteoutAUFS && strings.HasPrefix(name, WhiteoutMetaPrefix) && name != WhiteoutOpaqueDir {
			continue // aufs bookkeeping: .wh..wh.aufs, .wh..wh.plnk, .wh..wh.orph
		}
		childFull := filepath.Join(full, name)
		if err := w.add(childFull, childRel, format); err != nil {
			return err
		}
		if e.IsDir() {
			if err := w.walk(childFull, childRel, format); err != nil {
				return err
			}
		}
	}
	return nil
}

// add writes one entry (not its children).
func (w *writer) add(full, rel string, format WhiteoutFormat) error {
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: full, Err: err}
	}
	hdr := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
		if st.Nlink > 1 {
			key := fileKey{uint64(st.Dev), st.Ino}
			if first, ok := w.links[key]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				hdr.Size = 0
			} else {
				w.links[key] = rel
			}
		}
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		target, err := os.Readlink(full)
		if err != nil {
			return err
		}
		hdr.Linkname = target
	case unix.S_IFCHR:
		if format == WhiteoutOverlay && st.Rdev == 0 {
			return w.writeWhiteout(path.Join(path.Dir(rel), WhiteoutPrefix+path.Base(rel)), &st)
		}
		hdr.Typeflag = tar.TypeChar
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets do not go into layers
	}
	xattrs, err := listXattrs(full)
	if err != nil {
		return err
	}
	for _, k := range sortedKeys(xattrs) {
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[paxXattrPrefix+k] = xattrs[k]
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		if err := w.copyFile(full, hdr.Size); err != nil {
			return err
		}
	}
	if hdr.Typeflag == tar.TypeDir && format == WhiteoutOverlay {
		opaque, err := isOpaque(full)
		if err != nil {
			return err
		}
		if opaque {
			return w.writeWhiteout(path.Join(rel, WhiteoutOpaqueDir), &st)
		}
	}
	return nil
}

// writeWhiteout writes an aufs-form whiteout carrying the owner, mode and
// time of what it stands for (the overlay whiteout device, or the opaque
// directory).
func (w *writer) writeWhiteout(name string, st *unix.Stat_t) error {
	return w.tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     int64(st.Mode & 0o777),
		Uid:      int(st.Uid),
		Gid:      int(st.Gid),
		ModTime:  time.Unix(st.Mtim.Unix()),
		Format:   tar.FormatPAX,
	})
}

// whiteoutFor writes the whiteout of rel, deleted in layer; it takes the
// owner and time of the directory that held it.
func (w *writer) whiteoutFor(layer, rel string) error {
	var st unix.Stat_t
	dir := filepath.Join(layer, path.Dir(rel))
	if err := unix.Lstat(dir, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	st.Mode = 0
	return w.writeWhiteout(path.Join(path.Dir(rel), WhiteoutPrefix+path.Base(rel)), &st)
}

func (w *writer) copyFile(full string, size int64) error {
	f, err := os.OpenFile(full, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if w.buf == nil {
		w.buf = make([]byte, 128<<10)
	}
	n, err := io.CopyBuffer(w.tw, io.LimitReader(f, size), w.buf)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s shrank from %d to %d bytes while it was exported", full, size, n)
	}
	return nil
}
