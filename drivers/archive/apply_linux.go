package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Apply unpacks the tar stream r into dest and returns the bytes of file
// content written. Whiteouts in the stream (aufs form) become opts'
// on-disk form; see WhiteoutFormat.
func Apply(dest string, r io.Reader, opts ApplyOptions) (int64, error) {
	a, err := newApplier(dest, opts)
	if err != nil {
		return 0, fmt.Errorf("apply layer to %s: %w", dest, err)
	}
	defer a.close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.size, fmt.Errorf("apply layer to %s: read tar stream: %w", dest, err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return a.size, fmt.Errorf("apply layer to %s: %w", dest, err)
		}
	}
	if err := a.finish(); err != nil {
		return a.size, fmt.Errorf("apply layer to %s: %w", dest, err)
	}
	return a.size, nil
}

type dirTimes struct {
	rel          string
	atime, mtime time.Time
}

type applier struct {
	dest string
	root int
	opts ApplyOptions
	size int64
	// unpacked holds every path this stream created, so that an opaque
	// marker in a full tree deletes only what the layers below had.
	unpacked map[string]bool
	// dirs get their times last: creating entries inside a directory
	// changes its mtime.
	dirs []dirTimes
	// stash holds the regular files of an aufs .wh..wh.plnk directory,
	// which hard links in the stream may point at; it lives inside dest
	// so that linking to it works, and is removed at the end.
	stash string
	buf   []byte
}

func newApplier(dest string, opts ApplyOptions) (*applier, error) {
	switch opts.Whiteouts {
	case WhiteoutNone, WhiteoutAUFS, WhiteoutOverlay:
	default:
		return nil, fmt.Errorf("unknown whiteout format %v", opts.Whiteouts)
	}
	root, err := unix.Open(dest, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dest, Err: err}
	}
	return &applier{dest: dest, root: root, opts: opts, unpacked: map[string]bool{}}, nil
}

func (a *applier) close() {
	if a.stash != "" {
		_ = removeAt(a.root, a.stash)
		a.stash = ""
	}
	if a.root >= 0 {
		unix.Close(a.root)
		a.root = -1
	}
}

// cleanName checks an entry's name and returns it relative to the layer
// root ("." for the root itself).
func cleanName(name string) (string, error) {
	if name == "" {
		return "", &UnsafePathError{Entry: name, Reason: "empty name"}
	}
	if strings.HasPrefix(name, "/") {
		return "", &UnsafePathError{Entry: name, Reason: "absolute path"}
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", &UnsafePathError{Entry: name, Reason: "NUL byte in name"}
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", &UnsafePathError{Entry: name, Reason: "it climbs out of the layer with \"..\""}
	}
	return c, nil
}

func (a *applier) entry(hdr *tar.Header, body io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "." {
		// The root's own entry ("./"): the layer root belongs to the
		// driver, as in Docker.
		return nil
	}
	dir, base := path.Dir(rel), path.Base(rel)

	if a.opts.Whiteouts != WhiteoutAUFS {
		if rel == WhiteoutLinkDir || strings.HasPrefix(rel, WhiteoutLinkDir+"/") {
			return a.stashLinkTarget(hdr, rel, body)
		}
		if base == WhiteoutOpaqueDir {
			return a.opaque(dir, hdr)
		}
		if strings.HasPrefix(base, WhiteoutMetaPrefix) {
			// aufs's own bookkeeping (.wh..wh.aufs, .wh..wh.orph).
			return nil
		}
		if strings.HasPrefix(base, WhiteoutPrefix) {
			name := base[len(WhiteoutPrefix):]
			if name == "" || name == "." || name == ".." {
				return &UnsafePathError{Entry: hdr.Name, Reason: "whiteout of no name"}
			}
			return a.whiteout(dir, name, hdr)
		}
	}

	pfd, err := openBeneath(a.root, dir, hdr.Name, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	a.markUnpacked(rel)

	var st unix.Stat_t
	exists := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
	isDir := exists && st.Mode&unix.S_IFMT == unix.S_IFDIR
	if exists && !(isDir && hdr.Typeflag == tar.TypeDir) {
		// Replace, never write into: the old inode may be shared with
		// the parent layer through a hard link.
		if err := removeAt(pfd, base); err != nil {
			return fmt.Errorf("replace %s: %w", rel, err)
		}
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if !isDir {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return &os.PathError{Op: "mkdir", Path: rel, Err: err}
			}
		}
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		if err := a.writeFile(pfd, base, rel, body); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return &os.PathError{Op: "symlink", Path: rel, Err: err}
		}
	case tar.TypeLink:
		// A hard link carries no metadata of its own: its target was
		// made by this stream and has it already, and setting it again
		// through the link could touch an inode of the parent layer.
		return a.link(pfd, base, rel, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		if err := unix.Mknodat(pfd, base, mode|0o600, dev); err != nil {
			return &os.PathError{Op: "mknod", Path: rel, Err: err}
		}
	default:
		return fmt.Errorf("tar entry %q: unsupported type %q", hdr.Name, hdr.Typeflag)
	}
	return a.setMeta(pfd, base, rel, hdr)
}

