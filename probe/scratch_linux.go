package probe

import (
	"bytes"
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
// ".graphprobe-<kind>-<pid>-<random>" inside parent. mkdir never follows a
// symlink at the new name and fails if anything is already there, and the
// random part makes the name unguessable, so a planted symlink or directory
// cannot redirect it. The parent itself must not be a symlink.
func MakeScratch(parent, kind string) (string, error) {
	st, err := os.Lstat(parent)
	if err != nil {
		return "", fmt.Errorf("make scratch dir: %w", err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("make scratch dir in %s: not a directory", parent)
	}
	dir, err := os.MkdirTemp(parent, fmt.Sprintf("%s%s-%d-", ScratchPrefix, kind, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("make scratch dir: %w", err)
	}
	// MkdirTemp honours the umask: force 0700 and verify what we made.
	if err := os.Chmod(dir, 0o700); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("make scratch dir: %w", err)
	}
	st, err = os.Lstat(dir)
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		os.Remove(dir)
		return "", fmt.Errorf("make scratch dir %s: not the directory we created", dir)
	}
	return dir, nil
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
		if err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
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

func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// removeTree removes dir, first detaching anything still mounted below it
// in our namespace (a mount under a dead run's scratch dir in the host
// namespace would mean a leak we must not delete through).
func removeTree(dir string) error {
	if data, err := ReadMountinfo(); err == nil {
		mounts, perr := ParseMountinfo(bytes.NewReader(data))
		if perr == nil {
			for _, m := range mounts {
				if m.Mountpoint == dir || strings.HasPrefix(m.Mountpoint, dir+"/") {
					return fmt.Errorf("%s is still mounted; unmount it first (umount -l %s)", m.Mountpoint, m.Mountpoint)
				}
			}
		}
	}
	err := os.RemoveAll(dir)
	if err != nil && errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("%w (something is still mounted below it)", err)
	}
	return err
}
