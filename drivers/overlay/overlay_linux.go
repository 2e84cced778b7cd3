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
	"github.com/graphprobe/graphprobe/drivers/internal/naivediff"
	"github.com/graphprobe/graphprobe/drivers/internal/ovl"
	"github.com/graphprobe/graphprobe/drivers/internal/refcount"
	"golang.org/x/sys/unix"
)

// Name is the driver's name as Docker spells it.
const Name = "overlay"

// Names in a layer directory.
const (
	rootDir   = "root"
	upperDir  = "upper"
	workDir   = "work"
	mergedDir = "merged"
	lowerID   = "lower-id"
)

func init() { drivers.Register(Name, Init) }

// Driver is an initialised overlay home.
type Driver struct {
	home      string
	refs      refcount.Counter
	mounter   drivers.Mounter
	backingFS string
	options   []string
}

// Init checks that the host can run overlay in home and makes the home.
func Init(home string, opts drivers.Options) (drivers.Driver, error) {
	for _, o := range opts.StorageOpts {
		k, _, _ := strings.Cut(o, "=")
		return nil, fmt.Errorf("%s: unknown storage option %s", Name, k)
	}
	testdir := ovl.TestDir(home)
	if err := ovl.HaveOverlay(Name); err != nil {
		return nil, err
	}
	fsName, err := ovl.BackingFS(Name, testdir)
	if err != nil {
		return nil, err
	}
	if err := ovl.CheckDType(Name, testdir, fsName); err != nil {
		return nil, err
	}
	// index=off, as for overlay2: with the index on, an upper dir is tied
	// to the lower it was first mounted over.
	options := ovl.IndexOff()
	if err := ovl.TestMount(Name, testdir, 1, options); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(home, 0o710); err != nil {
		return nil, fmt.Errorf("%s: create driver home: %w", Name, err)
	}
	return &Driver{home: home, mounter: opts.Mounter, backingFS: fsName, options: options}, nil
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
	e := d.refs.Lock(id)
	defer e.Unlock()
	if e.Count > 0 {
		return fmt.Errorf("remove layer %s: it is mounted (%d references); release it with Put first", id, e.Count)
	}
	if merged := filepath.Join(d.dir(id), mergedDir); ovl.Mounted(merged) {
		if err := d.unmount(merged); err != nil {
			return fmt.Errorf("remove layer %s: %w", id, err)
		}
	}
	if err := os.RemoveAll(d.dir(id)); err != nil {
		return fmt.Errorf("remove layer %s: %w", id, err)
	}
	return nil
}