func (a *applier) markUnpacked(rel string) {
	for p := rel; p != "."; p = path.Dir(p) {
		if a.unpacked[p] {
			break
		}
		a.unpacked[p] = true
	}
}

func (a *applier) writeFile(pfd int, base, rel string, body io.Reader) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: rel, Err: err}
	}
	f := os.NewFile(uintptr(fd), rel)
	if a.buf == nil {
		a.buf = make([]byte, 128<<10)
	}
	n, err := io.CopyBuffer(f, body, a.buf)
	a.size += n
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", rel, err)
	}
	return nil
}

func (a *applier) link(pfd int, base, rel string, hdr *tar.Header) error {
	if hdr.Linkname == "" {
		return fmt.Errorf("tar entry %q: hard link without a target", hdr.Name)
	}
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return &UnsafePathError{Entry: hdr.Name, Reason: "hard link target " + err.(*UnsafePathError).Reason}
	}
	if target == "." {
		return &UnsafePathError{Entry: hdr.Name, Reason: "hard link to the layer root"}
	}
	if target == rel {
		return fmt.Errorf("tar entry %q: hard link to itself", hdr.Name)
	}
	tdir, tbase := path.Dir(target), path.Base(target)
	tfd := -1
	if strings.HasPrefix(target, WhiteoutLinkDir+"/") && a.opts.Whiteouts != WhiteoutAUFS {
		if a.stash == "" {
			return fmt.Errorf("tar entry %q: hard link to %s, which the stream did not carry", hdr.Name, hdr.Linkname)
		}
		tfd, err = openBeneath(a.root, a.stash, hdr.Name, false)
		tbase = path.Base(target)
	} else {
		tfd, err = openBeneath(a.root, tdir, hdr.Name, false)
	}
	if err != nil {
		return fmt.Errorf("hard link %s to %s: %w", rel, hdr.Linkname, err)
	}
	defer unix.Close(tfd)
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return &os.LinkError{Op: "link", Old: hdr.Linkname, New: rel, Err: err}
	}
	return nil
}

// setMeta gives an entry its owner, mode, xattrs and times. The order
// matters: chown clears setuid bits and security.capability, so both come
// after it.
func (a *applier) setMeta(pfd int, base, rel string, hdr *tar.Header) error {
	isLink := hdr.Typeflag == tar.TypeSymlink
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "chown", Path: rel, Err: err}
	}
	if !isLink {
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return &os.PathError{Op: "chmod", Path: rel, Err: err}
		}
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok || strings.HasPrefix(name, overlayXattrPrefix) {
			continue
		}
		if err := unix.Lsetxattr(fdPath(pfd, base), name, []byte(v), 0); err != nil {
			return fmt.Errorf("set xattr %s on %s: %w", name, rel, err)
		}
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirs = append(a.dirs, dirTimes{rel: rel, atime: atime, mtime: hdr.ModTime})
		return nil
	}
	return setTimes(pfd, base, rel, atime, hdr.ModTime)
}

