package probe

import (
	"errors"
	"fmt"
)

// Method says what decided a fact's verdict.
type Method string

const (
	// MethodMountTest: a real test mount (or syscall test) on this host.
	MethodMountTest Method = "mount-test"
	// MethodFile: a file of the host (/proc, /sys, /lib/modules, a binary).
	MethodFile Method = "file"
	// MethodVersion: the kernel version alone.
	MethodVersion Method = "version"
	// MethodInferred: reasoned from captured files when no test could run.
	MethodInferred Method = "inferred"
	// MethodCaptured: a live test result stored with a captured host.
	MethodCaptured Method = "captured"
)

// Fact names, as the JSON document and its users spell them.
const (
	FactOverlay        = "overlay"
	FactMultiLowerdir  = "overlay.multi-lowerdir"
	FactNativeDiff     = "overlay.native-diff"
	FactRedirectDir    = "overlay.redirect-dir"
	FactMetacopy       = "overlay.metacopy"
	FactIndex          = "overlay.index"
	FactVolatile       = "overlay.volatile"
	FactUserxattr      = "overlay.userxattr"
	FactLowerdirPlus   = "overlay.lowerdir-plus"
	FactAufs           = "aufs"
	FactDType          = "d_type"
	FactFuseOverlayfs  = "fuse-overlayfs"
	FactBtrfs          = "btrfs"
	FactZfs            = "zfs"
	FactDevicemapper   = "devicemapper"
	FactOldOverlayfs   = "overlayfs-ubuntu"
	FactOverlayOnOverl = "overlay.nested"
)

// Fact is one verdict about the host. Supported and Version are tri-state:
// nil means unknown (inconclusive, or no threshold applies).
type Fact struct {
	// Supported is the verdict.
	Supported *bool `json:"supported"`
	// Method is what decided Supported.
	Method Method `json:"method"`
	// Version is what the kernel version alone says; nil where no threshold
	// applies or the release could not be parsed.
	Version *bool `json:"version"`
	// MinKernel is the upstream kernel that introduced the feature.
	MinKernel string `json:"minKernel,omitempty"`
	// Detail is the evidence behind the verdict, for people.
	Detail string `json:"detail,omitempty"`
	// Hint is the remedy when the answer is no (or unknown).
	Hint string `json:"hint,omitempty"`
	// Module is the state of the kernel module behind the fact, where one
	// applies: builtin, loaded, loadable, absent or unknown.
	Module ModuleState `json:"module,omitempty"`
}

// Known reports whether the verdict is conclusive.
func (f Fact) Known() bool { return f.Supported != nil }

// Yes reports a conclusive yes.
func (f Fact) Yes() bool { return f.Supported != nil && *f.Supported }

// No reports a conclusive no.
func (f Fact) No() bool { return f.Supported != nil && !*f.Supported }

// Bool returns a pointer to b, for tri-state fields.
func Bool(b bool) *bool { return &b }

// ErrNotSupported is wrapped by every error that means "this host cannot do
// it", as opposed to "the test could not tell".
var ErrNotSupported = errors.New("not supported")

// UnsupportedError is a conclusive "no", carrying the kernel that introduced
// the feature so that callers can say what would fix it.
type UnsupportedError struct {
	Feature   string
	MinKernel string
	Reason    string
}

func (e *UnsupportedError) Error() string {
	msg := e.Feature + " " + ErrNotSupported.Error()
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.MinKernel != "" {
		msg += fmt.Sprintf(" (requires kernel %s or later)", e.MinKernel)
	}
	return msg
}

func (e *UnsupportedError) Unwrap() error { return ErrNotSupported }

// notSupported builds a conclusive "no".
func notSupported(feature, minKernel, format string, args ...any) error {
	return &UnsupportedError{Feature: feature, MinKernel: minKernel, Reason: fmt.Sprintf(format, args...)}
}

// errNeedsRoot marks live tests that could not run without privileges; it is
// inconclusive, never a "no".
var errNeedsRoot = errors.New("needs root")
