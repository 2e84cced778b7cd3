package drivers

import (
	"errors"
	"fmt"
	"io"
)

// Driver is a graph driver: layers identified by ids, each made from an
// optional parent, mounted to a root directory on demand.
//
// Mounts are reference-counted: Get of a mounted layer returns the same
// path, and Put releases one reference, unmounting on the last.
type Driver interface {
	// Name is the driver's name as Docker spells it ("overlay2").
	Name() string
	// Home is the driver's directory (<data-root>/<name> for dockerd).
	Home() string
	// Create makes layer id on top of parent ("" for a base layer).
	Create(id, parent string) error
	// Remove deletes layer id and everything it holds; the layer must not
	// be mounted.
	Remove(id string) error
	// Get mounts layer id (if not mounted yet) and returns its root.
	Get(id string) (string, error)
	// Put releases one reference taken by Get. Put of a layer that is not
	// mounted is an error, never a crash.
	Put(id string) error
	// Exists reports whether layer id exists.
	Exists(id string) bool
	// Status is the driver's key/value rows, as `docker info` shows them.
	Status() [][2]string
	// Cleanup unmounts everything this driver mounted and leaves the data.
	Cleanup() error
	// ApplyDiff unpacks an image-layer tar stream into layer id (made
	// with Create(id, parent)), turning the stream's aufs-form whiteouts
	// into the driver's own form. It returns the bytes applied.
	ApplyDiff(id, parent string, diff io.Reader) (int64, error)
	// Diff exports layer id's changes against parent as an image-layer
	// tar stream with aufs-form whiteouts.
	Diff(id, parent string) (io.ReadCloser, error)
}

// Options configure a driver's init.
type Options struct {
	// StorageOpts are dockerd's --storage-opt values for this driver
	// ("overlay2.size=10G"); an option the driver does not know is an
	// error, as in dockerd.
	StorageOpts []string
	// WarnNoDType makes a backing filesystem without d_type a warning
	// rather than "not supported", as Docker before 17.12 had it for the
	// overlay drivers.
	WarnNoDType bool
	// Mounter replaces the mount syscalls (for the aufs driver on kernels
	// without aufs, and for tests that assert the exact calls).
	Mounter Mounter
}

// Mounter is the seam between a driver and mount(2)/umount(2).
type Mounter interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string, flags int) error
}

// InitFunc initialises a driver in home, running its own checks first.
type InitFunc func(home string, opts Options) (Driver, error)

// The not-supported class of init errors: dockerd moves on to the next
// driver in its priority list on these, and stops on any other.
var (
	// ErrNotSupported: the kernel lacks what the driver needs.
	ErrNotSupported = errors.New("driver not supported")
	// ErrPrerequisites: a tool or device the driver needs is missing.
	ErrPrerequisites = errors.New("prerequisites for driver not satisfied (wrong filesystem?)")
	// ErrIncompatibleFS: the backing filesystem is one the driver refuses.
	ErrIncompatibleFS = errors.New("backing file system is unsupported for this graph driver")
)

// NotSupportedError is a not-supported class error with its reason and the
// remedy, naming the driver.
type NotSupportedError struct {
	Driver string
	// Class is ErrNotSupported, ErrPrerequisites or ErrIncompatibleFS.
	Class  error
	Reason string
	Hint   string
}

func (e *NotSupportedError) Error() string {
	msg := fmt.Sprintf("%s: %v: %s", e.Driver, e.Class, e.Reason)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *NotSupportedError) Unwrap() error { return e.Class }

// NotSupported builds a not-supported class error.
func NotSupported(driver string, class error, hint, format string, args ...any) error {
	return &NotSupportedError{Driver: driver, Class: class, Reason: fmt.Sprintf(format, args...), Hint: hint}
}

// IsNotSupported reports whether err is of the not-supported class.
func IsNotSupported(err error) bool {
	return errors.Is(err, ErrNotSupported) || errors.Is(err, ErrPrerequisites) || errors.Is(err, ErrIncompatibleFS)
}

// ErrNotMounted is returned by Put for a layer with no mount reference.
var ErrNotMounted = errors.New("layer is not mounted")

// ErrLayerNotExist is returned for an unknown layer id.
var ErrLayerNotExist = errors.New("layer does not exist")

// ErrMaxDepth is returned by Create past a driver's stack depth limit.
var ErrMaxDepth = errors.New("max depth exceeded")