func setTimes(pfd int, base, rel string, atime, mtime time.Time) error {
	ts := []unix.Timespec{timespec(atime), timespec(mtime)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "set times", Path: rel, Err: err}
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Sec: 0, Nsec: 0}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// whiteout records the deletion of dir/name in the layer's own form.
func (a *applier) whiteout(dir, name string, hdr *tar.Header) error {
	switch a.opts.Whiteouts {
	case WhiteoutNone:
		pfd, err := openBeneath(a.root, dir, hdr.Name, false)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil // nothing below to delete
		}
		if err != nil {
			return err
		}
		defer unix.Close(pfd)
		if err := removeAt(pfd, name); err != nil {
			return fmt.Errorf("delete %s for whiteout %s: %w", path.Join(dir, name), hdr.Name, err)
		}
		return nil
	case WhiteoutOverlay:
		pfd, err := openBeneath(a.root, dir, hdr.Name, true)
		if err != nil {
			return err
		}
		defer unix.Close(pfd)
		rel := path.Join(dir, name)
		a.markUnpacked(rel)
		if err := removeAt(pfd, name); err != nil {
			return fmt.Errorf("replace %s with a whiteout: %w", rel, err)
		}
		if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
			return &os.PathError{Op: "mknod whiteout", Path: rel, Err: err}
		}
		if err := unix.Fchownat(pfd, name, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "chown", Path: rel, Err: err}
		}
		return setTimes(pfd, name, rel, hdr.ModTime, hdr.ModTime)
	}
	return nil
}

// opaque handles a ".wh..wh..opq" marker in dir.
func (a *applier) opaque(dir string, hdr *tar.Header) error {
	switch a.opts.Whiteouts {
	case WhiteoutNone:
		fd, err := openBeneath(a.root, dir, hdr.Name, false)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return a.removeNotUnpacked(fd, dir)
	case WhiteoutOverlay:
		pfd, err := openBeneath(a.root, dir, hdr.Name, true)
		if err != nil {
			return err
		}
		defer unix.Close(pfd)
		a.markUnpacked(dir)
		// Open for real (not O_PATH): fsetxattr needs it, and the
		// directory itself is the target, not a name inside it.
		fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: dir, Err: err}
		}
		defer unix.Close(fd)
		if err := unix.Fsetxattr(fd, OverlayOpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark %s opaque (%s): %w", dir, OverlayOpaqueXattr, err)
		}
	}
	return nil
}

// removeNotUnpacked empties dir (open as dirfd) of everything this stream
// did not create, which is what an opaque marker means in a full tree.
func (a *applier) removeNotUnpacked(dirfd int, dir string) error {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, n := range names {
		rel := path.Join(dir, n)
		if !a.unpacked[rel] {
			if err := removeAt(fd, n); err != nil {
				return fmt.Errorf("empty opaque directory %s: %w", dir, err)
			}
			continue
		}
		var st unix.Stat_t
		if unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			sub, err := unix.Openat(fd, n, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return &os.PathError{Op: "open", Path: rel, Err: err}
			}
			err = a.removeNotUnpacked(sub, rel)
			unix.Close(sub)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// stashLinkTarget keeps a regular file of an aufs .wh..wh.plnk directory
// aside so that hard links in the stream can point at it; the directory
// itself is aufs bookkeeping and does not become part of the layer.
func (a *applier) stashLinkTarget(hdr *tar.Header, rel string, body io.Reader) error {
	if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
		return nil
	}
	if path.Dir(rel) != WhiteoutLinkDir {
		return nil
	}
	if a.stash == "" {
		name := fmt.Sprintf(".graphprobe-plnk-%d", time.Now().UnixNano())
		if err := unix.Mkdirat(a.root, name, 0o700); err != nil {
			return &os.PathError{Op: "mkdir", Path: name, Err: err}
		}
		a.stash = name
	}
	sfd, err := openBeneath(a.root, a.stash, hdr.Name, false)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	base := path.Base(rel)
	if err := a.writeFile(sfd, base, rel, body); err != nil {
		return err
	}
	return a.setMeta(sfd, base, rel, hdr)
}

// finish sets directory times, now that nothing more is written into
// them.
func (a *applier) finish() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		pfd, err := openBeneath(a.root, path.Dir(d.rel), d.rel, false)
		if errors.Is(err, unix.ENOENT) {
			continue // deleted by a later entry
		}
		if err != nil {
			return err
		}
		err = setTimes(pfd, path.Base(d.rel), d.rel, d.atime, d.mtime)
		unix.Close(pfd)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	return nil
}
