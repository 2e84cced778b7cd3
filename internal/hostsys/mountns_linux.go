package hostsys

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// MountNS is a private mount namespace held by one dedicated OS thread.
// Functions passed to Do run on that thread, so every mount they make lives
// in the namespace and dies with it: when Close is called, or when the
// process is killed, the thread ends, the namespace loses its last user and
// the kernel unmounts everything in it. Nothing ever reaches the host's
// mount table.
//
// The thread also has its own working directory (CLONE_FS), so mounts that
// need relative paths may chdir freely.
//
// Only work done inside Do sees the namespace: paths below a mount made in
// it look empty from any other goroutine. Processes started inside Do (a
// fuse-overlayfs daemon, mkfs) inherit it.
type MountNS struct {
	work chan func()
	done chan struct{}
	once sync.Once
}

// NewMountNS starts the thread and unshares it. It fails with a wrapped
// EPERM when the caller lacks CAP_SYS_ADMIN.
func NewMountNS() (*MountNS, error) {
	ns := &MountNS{work: make(chan func()), done: make(chan struct{})}
	ready := make(chan error, 1)
	go ns.loop(ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return ns, nil
}

func (ns *MountNS) loop(ready chan<- error) {
	// Never unlocked: the runtime ends a thread whose goroutine exits while
	// locked, which is how the namespace is discarded.
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
		ready <- fmt.Errorf("unshare mount namespace: %w", err)
		return
	}
	// Make every mount private in our copy so that nothing we mount or
	// unmount propagates back to the host's peer groups.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		ready <- fmt.Errorf("make mounts private in the probe namespace: %w", err)
		return
	}
	ready <- nil
	for {
		select {
		case fn := <-ns.work:
			fn()
		case <-ns.done:
			return
		}
	}
}

// ErrNSClosed is returned by Do after Close.
var ErrNSClosed = errors.New("mount namespace closed")

// Do runs fn on the namespace's thread and waits for it. A panic in fn is
// returned as an error rather than killing the thread's loop.
func (ns *MountNS) Do(fn func() error) (err error) {
	res := make(chan error, 1)
	wrapped := func() {
		defer func() {
			if r := recover(); r != nil {
				res <- fmt.Errorf("panic in mount namespace: %v", r)
			}
		}()
		res <- fn()
	}
	select {
	case ns.work <- wrapped:
	case <-ns.done:
		return ErrNSClosed
	}
	return <-res
}

// Close ends the thread and with it the namespace and all its mounts.
func (ns *MountNS) Close() {
	ns.once.Do(func() { close(ns.done) })
}
