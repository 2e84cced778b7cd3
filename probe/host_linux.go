package probe

import (
	"errors"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// open opens p read-only without blocking on FIFOs. On a fixture it
// resolves the path as if the tree were the root (RESOLVE_IN_ROOT), so a
// planted symlink cannot make a fixture read a file of the machine running
// the test.
func (h *Host) open(p string) (*os.File, error) {
	if h.Live() {
		fd, err := unix.Open(path.Clean("/"+p), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return os.NewFile(uintptr(fd), p), nil
	}
	root, err := unix.Open(h.prefix, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: h.prefix, Err: err}
	}
	defer unix.Close(root)
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	rel := path.Clean("/" + p)[1:]
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(root, rel, &how)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		// Kernels before 5.6 lack openat2: confine lexically and by
		// resolving the directory instead.
		if err := h.confined(p); err != nil {
			return nil, err
		}
		fd, err = unix.Open(h.Path(p), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), h.Path(p)), nil
}
