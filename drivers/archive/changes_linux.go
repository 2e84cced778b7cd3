package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
)

// Changes compares the full tree layer with the full tree parent ("" for
// none) and lists what changed, parents before children. A file counts
// as changed when its type, mode, owner, device, size, modification time,
// symlink target or xattrs differ; a directory when its type, mode, owner
// or xattrs differ, or when anything below it changed, so that applying
// the changes restores its permissions too. Deleted paths are listed, not
// what was below them.
func Changes(layer, parent string) ([]Change, error) {
	if err := checkDir(layer); err != nil {
		return nil, fmt.Errorf("compare layers: %w", err)
	}
	if parent != "" {
		if err := checkDir(parent); err != nil {
			return nil, fmt.Errorf("compare layers: %w", err)
		}
	}
	var out []Change
	if err := compareDir(layer, parent, ".", &out); err != nil {
		return nil, fmt.Errorf("compare %s with %s: %w", layer, parent, err)
	}
	return out, nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// compareDir appends the changes below rel; parent is "" when the parent
// has nothing at rel (everything is added).
func compareDir(layer, parent, rel string, out *[]Change) error {
	names, err := readNames(filepath.Join(layer, rel))
	if err != nil {
		return err
	}
	inLayer := map[string]bool{}
	for _, n := range names {
		inLayer[n] = true
	}
	if parent != "" {
		pnames, err := readNames(filepath.Join(parent, rel))
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR) {
			return err
		}
		for _, n := range pnames {
			if !inLayer[n] {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	for _, n := range names {
		childRel := path.Join(rel, n)
		lpath := filepath.Join(layer, childRel)
		if !inLayer[n] {
			*out = append(*out, Change{Path: childRel, Kind: ChangeDelete})
			continue
		}
		var lst, pst unix.Stat_t
		if err := unix.Lstat(lpath, &lst); err != nil {
			return &os.PathError{Op: "lstat", Path: lpath, Err: err}
		}
		isDir := lst.Mode&unix.S_IFMT == unix.S_IFDIR
		inParent := false
		if parent != "" {
			ppath := filepath.Join(parent, childRel)
			if err := unix.Lstat(ppath, &pst); err == nil {
				inParent = true
			} else if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
				return &os.PathError{Op: "lstat", Path: ppath, Err: err}
			}
		}
		if !inParent {
			*out = append(*out, Change{Path: childRel, Kind: ChangeAdd})
			if isDir {
				if err := compareDir(layer, "", childRel, out); err != nil {
					return err
				}
			}
			continue
		}
		sameType := lst.Mode&unix.S_IFMT == pst.Mode&unix.S_IFMT
		if !isDir || !sameType {
			changed, err := fileChanged(lpath, filepath.Join(parent, childRel), &lst, &pst)
			if err != nil {
				return err
			}
			if changed {
				*out = append(*out, Change{Path: childRel, Kind: ChangeModify})
				if isDir {
					// Was something else: all below is new.
					if err := compareDir(layer, "", childRel, out); err != nil {
						return err
					}
				}
			}
			continue
		}
		at := len(*out)
		if err := compareDir(layer, parent, childRel, out); err != nil {
			return err
		}
		changed, err := metaChanged(lpath, filepath.Join(parent, childRel), &lst, &pst)
		if err != nil {
			return err
		}
		if changed || len(*out) > at {
			*out = append(*out, Change{})
			copy((*out)[at+1:], (*out)[at:])
			(*out)[at] = Change{Path: childRel, Kind: ChangeModify}
		}
	}
	return nil
}

// metaChanged compares what a directory and a file have in common.
func metaChanged(lpath, ppath string, l, p *unix.Stat_t) (bool, error) {
	if l.Mode != p.Mode || l.Uid != p.Uid || l.Gid != p.Gid {
		return true, nil
	}
	lx, err := listXattrs(lpath)
	if err != nil {
		return false, err
	}
	px, err := listXattrs(ppath)
	if err != nil {
		return false, err
	}
	return !sameXattrs(lx, px), nil
}

func fileChanged(lpath, ppath string, l, p *unix.Stat_t) (bool, error) {
	if l.Dev == p.Dev && l.Ino == p.Ino {
		return false, nil // the same inode: a hard-linked tree
	}
	if l.Mode&unix.S_IFMT != p.Mode&unix.S_IFMT || l.Rdev != p.Rdev || l.Size != p.Size || !sameTime(l.Mtim, p.Mtim) {
		return true, nil
	}
	if l.Mode&unix.S_IFMT == unix.S_IFLNK {
		lt, err := os.Readlink(lpath)
		if err != nil {
			return false, err
		}
		pt, err := os.Readlink(ppath)
		if err != nil {
			return false, err
		}
		if lt != pt {
			return true, nil
		}
	}
	return metaChanged(lpath, ppath, l, p)
}

// sameTime treats a time with no nanoseconds as equal to any time in the
// same second: layers unpacked from tar streams without sub-second times
// must not look changed against a copy that has them.
func sameTime(a, b unix.Timespec) bool {
	return a.Sec == b.Sec && (a.Nsec == b.Nsec || a.Nsec == 0 || b.Nsec == 0)
}
