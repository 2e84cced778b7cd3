package nsthread

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Run runs fn on a new thread in the calling thread's mount namespace and
// waits for it. fn may chdir and change any per-thread state: the thread
// ends when fn returns.
func Run(fn func() error) error {
	res := make(chan error, 1)
	if err := Go(func() { res <- fn() }); err != nil {
		return err
	}
	return <-res
}

// Go starts fn on a new thread in the calling thread's mount namespace and
// returns once the thread is set up, or with the reason it could not be.
// The thread ends when fn returns; a process started by fn with Pdeathsig
// is signalled then, and not before.
func Go(fn func()) error {
	nsfd, err := callerNS()
	if err != nil {
		return err
	}
	ready := make(chan error, 1)
	go func() {
		// Never unlocked: the thread's fs context (and maybe its
		// namespace) now differs from the rest of the process, so the
		// runtime must end it when this goroutine returns instead of
		// handing it to other goroutines.
		runtime.LockOSThread()
		if err := join(nsfd); err != nil {
			ready <- err
			return
		}
		ready <- nil
		fn()
	}()
	err = <-ready
	unix.Close(nsfd)
	return err
}

// callerNS opens the calling thread's mount namespace. The goroutine is
// locked for the duration so that thread-self is the thread that matters;
// the lock nests with one the caller may already hold.
func callerNS() (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fd, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: "/proc/thread-self/ns/mnt", Err: err}
	}
	return fd, nil
}

// join gives the current (locked) thread its own fs context and moves it
// into the namespace nsfd refers to, unless it is already there: setns
// needs CAP_SYS_ADMIN, which a caller outside any private namespace may
// lack and does not need.
func join(nsfd int) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare the thread's filesystem context: %w", err)
	}
	var want, have unix.Stat_t
	if err := unix.Fstat(nsfd, &want); err != nil {
		return fmt.Errorf("stat the caller's mount namespace: %w", err)
	}
	if err := unix.Stat("/proc/thread-self/ns/mnt", &have); err != nil {
		return &os.PathError{Op: "stat", Path: "/proc/thread-self/ns/mnt", Err: err}
	}
	if want.Ino == have.Ino && want.Dev == have.Dev {
		return nil
	}
	if err := unix.Setns(nsfd, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("join the caller's mount namespace: %w", err)
	}
	return nil
}
