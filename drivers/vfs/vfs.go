package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/internal/fscopy"
	"github.com/graphprobe/graphprobe/drivers/internal/treelayer"
)

// Name is the driver's name as Docker spells it.
const Name = "vfs"

// brokenXattrs is the only value Docker accepts for vfs.xattrs: the name
// says what a copy without security.capability does to binaries.
const brokenXattrs = "i_want_broken_containers"

func init() { drivers.Register(Name, Init) }

// Driver is the vfs driver in one home directory.
type Driver struct {
	home string
	// bestEffortXattrs: vfs.xattrs=i_want_broken_containers.
	bestEffortXattrs bool

	// Layers: Get, Put, Exists, Cleanup, ApplyDiff and Diff of a driver
	// whose layers are whole trees.
	treelayer.Layers
}

// Init makes home/dir and returns the driver. vfs needs nothing from the
// kernel, so it never returns a not-supported class error; an unknown or
// unimplemented storage option is an error, as in dockerd. opts.Mounter
// is not used: vfs mounts nothing.
func Init(home string, opts drivers.Options) (drivers.Driver, error) {
	d := &Driver{home: home}
	d.Layers.Dir = d.dir
	if err := d.parseOptions(opts.StorageOpts); err != nil {
		return nil, err
	}
	// 0710 as dockerd makes them: traversable by the remapped root group,
	// not listable by others.
	for _, dir := range []string{home, filepath.Join(home, "dir")} {
		if err := os.MkdirAll(dir, 0o710); err != nil {
			return nil, fmt.Errorf("init vfs in %s: %w", home, err)
		}
	}
	return d, nil
}

func (d *Driver) parseOptions(opts []string) error {
	for _, opt := range opts {
		key, val, ok := strings.Cut(opt, "=")
		if !ok {
			return fmt.Errorf("parse vfs storage option %q: want key=value", opt)
		}
		switch key = strings.ToLower(strings.TrimSpace(key)); key {
		case "vfs.xattrs":
			if strings.TrimSpace(val) != brokenXattrs {
				return fmt.Errorf("parse vfs storage option %q: do not set vfs.xattrs unless you accept containers whose file capabilities are dropped (the only value is %s)", opt, brokenXattrs)
			}
			d.bestEffortXattrs = true
		case "size":
			return fmt.Errorf("parse vfs storage option %q: vfs sizes need xfs project quotas, which graphprobe does not implement; drop the option to benchmark vfs", opt)
		default:
			return fmt.Errorf("parse vfs storage option %q: unknown option %s for vfs (dockerd knows size and vfs.xattrs)", opt, key)
		}
	}
	return nil
}

// Name implements drivers.Driver.
func (d *Driver) Name() string { return Name }

// Home implements drivers.Driver.
func (d *Driver) Home() string { return d.home }

func (d *Driver) dir(id string) string { return filepath.Join(d.home, "dir", id) }

// Create copies parent's tree into a new layer: the whole cost of vfs.
func (d *Driver) Create(id, parent string) error {
	parentDir, err := d.CheckCreate(id, parent)
	if err != nil {
		return err
	}
	dir := d.dir(id)
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create layer %s: %s already exists", id, dir)
		}
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	if parent == "" {
		return nil
	}
	err = fscopy.CopyWith(parentDir, dir, fscopy.Options{Mode: fscopy.Content, BestEffortXattrs: d.bestEffortXattrs})
	if err != nil {
		// A half copy is not a layer: leave no directory that Exists
		// would report.
		_ = os.RemoveAll(dir)
		return fmt.Errorf("create layer %s from %s: %w", id, parent, err)
	}
	return nil
}

// Remove deletes the layer's directory. A layer with references from Get
// is refused: in a driver that mounts, it would be busy.
func (d *Driver) Remove(id string) error {
	dir, err := d.CheckRemovable(id)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove layer %s: %w", id, err)
	}
	return nil
}

// Status gives the backing filesystem and the number of layers; dockerd
// itself shows no rows for vfs except the best-effort xattrs warning.
func (d *Driver) Status() [][2]string {
	rows := treelayer.StatusRows(d.home, filepath.Join(d.home, "dir"), "Dirs")
	if d.bestEffortXattrs {
		rows = append(rows, [2]string{"Extended file attributes", "best-effort"})
	}
	return rows
}
