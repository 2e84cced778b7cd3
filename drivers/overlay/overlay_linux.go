package overlay

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/archive"
	"github.com/graphprobe/graphprobe/drivers/internal/fscopy"
	"github.com/graphprobe/graphprobe/drivers/internal/ovl"
)

// Name is the driver's name as Docker spells it.
const Name = "overlay"

// Names in a layer directory.
const (
	rootDir  = "root"
	upperDir = "upper"
	workDir  = "work"
	// mergedDir is where ovl.Mounts mounts a layer in both layouts.
	mergedDir = ovl.MergedDir
	lowerID   = "lower-id"
)

func init() { drivers.Register(Name, Init) }

// Driver is an initialised overlay home.
type Driver struct {
	home      string
	mounts    *ovl.Mounts
	backingFS string
	options   []string
}

// Init checks that the host can run overlay in home and makes the home.
func Init(home string, opts drivers.Options) (drivers.Driver, error) {
	for _, o := range opts.StorageOpts {
		k, _, _ := strings.Cut(o, "=")
		return nil, fmt.Errorf("%s: unknown storage option %s", Name, k)
	}
	// One lower: a container layer's upper over its image's root. The
	// mounts take index=off, as overlay2's: with the index on, an upper
	// dir is tied to the lower it was first mounted over.
	host, err := ovl.CheckHost(Name, home, 1, opts.WarnNoDType)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(home, 0o710); err != nil {
		return nil, fmt.Errorf("%s: create driver home: %w", Name, err)
	}
	d := &Driver{home: home, backingFS: host.BackingFS, options: host.Options}
	d.mounts = &ovl.Mounts{
		Driver: Name, Home: home, Backend: &ovl.Kernel{Mounter: opts.Mounter},
		Exists: d.Exists, Root: d.root, Sweep: opts.Mounter == nil,
	}
	return d, nil
}

func (d *Driver) Name() string { return Name }
func (d *Driver) Home() string { return d.home }

// Status gives the rows `docker info` showed for overlay.
func (d *Driver) Status() [][2]string {
	return [][2]string{
		{"Backing Filesystem", d.backingFS},
		{"Supports d_type", "true"},
	}
}

func (d *Driver) dir(id string) string { return filepath.Join(d.home, id) }

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// Exists reports whether layer id exists.
func (d *Driver) Exists(id string) bool {
	if ovl.ValidID(id) != nil {
		return false
	}
	fi, err := os.Lstat(d.dir(id))
	return err == nil && fi.IsDir()
}

// Create makes layer id on parent: a root/ for a base layer; an upper/
// over the parent's root/ when the parent is an image layer; a copy of
// the parent's upper/ over the same root/ otherwise (a container layer on
// its -init layer).
func (d *Driver) Create(id, parent string) (retErr error) {
	if err := ovl.ValidID(id); err != nil {
		return fmt.Errorf("create layer: %w", err)
	}
	if parent != "" && !d.Exists(parent) {
		return fmt.Errorf("create layer %s: parent %s: %w", id, parent, drivers.ErrLayerNotExist)
	}
	dir := d.dir(id)
	if err := os.Mkdir(dir, 0o710); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create layer %s: it already exists", id)
		}
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	defer func() {
		if retErr != nil {
			os.RemoveAll(dir)
			retErr = fmt.Errorf("create layer %s: %w", id, retErr)
		}
	}()
	if parent == "" {
		return os.Mkdir(filepath.Join(dir, rootDir), 0o755)
	}
	parentDir := d.dir(parent)
	if fi, err := os.Lstat(filepath.Join(parentDir, rootDir)); err == nil {
		if err := os.Mkdir(filepath.Join(dir, upperDir), fi.Mode().Perm()); err != nil {
			return err
		}
		if err := os.Mkdir(filepath.Join(dir, workDir), 0o700); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, lowerID), []byte(parent), 0o600)
	}
	lower, err := os.ReadFile(filepath.Join(parentDir, lowerID))
	if err != nil {
		return fmt.Errorf("parent %s has neither a root nor a lower-id: %w", parent, err)
	}
	if err := os.WriteFile(filepath.Join(dir, lowerID), lower, 0o600); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, workDir), 0o700); err != nil {
		return err
	}
	return fscopy.Copy(filepath.Join(parentDir, upperDir), filepath.Join(dir, upperDir), fscopy.Content)
}

