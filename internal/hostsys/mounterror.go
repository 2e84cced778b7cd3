package hostsys

import (
	"fmt"
	"strings"
)

// MountError describes a failed mount(2), umount(2) or new-mount-API call
// with everything needed to reproduce it by hand. Callers match the errno
// with errors.Is, which Unwrap makes reach Err.
type MountError struct {
	Op     string // "mount", "remount", "unmount", "fsopen", "fsconfig ..."
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
	Err    error
}

func (e *MountError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.FSType != "" {
		fmt.Fprintf(&b, " %s", e.FSType)
	}
	if e.Target != "" {
		fmt.Fprintf(&b, " on %s", e.Target)
	}
	if e.Data != "" {
		fmt.Fprintf(&b, " (data: %s)", truncate(e.Data, 512))
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *MountError) Unwrap() error { return e.Err }

// truncate keeps an error readable when the mount data of a deep layer
// stack runs to pages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
