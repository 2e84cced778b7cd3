package probe

import (
	"os"
	"runtime"
)

// Pin the main goroutine to the process's main thread for the life of any
// program that links the probe.
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

func readMountinfo() ([]byte, error) { return ReadMountinfo() }
