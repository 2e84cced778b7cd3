package archive

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// noOpenat2 is set once openat2(2) (Linux 5.6) turns out to be missing;
// resolution then walks one component at a time and refuses every
// symlink on the way, which is stricter but just as safe.
var noOpenat2 atomic.Bool

// openBeneath opens the directory rel (a clean relative path, "." for
// root itself) below the directory root, as an O_PATH descriptor. Symlinks
// on the way are followed only while they stay below root; one that leads
// out is refused with an UnsafePathError naming entry. With create,
// missing directories are made (0755, as tar does for parents it was not
// given).
func openBeneath(root int, rel, entry string, create bool) (int, error) {
	fd, err := openDir(root, rel, entry)
	if err == nil || !create || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	// Make the missing components one at a time, each opened beneath
	// root again so that a symlink planted earlier in the stream cannot
	// redirect the mkdir.
	parts := strings.Split(rel, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fd, err := openDir(root, prefix, entry)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return -1, err
		}
		pfd := root
		if i > 0 {
			if pfd, err = openDir(root, strings.Join(parts[:i], "/"), entry); err != nil {
				return -1, err
			}
		}
		err = unix.Mkdirat(pfd, parts[i], 0o755)
		if pfd != root {
			unix.Close(pfd)
		}
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, &os.PathError{Op: "mkdir", Path: prefix, Err: err}
		}
	}
	return openDir(root, rel, entry)
}

func openDir(root int, rel, entry string) (int, error) {
	if rel == "." {
		fd, err := unix.Openat(root, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: ".", Err: err}
		}
		return fd, nil
	}
	if !noOpenat2.Load() {
		fd, err := unix.Openat2(root, rel, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
		})
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.ENOSYS):
			noOpenat2.Store(true)
		case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP):
			return -1, &UnsafePathError{Entry: entry, Reason: fmt.Sprintf("its directory %q is reached through a symlink that leads outside the layer", rel)}
		default:
			return -1, &os.PathError{Op: "open", Path: rel, Err: err}
		}
	}
	return walkNoSymlinks(root, rel, entry)
}

// walkNoSymlinks is the fallback for kernels without openat2.
func walkNoSymlinks(root int, rel, entry string) (int, error) {
	fd, err := unix.Openat(root, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: ".", Err: err}
	}
	for _, part := range strings.Split(rel, "/") {
		next, err := unix.Openat(fd, part, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			var st unix.Stat_t
			if unix.Fstatat(fd, part, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = &UnsafePathError{Entry: entry, Reason: fmt.Sprintf("its directory %q is reached through the symlink %q (this kernel has no openat2 to follow it safely)", rel, part)}
			} else {
				err = &os.PathError{Op: "open", Path: rel, Err: err}
			}
			unix.Close(fd)
			return -1, err
		}
		unix.Close(fd)
		fd = next
	}
	return fd, nil
}

// fdPath names base inside the directory dirfd for the calls that take
// only a path (the xattr calls). The magic link jumps straight to the
// directory already resolved, so nothing is resolved again.
func fdPath(dirfd int, base string) string {
	return fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, base)
}

// removeAt removes name in dirfd and everything below it, never following
// a symlink.
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return &os.PathError{Op: "unlink", Path: name, Err: err}
	}
	fd, oerr := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if oerr != nil {
		return &os.PathError{Op: "unlink", Path: name, Err: err}
	}
	dir := os.NewFile(uintptr(fd), name)
	names, rerr := dir.Readdirnames(-1)
	if rerr != nil {
		dir.Close()
		return rerr
	}
	for _, n := range names {
		if err := removeAt(fd, n); err != nil {
			dir.Close()
			return err
		}
	}
	dir.Close()
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	return nil
}
