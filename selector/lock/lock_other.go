//go:build !linux

package lock

import (
	"context"
	"errors"
)

// Lock is a held lock.
type Lock struct{ path string }

// Path is the lock file.
func (l *Lock) Path() string { return l.path }

// Acquire is Linux-only.
func Acquire(ctx context.Context, path string, opts Options) (*Lock, error) {
	return nil, errors.New("lock " + path + ": supported on Linux only")
}

// Release is Linux-only.
func (l *Lock) Release() error { return nil }