// Get returns an image layer's root, or mounts a container layer's upper
// over its image's root.
func (d *Driver) Get(id string) (string, error) {
	if !d.Exists(id) {
		return "", fmt.Errorf("get layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	e := d.refs.Lock(id)
	defer e.Unlock()
	if e.Count > 0 {
		e.Count++
		return e.Path, nil
	}
	dir := d.dir(id)
	if root := filepath.Join(dir, rootDir); exists(root) {
		e.Count, e.Path = 1, root
		return root, nil
	}
	lower, err := os.ReadFile(filepath.Join(dir, lowerID))
	if err != nil {
		return "", fmt.Errorf("get layer %s: %w", id, err)
	}
	if ovl.ValidID(string(lower)) != nil {
		return "", fmt.Errorf("get layer %s: its lower-id %q is not a layer id", id, lower)
	}
	merged := filepath.Join(dir, mergedDir)
	if err := os.Mkdir(merged, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("get layer %s: %w", id, err)
	}
	if !ovl.Mounted(merged) {
		spec := ovl.Spec{
			Home: d.home, Lowers: []string{filepath.Join(string(lower), rootDir)},
			Upper: filepath.Join(id, upperDir), Work: filepath.Join(id, workDir),
			Target: filepath.Join(id, mergedDir), Options: d.options,
		}
		if _, err := spec.Mount(ovl.Auto, d.mounter); err != nil {
			unix.Rmdir(merged)
			return "", fmt.Errorf("get layer %s: %w", id, err)
		}
	}
	e.Count, e.Path = 1, merged
	return merged, nil
}

// Put releases a reference; the last one unmounts a container layer.
func (d *Driver) Put(id string) error {
	e := d.refs.Lock(id)
	defer e.Unlock()
	if e.Count == 0 {
		return fmt.Errorf("put layer %s: %w", id, drivers.ErrNotMounted)
	}
	if e.Count > 1 {
		e.Count--
		return nil
	}
	if filepath.Base(e.Path) == mergedDir {
		if err := d.unmount(e.Path); err != nil {
			return fmt.Errorf("put layer %s: %w", id, err)
		}
		unix.Rmdir(e.Path)
	}
	e.Count, e.Path = 0, ""
	return nil
}

func (d *Driver) unmount(target string) error {
	if d.mounter != nil {
		return d.mounter.Unmount(target, unix.MNT_DETACH)
	}
	return ovl.Unmount(target)
}

// Cleanup unmounts every layer and leaves the data.
func (d *Driver) Cleanup() error {
	var errs []error
	for _, id := range d.refs.Held() {
		e := d.refs.Lock(id)
		if e.Count > 0 && filepath.Base(e.Path) == mergedDir {
			if err := d.unmount(e.Path); err != nil {
				errs = append(errs, err)
			}
			unix.Rmdir(e.Path)
		}
		e.Count, e.Path = 0, ""
		e.Unlock()
	}
	if d.mounter == nil {
		if err := ovl.UnmountUnder(d.home); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: clean up %s: %w", Name, d.home, err)
	}
	return nil
}

// ApplyDiff unpacks diff into layer id. A layer made on an image layer
// becomes an image layer itself: the parent's root is hard-linked into a
// new root and the diff applied there, as Docker's overlay driver does.
// Anything else is applied through the mounted layer.
func (d *Driver) ApplyDiff(id, parent string, diff io.Reader) (int64, error) {
	if !d.Exists(id) {
		return 0, fmt.Errorf("apply diff to layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	if parent != "" && d.linkable(id, parent) {
		n, done, err := d.applyLinked(id, parent, diff)
		if done || err != nil {
			if err != nil {
				err = fmt.Errorf("apply diff to layer %s: %w", id, err)
			}
			return n, err
		}
	}
	n, err := naivediff.Apply(d, id, diff)
	if err != nil {
		return n, fmt.Errorf("apply diff to layer %s: %w", id, err)
	}
	return n, nil
}

// linkable reports whether id is a fresh child of the image layer parent.
func (d *Driver) linkable(id, parent string) bool {
	lower, err := os.ReadFile(filepath.Join(d.dir(id), lowerID))
	return err == nil && string(lower) == parent && exists(filepath.Join(d.dir(parent), rootDir))
}

// applyLinked turns id into an image layer; done is false when the layer
// is mounted and the diff must go through the mount instead.
func (d *Driver) applyLinked(id, parent string, diff io.Reader) (n int64, done bool, err error) {
	e := d.refs.Lock(id)
	defer e.Unlock()
	if e.Count > 0 {
		return 0, false, nil
	}
	dir := d.dir(id)
	tmp, err := os.MkdirTemp(dir, "tmproot")
	if err != nil {
		return 0, true, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := fscopy.Copy(filepath.Join(d.dir(parent), rootDir), tmp, fscopy.Hardlink); err != nil {
		return 0, true, fmt.Errorf("hard-link the root of %s: %w", parent, err)
	}
	if n, err = archive.Apply(tmp, diff, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone}); err != nil {
		return n, true, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, rootDir)); err != nil {
		return n, true, err
	}
	for _, p := range []string{upperDir, workDir, mergedDir, lowerID} {
		if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
			return n, true, err
		}
	}
	return n, true, nil
}

// Diff exports layer id's changes against parent by comparing the two
// mounted trees, as Docker's overlay driver did.
func (d *Driver) Diff(id, parent string) (io.ReadCloser, error) {
	if !d.Exists(id) {
		return nil, fmt.Errorf("diff layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	rc, err := naivediff.Diff(d, id, parent)
	if err != nil {
		return nil, fmt.Errorf("diff layer %s: %w", id, err)
	}
	return rc, nil
}