// Remove deletes layer id, which must not be mounted.
func (d *Driver) Remove(id string) error {
	if err := ovl.ValidID(id); err != nil {
		return fmt.Errorf("remove layer: %w", err)
	}
	return d.mounts.Remove(id, func() error {
		if err := os.RemoveAll(d.dir(id)); err != nil {
			return fmt.Errorf("remove layer %s: %w", id, err)
		}
		return nil
	})
}

// Get returns an image layer's root, or mounts a container layer's upper
// over its image's root.
func (d *Driver) Get(id string) (string, error) { return d.mounts.Get(id) }

// root is an image layer's root/, which needs no mount, or the overlay of
// a container layer's upper/ over its image's root/.
func (d *Driver) root(id string) (string, *ovl.Spec, error) {
	dir := d.dir(id)
	if root := filepath.Join(dir, rootDir); exists(root) {
		return root, nil, nil
	}
	lower, err := os.ReadFile(filepath.Join(dir, lowerID))
	if err != nil {
		return "", nil, err
	}
	if ovl.ValidID(string(lower)) != nil {
		return "", nil, fmt.Errorf("its lower-id %q is not a layer id", lower)
	}
	return "", &ovl.Spec{
		Home: d.home, Lowers: []string{filepath.Join(string(lower), rootDir)},
		Upper: filepath.Join(id, upperDir), Work: filepath.Join(id, workDir),
		Target: filepath.Join(id, mergedDir), Options: d.options,
	}, nil
}

// Put releases a reference; the last one unmounts a container layer.
func (d *Driver) Put(id string) error { return d.mounts.Put(id) }

// Cleanup unmounts every layer and leaves the data.
func (d *Driver) Cleanup() error { return d.mounts.Cleanup() }

// ApplyDiff unpacks diff into layer id. A layer made on an image layer
// becomes an image layer itself: the parent's root is hard-linked into a
// new root and the diff applied there, as Docker's overlay driver does.
// Anything else is applied through the mounted layer.
func (d *Driver) ApplyDiff(id, parent string, diff io.Reader) (int64, error) {
	if !d.Exists(id) {
		return 0, fmt.Errorf("apply diff to layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	if parent != "" && d.linkable(id, parent) {
		var n int64
		var err error
		// A mounted layer stays a container layer: the diff goes
		// through its mount instead.
		if d.mounts.IfUnused(id, func() { n, err = d.applyLinked(id, parent, diff) }) {
			if err != nil {
				return n, fmt.Errorf("apply diff to layer %s: %w", id, err)
			}
			return n, nil
		}
	}
	return d.mounts.NaiveApply(id, diff)
}

// linkable reports whether id is a fresh child of the image layer parent.
func (d *Driver) linkable(id, parent string) bool {
	lower, err := os.ReadFile(filepath.Join(d.dir(id), lowerID))
	return err == nil && string(lower) == parent && exists(filepath.Join(d.dir(parent), rootDir))
}

// applyLinked turns id, which has no references, into an image layer.
func (d *Driver) applyLinked(id, parent string, diff io.Reader) (n int64, err error) {
	dir := d.dir(id)
	tmp, err := os.MkdirTemp(dir, "tmproot")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := fscopy.Copy(filepath.Join(d.dir(parent), rootDir), tmp, fscopy.Hardlink); err != nil {
		return 0, fmt.Errorf("hard-link the root of %s: %w", parent, err)
	}
	if n, err = archive.Apply(tmp, diff, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone}); err != nil {
		return n, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, rootDir)); err != nil {
		return n, err
	}
	for _, p := range []string{upperDir, workDir, mergedDir, lowerID} {
		if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Diff exports layer id's changes against parent by comparing the two
// mounted trees, as Docker's overlay driver did.
func (d *Driver) Diff(id, parent string) (io.ReadCloser, error) {
	return d.mounts.NaiveDiff(id, parent)
}
