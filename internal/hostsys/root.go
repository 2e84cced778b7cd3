package hostsys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// Root is a host's file tree: the running system ("/") or a captured host
// unpacked in a directory. Paths are always given as on the host
// ("/etc/docker/daemon.json"); a captured host's symlinks are resolved as
// they would be on that host, so a planted link cannot make graphprobe read
// a file of the machine it runs on.
type Root struct {
	dir string
}

// NewRoot returns the tree at dir; "" and "/" are the running system.
func NewRoot(dir string) Root {
	if dir == "" {
		dir = "/"
	}
	return Root{dir: filepath.Clean(dir)}
}

// Live reports whether this is the running system.
func (r Root) Live() bool { return r.dir == "/" }

// Dir is the directory standing for "/" ("/" when live).
func (r Root) Dir() string { return r.dir }

// Path maps a host path into the tree, lexically: ".." never climbs out.
// It does not resolve symlinks; Open and Resolve do.
func (r Root) Path(p string) string {
	if r.Live() {
		return path.Clean("/" + p)
	}
	return filepath.Join(r.dir, path.Clean("/"+p))
}

// Confined refuses a captured host's path whose directories resolve outside
// the tree through a symlink. It guards what cannot go through Open (an
// lstat, a directory listing) and is Open's fallback where openat2 is
// missing.
func (r Root) Confined(p string) error {
	if r.Live() {
		return nil
	}
	dir := filepath.Dir(r.Path(p))
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // nothing there to escape through
		}
		return err
	}
	root, err := filepath.EvalSymlinks(r.dir)
	if err != nil {
		return err
	}
	if real != root && !strings.HasPrefix(real, root+string(filepath.Separator)) {
		return fmt.Errorf("%s: resolves outside the fixture host", p)
	}
	return nil
}

// DevNull is where Resolve stops: systemd masks a unit by linking it to
// /dev/null, and a captured host need not hold /dev.
const DevNull = "/dev/null"

// maxLinks is the kernel's limit on symlinks followed in one lookup.
const maxLinks = 40

// Resolve follows the symlinks of host path p inside the tree, as the
// kernel would with the tree as its root (an absolute target starts again
// at the tree's top, ".." stops there), and returns the resolved host path.
// Where openat2 answers "what is in this file", Resolve answers "which file
// is it": two names of one directory, or a link to DevNull, which it
// returns without looking for it.
func (r Root) Resolve(p string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	cur := "/"
	links := 0
	for len(parts) > 0 {
		c := parts[0]
		parts = parts[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		if next == DevNull {
			return DevNull, nil
		}
		fi, err := os.Lstat(r.Path(next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		links++
		if links > maxLinks {
			// ELOOP, as the kernel says it; the op is the read that
			// resolving serves.
			return "", &fs.PathError{Op: "read", Path: p, Err: syscall.ELOOP}
		}
		t, err := os.Readlink(r.Path(next))
		if err != nil {
			return "", err
		}
		if path.Join(cur, t) == DevNull || path.Clean(t) == DevNull {
			return DevNull, nil
		}
		if path.IsAbs(t) {
			cur = "/"
		}
		parts = append(strings.Split(t, "/"), parts...)
	}
	return cur, nil
}
