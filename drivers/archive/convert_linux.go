package archive

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ConvertWhiteouts rewrites the whiteouts of the layer directory dir from
// one on-disk form to the other: aufs's ".wh.<name>" files and
// ".wh..wh..opq" markers to overlay's 0/0 character devices and opaque
// xattrs, or back. Owners and times of the whiteouts are carried over, and
// the directories that held them keep their modification times. aufs's
// own bookkeeping entries (.wh..wh.aufs, .wh..wh.plnk, .wh..wh.orph) have
// no overlay form and are removed when converting to overlay.
func ConvertWhiteouts(dir string, from, to WhiteoutFormat) error {
	var conv func(string) error
	switch {
	case from == to:
		return nil
	case from == WhiteoutAUFS && to == WhiteoutOverlay:
		conv = aufsToOverlay
	case from == WhiteoutOverlay && to == WhiteoutAUFS:
		conv = overlayToAUFS
	default:
		return fmt.Errorf("convert whiteouts in %s: no conversion from %v to %v", dir, from, to)
	}
	if err := checkDir(dir); err != nil {
		return fmt.Errorf("convert whiteouts: %w", err)
	}
	if err := convertTree(dir, conv); err != nil {
		return fmt.Errorf("convert whiteouts in %s from %v to %v: %w", dir, from, to, err)
	}
	return nil
}

// convertTree runs conv on every directory below (and including) dir,
// children first, and puts each directory's times back afterwards.
func convertTree(dir string, conv func(string) error) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := convertTree(filepath.Join(dir, e.Name()), conv); err != nil {
				return err
			}
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	if err := conv(dir); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dir, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "set times", Path: dir, Err: err}
	}
	return nil
}

// aufsToOverlay converts the entries of one directory.
func aufsToOverlay(dir string) error {
	names, err := readNames(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if !strings.HasPrefix(n, WhiteoutPrefix) {
			continue
		}
		p := filepath.Join(dir, n)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		switch {
		case n == WhiteoutOpaqueDir:
			if err := unix.Lsetxattr(dir, OverlayOpaqueXattr, []byte("y"), 0); err != nil {
				return fmt.Errorf("mark %s opaque (%s): %w", dir, OverlayOpaqueXattr, err)
			}
		case strings.HasPrefix(n, WhiteoutMetaPrefix):
			// aufs bookkeeping, removed below.
		default:
			target := filepath.Join(dir, n[len(WhiteoutPrefix):])
			if _, err := os.Lstat(target); err == nil {
				return fmt.Errorf("%s and its whiteout %s both exist; a layer cannot both have and delete a name", target, n)
			}
			if err := unix.Mknod(target, unix.S_IFCHR|(st.Mode&0o777), 0); err != nil {
				return &os.PathError{Op: "mknod whiteout", Path: target, Err: err}
			}
			if err := unix.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
				return &os.PathError{Op: "chown", Path: target, Err: err}
			}
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, target, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return &os.PathError{Op: "set times", Path: target, Err: err}
			}
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

func overlayToAUFS(dir string) error {
	names, err := readNames(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			continue
		}
		if err := unix.Unlink(p); err != nil {
			return &os.PathError{Op: "unlink", Path: p, Err: err}
		}
		if err := makeMarker(filepath.Join(dir, WhiteoutPrefix+n), &st); err != nil {
			return err
		}
	}
	opaque, err := isOpaque(dir)
	if err != nil {
		return err
	}
	if opaque {
		var st unix.Stat_t
		if err := unix.Lstat(dir, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: dir, Err: err}
		}
		if err := unix.Lremovexattr(dir, OverlayOpaqueXattr); err != nil && !errors.Is(err, unix.ENODATA) {
			return fmt.Errorf("remove %s from %s: %w", OverlayOpaqueXattr, dir, err)
		}
		if err := makeMarker(filepath.Join(dir, WhiteoutOpaqueDir), &st); err != nil {
			return err
		}
	}
	return nil
}

// makeMarker creates an empty aufs whiteout file with the owner, mode and
// times of st.
func makeMarker(p string, st *unix.Stat_t) error {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: p, Err: err}
	}
	unix.Close(fd)
	if err := unix.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "chown", Path: p, Err: err}
	}
	if err := unix.Chmod(p, st.Mode&0o777); err != nil {
		return &os.PathError{Op: "chmod", Path: p, Err: err}
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "set times", Path: p, Err: err}
	}
	return nil
}
