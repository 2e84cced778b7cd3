package ovl

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/graphprobe/graphprobe/drivers/archive"
)

// Layers is the half of a driver on the overlay2 layout that does not
// depend on how a stack is mounted: overlay2 mounts with the kernel,
// fuse-overlayfs with a daemon per layer. It gives Home, Exists, Create,
// Remove, Get, Put, Cleanup, ApplyDiff and Diff; embed the *Layers that
// NewLayers returns.
type Layers struct {
	layout  Layout
	options []string
	mounts  Mounts

	whiteouts               archive.WhiteoutFormat
	applyDirect, diffDirect func() bool
}

// LayersConfig is what the drivers on the overlay2 layout differ in.
type LayersConfig struct {
	// Driver names the driver in errors.
	Driver  string
	Layout  Layout
	Backend Backend
	// Options go into every mount's data ("index=off").
	Options []string
	// Sweep: see Mounts.
	Sweep bool
	// Whiteouts is the form the whiteouts of a diff applied straight into
	// diff/ take there, and the form Diff reads them in when it tars
	// diff/.
	Whiteouts archive.WhiteoutFormat
	// ApplyDirect and DiffDirect report whether a diff of a layer against
	// its own parent may be unpacked straight into, and tarred straight
	// from, its diff/. Otherwise, and when nil, the diff goes through the
	// mounted layer.
	ApplyDirect, DiffDirect func() bool
}

// NewLayers returns the shared half of a driver on c.Layout.
func NewLayers(c LayersConfig) *Layers {
	l := &Layers{
		layout: c.Layout, options: c.Options,
		whiteouts: c.Whiteouts, applyDirect: c.ApplyDirect, diffDirect: c.DiffDirect,
	}
	l.mounts = Mounts{
		Driver: c.Driver, Home: c.Layout.Home, Backend: c.Backend,
		Exists: l.layout.Exists, Root: l.root, Sweep: c.Sweep,
	}
	return l
}

// Spec is the mount of layer id over lowers (its lower file). A committed
// layer (one with children) is mounted read-only with its diff as the top
// lower, as Docker does: writing to it would change its children.
func (l Layout) Spec(id string, lowers, options []string) Spec {
	s := Spec{Home: l.Home, Target: filepath.Join(id, MergedDir), Options: options}
	if l.Committed(id) {
		s.Lowers = append([]string{filepath.Join(id, DiffDir)}, lowers...)
		return s
	}
	s.Lowers = lowers
	s.Upper, s.Work = filepath.Join(id, DiffDir), filepath.Join(id, WorkDir)
	return s
}

// root is the diff of a base layer, which needs no mount, and the merged
// overlay of any other.
func (l *Layers) root(id string) (string, *Spec, error) {
	lowers, err := l.layout.Lowers(id)
	if err != nil {
		return "", nil, err
	}
	if len(lowers) == 0 {
		return filepath.Join(l.layout.Dir(id), DiffDir), nil, nil
	}
	s := l.layout.Spec(id, lowers, l.options)
	return "", &s, nil
}

// Home is the driver's directory.
func (l *Layers) Home() string { return l.layout.Home }

// Exists reports whether layer id exists.
func (l *Layers) Exists(id string) bool { return l.layout.Exists(id) }

// Create makes layer id on parent.
func (l *Layers) Create(id, parent string) error {
	if err := l.layout.Create(id, parent); err != nil {
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	return nil
}

// Remove deletes layer id, which must not be mounted.
func (l *Layers) Remove(id string) error {
	if err := ValidID(id, LinkDir); err != nil {
		return fmt.Errorf("remove layer: %w", err)
	}
	return l.mounts.Remove(id, func() error { return l.layout.Remove(id) })
}

// Get mounts layer id and returns its root: the diff of a base layer, the
// merged overlay of any other.
func (l *Layers) Get(id string) (string, error) { return l.mounts.Get(id) }

// Put releases a reference; the last one unmounts.
func (l *Layers) Put(id string) error { return l.mounts.Put(id) }

// Cleanup unmounts every layer and leaves the data.
func (l *Layers) Cleanup() error { return l.mounts.Cleanup() }

// direct reports whether a diff of layer id against parent is id's diff/
// as it is: parent is id's own and the driver's rule (allowed) says so.
// A missing layer is not: the mounts' path gives the error.
func (l *Layers) direct(allowed func() bool, id, parent string) bool {
	return l.layout.Exists(id) && allowed != nil && allowed() && l.layout.IsParent(id, parent)
}

// ApplyDiff unpacks diff into layer id: straight into diff/ when the
// driver allows it and parent is id's own, otherwise through the mounted
// layer.
func (l *Layers) ApplyDiff(id, parent string, diff io.Reader) (int64, error) {
	if !l.direct(l.applyDirect, id, parent) {
		return l.mounts.NaiveApply(id, diff)
	}
	n, err := archive.Apply(filepath.Join(l.layout.Dir(id), DiffDir), diff, archive.ApplyOptions{Whiteouts: l.whiteouts})
	if err != nil {
		return n, fmt.Errorf("apply diff to layer %s: %w", id, err)
	}
	return n, nil
}

// Diff exports layer id's changes against parent: diff/ as it is when the
// driver allows it and parent is id's own, otherwise the mounted layer
// compared with its mounted parent.
func (l *Layers) Diff(id, parent string) (io.ReadCloser, error) {
	if !l.direct(l.diffDirect, id, parent) {
		return l.mounts.NaiveDiff(id, parent)
	}
	rc, err := archive.Export(filepath.Join(l.layout.Dir(id), DiffDir), archive.ExportOptions{Whiteouts: l.whiteouts})
	if err != nil {
		return nil, fmt.Errorf("diff layer %s: %w", id, err)
	}
	return rc, nil
}
