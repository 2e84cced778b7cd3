package lock

import (
	"fmt"
	"time"
)

// DefaultPath is where graphprobe select takes its lock.
const DefaultPath = "/run/lock/graphprobe.lock"

// pollInterval is how often a waiter retries: flock(2) cannot be
// interrupted by a context, so waiting is a loop of non-blocking tries.
const pollInterval = 50 * time.Millisecond

// Options configure Acquire.
type Options struct {
	// Timeout is how long to wait for another holder; 0 fails at once.
	Timeout time.Duration
	// OnWait, if set, is called once when the lock is found held, before
	// waiting, with the holder's pid (0 if unknown), so that the caller
	// can tell the user why nothing happens.
	OnWait func(holderPID int)
}

// HeldError is returned when the lock stayed held for the whole timeout.
type HeldError struct {
	Path string
	// PID is the holder's pid, 0 if it could not be read.
	PID    int
	Waited time.Duration
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s holds %s; waited %s", holderName(e.PID), e.Path, e.Waited)
}

func holderName(pid int) string {
	if pid > 0 {
		return fmt.Sprintf("another graphprobe (pid %d)", pid)
	}
	return "another process"
}
