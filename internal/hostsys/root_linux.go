package hostsys

import (
	"errors"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// openFlags never block on a FIFO and never take a terminal: a host file
// is read, never waited on.
const openFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY

// Open opens host path p read-only. On a captured host the kernel resolves
// the path with the tree as its root (openat2 RESOLVE_IN_ROOT), so no
// symlink leads out of it; kernels before 5.6 lack openat2 (and some
// seccomp profiles refuse it), and there the path is confined by Confined
// instead.
func (r Root) Open(p string) (*os.File, error) {
	if r.Live() {
		fd, err := unix.Open(path.Clean("/"+p), openFlags, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return os.NewFile(uintptr(fd), p), nil
	}
	root, err := unix.Open(r.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: r.dir, Err: err}
	}
	defer unix.Close(root)
	how := unix.OpenHow{
		Flags:   openFlags,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	rel := path.Clean("/" + p)[1:]
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(root, rel, &how)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		if err := r.Confined(p); err != nil {
			return nil, err
		}
		fd, err = unix.Open(r.Path(p), openFlags, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), r.Path(p)), nil
}
