package hostsys

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// OverlayFixture is a throwaway overlay stack for a test mount: lowerN …
// lower1, upper, work and merged, side by side in Dir. The probe's feature
// tests and the drivers' init checks both mount one, so both lay it out
// the same way.
type OverlayFixture struct {
	Dir    string
	Lowers []string // absolute, nearest first, as lowerdir= wants them
	Upper  string
	Work   string
	Merged string
}

// NewOverlayFixture makes the directories of a stack with n lowers in dir,
// which must exist (a scratch dir: removing it removes the fixture).
func NewOverlayFixture(dir string, n int) (*OverlayFixture, error) {
	f := &OverlayFixture{Dir: dir, Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Merged: filepath.Join(dir, "merged")}
	for i := n; i >= 1; i-- {
		f.Lowers = append(f.Lowers, filepath.Join(dir, fmt.Sprintf("lower%d", i)))
	}
	for _, d := range append(append([]string{}, f.Lowers...), f.Upper, f.Work, f.Merged) {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Data is the mount data of the stack with extra options after it.
func (f *OverlayFixture) Data(extra ...string) string {
	opts := []string{"lowerdir=" + strings.Join(f.Lowers, ":"), "upperdir=" + f.Upper, "workdir=" + f.Work}
	return strings.Join(append(opts, extra...), ",")
}

// Mount mounts the stack on Merged with mount(2).
func (f *OverlayFixture) Mount(extra ...string) error {
	data := f.Data(extra...)
	if err := unix.Mount("overlay", f.Merged, "overlay", 0, data); err != nil {
		return &MountError{Op: "mount", Source: "overlay", Target: f.Merged, FSType: "overlay", Data: data, Err: err}
	}
	return nil
}
