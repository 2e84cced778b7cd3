package hostsys

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ScratchPrefix starts the name of every scratch dir graphprobe makes; the
// pid of its maker follows, so a later run can tell a dead run's leftovers.
const ScratchPrefix = ".graphprobe-"

// MakeScratch creates a fresh 0700 directory named
// ".graphprobe-<kind>-<pid>-<random>" inside parent and returns its path.
//
// The scratch dir must not be redirectable: parent and every directory
// above it must be owned by root or by us and not writable by other users
// (unless sticky, as /tmp is) — otherwise another user could move the new
// dir aside and plant a symlink that makes a root process create, chmod and
// mount things elsewhere. The dir is made with mkdirat and checked through
// an O_NOFOLLOW descriptor, never by following its name.
func MakeScratch(parent, kind string) (string, error) {
	if err := CheckSafeDir(parent); err != nil {
		return "", fmt.Errorf("make scratch dir: %w", err)
	}
	pfd, err := unix.Open(parent, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("make scratch dir in %s: %w", parent, err)
	}
	defer unix.Close(pfd)
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("make scratch dir: %w", err)
	}
	name := fmt.Sprintf("%s%s-%d-%s", ScratchPrefix, kind, os.Getpid(), hex.EncodeToString(rnd[:]))
	if err := unix.Mkdirat(pfd, name, 0o700); err != nil {
		return "", scratchError(parent, name, err)
	}
	dir := filepath.Join(parent, name)
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)
		return "", fmt.Errorf("make scratch dir %s: %w", dir, err)
	}
	defer unix.Close(fd)
	// The umask may have taken bits away; never add any beyond 0700.
	var st unix.Stat_t
	if unix.Fchmod(fd, 0o700) != nil || unix.Fstat(fd, &st) != nil ||
		st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o7777 != 0o700 || int(st.Uid) != os.Geteuid() {
		unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)
		return "", fmt.Errorf("make scratch dir %s: not the directory we created", dir)
	}
	return dir, nil
}

// scratchError says what a failed mkdir of a scratch dir means for the
// user: a full filesystem or an exhausted quota is not a bug of graphprobe
// but something to free, and the message says where.
func scratchError(parent, name string, err error) error {
	switch {
	case errors.Is(err, unix.ENOSPC):
		return fmt.Errorf("make scratch dir in %s: the filesystem is full (no free blocks or inodes; df -h %s and df -i %s show which): "+
			"free some space there and rerun, since drivers are initialised there as dockerd does: %w", parent, parent, parent, err)
	case errors.Is(err, unix.EDQUOT):
		return fmt.Errorf("make scratch dir in %s: the disk quota of uid %d on that filesystem is exhausted: free some of it, or raise the quota, and rerun: %w",
			parent, os.Geteuid(), err)
	}
	return fmt.Errorf("make scratch dir %s: %w", filepath.Join(parent, name), err)
}

// CheckSafeDir refuses a directory that another user could tamper with:
// dir and each directory above it must be a real directory (no symlink at
// dir itself), owned by root or by us, and not writable by group or others
// unless it has the sticky bit.
func CheckSafeDir(dir string) error {
	dir = filepath.Clean(dir)
	euid := os.Geteuid()
	for cur, first := dir, true; ; cur, first = filepath.Dir(cur), false {
		var st unix.Stat_t
		if err := unix.Lstat(cur, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: cur, Err: err}
		}
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFLNK && first:
			return fmt.Errorf("%s is a symlink; give the real path", cur)
		case st.Mode&unix.S_IFMT == unix.S_IFLNK:
			// An ancestor symlink is resolved by the kernel; what it
			// leads to is checked when the caller resolves the path.
		case st.Mode&unix.S_IFMT != unix.S_IFDIR:
			return fmt.Errorf("%s is not a directory", cur)
		case int(st.Uid) != 0 && int(st.Uid) != euid:
			return fmt.Errorf("%s belongs to uid %d, who could redirect what graphprobe makes below it; use a data-root in directories owned by root", cur, st.Uid)
		case st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
			return fmt.Errorf("%s is writable by other users (mode %04o) without the sticky bit; make it writable by its owner only (chmod go-w %s)", cur, st.Mode&0o7777, cur)
		}
		if cur == "/" || cur == "." {
			return nil
		}
	}
}

// RemoveStaleScratch removes scratch dirs of kind left in parent by
// graphprobe runs that died (their pid is gone). It never follows symlinks
// and skips anything not owned by us. It returns what it removed.
func RemoveStaleScratch(parent, kind string) ([]string, error) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var removed []string
	prefix := ScratchPrefix + kind + "-"
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !e.IsDir() || e.Type()&os.ModeSymlink != 0 {
			continue
		}
		pidStr, _, ok := strings.Cut(strings.TrimPrefix(name, prefix), "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() || ProcessAlive(pid) {
			continue
		}
		full := filepath.Join(parent, name)
		st, err := os.Lstat(full)
		if err != nil || !st.IsDir() {
			continue
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
			continue
		}
		if err := removeTree(full); err != nil {
			return removed, fmt.Errorf("remove stale scratch dir %s: %w", full, err)
		}
		removed = append(removed, full)
	}
	return removed, nil
}

// ProcessAlive reports whether pid exists, so that the leftovers of a run
// that died (scratch dirs, temporary files) can be told from those of one
// still at work. EPERM means it exists under another user.
func ProcessAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// removeTree removes dir, first detaching anything still mounted below it
// in our namespace (a mount under a dead run's scratch dir in the host
// namespace would mean a leak we must not delete through).
func removeTree(dir string) error {
	if mounts, err := Mounts(); err == nil {
		for _, m := range mounts {
			if m.Mountpoint == dir || strings.HasPrefix(m.Mountpoint, dir+"/") {
				return fmt.Errorf("%s is still mounted; unmount it first (umount -l %s)", m.Mountpoint, m.Mountpoint)
			}
		}
	}
	err := os.RemoveAll(dir)
	if err != nil && errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("%w (something is still mounted below it)", err)
	}
	return err
}
