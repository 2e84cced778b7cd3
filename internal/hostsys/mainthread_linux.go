package hostsys

import (
	"bytes"
	"fmt"
	"os"
	"runtime"

	"github.com/moby/sys/mountinfo"
)

// Pin the main goroutine to the process's main thread for the life of any
// program that links hostsys (the probe and the drivers do).
//
// MountNS (and the drivers' namespace threads) unshare or join a mount
// namespace on a locked thread and let the thread end when they are done.
// The runtime cannot end the main thread: a locked goroutine that exits
// there leaves the thread parked, still in the private namespace, holding
// its mounts until the process exits — and /proc/self, which follows the
// main thread, would then show that namespace to everyone. Locking the
// main goroutine in init (Go then runs main on the same thread) keeps every
// other goroutine, and so every namespace thread, off the main thread.
func init() { runtime.LockOSThread() }

// ReadMountinfo returns the mount table of the calling thread's mount
// namespace. /proc/self/mountinfo is the main thread's view, which is not
// necessarily the caller's.
func ReadMountinfo() ([]byte, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return os.ReadFile("/proc/thread-self/mountinfo")
}

// Mounts parses ReadMountinfo: the mount table of the calling thread's
// namespace.
func Mounts() ([]*mountinfo.Info, error) {
	data, err := ReadMountinfo()
	if err != nil {
		return nil, err
	}
	mounts, err := mountinfo.GetMountsFromReader(bytes.NewReader(data), nil)
	if err != nil {
		return nil, fmt.Errorf("parse /proc/thread-self/mountinfo: %w", err)
	}
	return mounts, nil
}
