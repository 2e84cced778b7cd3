package ovl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/internal/naivediff"
	"github.com/graphprobe/graphprobe/drivers/internal/refcount"
	"golang.org/x/sys/unix"
)

// Backend makes and removes the mount of one layer: the kernel's overlay,
// or a fuse-overlayfs daemon.
type Backend interface {
	// Mount mounts s on filepath.Join(s.Home, s.Target).
	Mount(s Spec) error
	// Unmount removes the mount on target, whether this backend made it
	// or an earlier run left it.
	Unmount(target string) error
}

// Kernel is the Backend of the kernel's overlay filesystem: stacks are
// mounted from this process by Spec.Mount and detached, as Docker's Put
// does, so that a busy mount goes away once its last user does.
type Kernel struct {
	// Method is how stacks are mounted; Auto outside tests.
	Method Method
	// Mounter replaces the syscalls (nil: the syscalls).
	Mounter drivers.Mounter
}

// Mount mounts s with k.Method.
func (k *Kernel) Mount(s Spec) error {
	_, err := s.Mount(k.Method, k.Mounter)
	return err
}

// Unmount detaches the mount on target.
func (k *Kernel) Unmount(target string) error {
	if k.Mounter != nil {
		return k.Mounter.Unmount(target, unix.MNT_DETACH)
	}
	return Unmount(target)
}

// Mounts is what every overlay-family driver does around its mounts: the
// first Get of a layer mounts it, later ones share the mount, the last
// Put unmounts it; a mounted layer cannot be removed; Cleanup unmounts
// everything. A layer's mount point is <Home>/<id>/merged in the overlay2
// layout and in overlay v1's alike.
//
// Set the fields before first use; they must not change after.
type Mounts struct {
	// Driver names the driver in Cleanup's error.
	Driver string
	Home   string
	// Backend mounts and unmounts.
	Backend Backend
	// Exists reports whether layer id exists.
	Exists func(id string) bool
	// Root says where layer id's root is, on its first Get: dir, a
	// directory that needs no mount, or the overlay s, whose target is
	// the layer's merged/.
	Root func(id string) (dir string, s *Spec, err error)
	// Sweep makes Cleanup also detach every mount below Home, such as
	// those left by an earlier run. It is off when the mounts go through
	// a drivers.Mounter, which the sweep would bypass.
	Sweep bool

	refs refcount.Counter
}

// mounted marks an entry whose Path is a mount this driver made or found
// at the layer's mount point, which the last Put unmounts.
type mounted struct{}

// Get returns layer id's root and takes a reference, mounting the layer
// if it is not mounted yet.
func (m *Mounts) Get(id string) (string, error) {
	if !m.Exists(id) {
		return "", fmt.Errorf("get layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	e := m.refs.Lock(id)
	defer e.Unlock()
	if e.Count > 0 {
		e.Count++
		return e.Path, nil
	}
	dir, s, err := m.Root(id)
	if err != nil {
		return "", fmt.Errorf("get layer %s: %w", id, err)
	}
	if s == nil {
		e.Count, e.Path = 1, dir
		return dir, nil
	}
	target := filepath.Join(s.Home, s.Target)
	if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("get layer %s: %w", id, err)
	}
	if !Mounted(target) {
		if err := m.Backend.Mount(*s); err != nil {
			unix.Rmdir(target)
			return "", fmt.Errorf("get layer %s: %w", id, err)
		}
	}
	e.Count, e.Path, e.Value = 1, target, mounted{}
	return target, nil
}

// Put releases a reference; the last one unmounts.
func (m *Mounts) Put(id string) error {
	e := m.refs.Lock(id)
	defer e.Unlock()
	if e.Count == 0 {
		return fmt.Errorf("put layer %s: %w", id, drivers.ErrNotMounted)
	}
	if e.Count > 1 {
		e.Count--
		return nil
	}
	if e.Value == (mounted{}) {
		if err := m.Backend.Unmount(e.Path); err != nil {
			return fmt.Errorf("put layer %s: %w", id, err)
		}
		// Removing the mount point also detaches copies of the mount
		// in other namespaces (Linux 3.18+), as Docker relies on.
		unix.Rmdir(e.Path)
	}
	e.Count, e.Path, e.Value = 0, "", nil
	return nil
}

// Remove refuses a layer that has references, unmounts one left mounted
// by an earlier run in this namespace, and then calls remove, with the
// layer's lock held so that no Get mounts it meanwhile.
func (m *Mounts) Remove(id string, remove func() error) error {
	e := m.refs.Lock(id)
	defer e.Unlock()
	if e.Count > 0 {
		return fmt.Errorf("remove layer %s: it is mounted (%d references); release it with Put first", id, e.Count)
	}
	if target := filepath.Join(m.Home, id, MergedDir); Mounted(target) {
		if err := m.Backend.Unmount(target); err != nil {
			return fmt.Errorf("remove layer %s: %w", id, err)
		}
	}
	return remove()
}

// IfUnused calls f, with layer id's lock held so that no Get mounts it
// meanwhile, if the layer has no references, and reports whether it did.
func (m *Mounts) IfUnused(id string, f func()) bool {
	e := m.refs.Lock(id)
	defer e.Unlock()
	if e.Count > 0 {
		return false
	}
	f()
	return true
}

// Cleanup unmounts every layer and leaves the data.
func (m *Mounts) Cleanup() error {
	var errs []error
	for _, id := range m.refs.Held() {
		e := m.refs.Lock(id)
		if e.Count > 0 && e.Value == (mounted{}) {
			if err := m.Backend.Unmount(e.Path); err != nil {
				errs = append(errs, err)
			}
			unix.Rmdir(e.Path)
		}
		e.Count, e.Path, e.Value = 0, "", nil
		e.Unlock()
	}
	if m.Sweep {
		if err := UnmountUnder(m.Home); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: clean up %s: %w", m.Driver, m.Home, err)
	}
	return nil
}

// NaiveApply applies diff through the mounted layer id, whiteouts
// deleting what the layers below have.
func (m *Mounts) NaiveApply(id string, diff io.Reader) (int64, error) {
	if !m.Exists(id) {
		return 0, fmt.Errorf("apply diff to layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	n, err := naivediff.Apply(m, id, diff)
	if err != nil {
		return n, fmt.Errorf("apply diff to layer %s: %w", id, err)
	}
	return n, nil
}

// NaiveDiff exports layer id's changes against parent by comparing the
// mounted layer with its mounted parent.
func (m *Mounts) NaiveDiff(id, parent string) (io.ReadCloser, error) {
	if !m.Exists(id) {
		return nil, fmt.Errorf("diff layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	rc, err := naivediff.Diff(m, id, parent)
	if err != nil {
		return nil, fmt.Errorf("diff layer %s: %w", id, err)
	}
	return rc, nil
}
