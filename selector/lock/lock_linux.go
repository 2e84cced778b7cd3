package lock

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Lock is a held lock.
type Lock struct {
	path string
	fd   int
}

// Path is the lock file.
func (l *Lock) Path() string { return l.path }

// Acquire takes the lock at path, waiting up to opts.Timeout for another
// holder to let go. It returns a *HeldError when the wait times out and
// ctx's error when ctx ends first (Ctrl-C).
func Acquire(ctx context.Context, path string, opts Options) (*Lock, error) {
	fd, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	l := &Lock{path: path, fd: fd}
	var deadline <-chan time.Time
	if opts.Timeout > 0 {
		timer := time.NewTimer(opts.Timeout)
		defer timer.Stop()
		deadline = timer.C
	}
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	notified := false
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			unix.Close(fd)
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		pid := readPID(fd)
		if !notified && opts.OnWait != nil {
			opts.OnWait(pid)
		}
		notified = true
		if opts.Timeout <= 0 {
			unix.Close(fd)
			return nil, &HeldError{Path: path, PID: pid, Waited: 0}
		}
		select {
		case <-ctx.Done():
			unix.Close(fd)
			return nil, fmt.Errorf("wait for %s held by %s: %w", path, holderName(pid), ctx.Err())
		case <-deadline:
			unix.Close(fd)
			return nil, &HeldError{Path: path, PID: pid, Waited: opts.Timeout}
		case <-ticker.C:
		}
	}
	if err := writePID(fd); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock %s: write pid: %w", path, err)
	}
	return l, nil
}

// Release clears the pid and lets the next waiter in.
func (l *Lock) Release() error {
	if l == nil || l.fd < 0 {
		return nil
	}
	_ = unix.Ftruncate(l.fd, 0)
	err := unix.Close(l.fd) // closing the last descriptor drops the flock
	l.fd = -1
	if err != nil {
		return fmt.Errorf("release %s: %w", l.path, err)
	}
	return nil
}

// openLockFile opens (creating) the lock file, refusing anything that is
// not a regular file of ours with a single link.
func openLockFile(path string) (int, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return -1, fmt.Errorf("lock %s: %w", path, err)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0o644)
	if errors.Is(err, unix.ELOOP) {
		return -1, fmt.Errorf("lock %s: the lock file is a symlink; refusing to follow it (remove it)", path)
	}
	if err != nil {
		return -1, fmt.Errorf("lock %s: %w", path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("lock %s: %w", path, err)
	}
	var problem string
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		problem = "is not a regular file"
	case int(st.Uid) != os.Geteuid():
		problem = fmt.Sprintf("is owned by uid %d, not by us (uid %d)", st.Uid, os.Geteuid())
	case st.Nlink != 1:
		problem = fmt.Sprintf("has %d hard links", st.Nlink)
	}
	if problem != "" {
		unix.Close(fd)
		return -1, fmt.Errorf("lock %s: the lock file %s; refusing to use it (remove it)", path, problem)
	}
	if st.Mode&0o022 != 0 {
		// Nobody else may forge the pid a waiter reports.
		_ = unix.Fchmod(fd, 0o644)
	}
	return fd, nil
}

func readPID(fd int) int {
	buf := make([]byte, 32)
	n, err := unix.Pread(fd, buf, 0)
	if err != nil || n == 0 {
		return 0
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

func writePID(fd int) error {
	if err := unix.Ftruncate(fd, 0); err != nil {
		return err
	}
	_, err := unix.Pwrite(fd, []byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}
