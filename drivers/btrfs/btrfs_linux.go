package btrfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/internal/treelayer"
	"github.com/graphprobe/graphprobe/internal/hostsys"
)

// Name is the driver's name as Docker spells it.
const Name = "btrfs"

func init() { drivers.Register(Name, Init) }

// Driver is the btrfs driver in one home directory.
type Driver struct {
	home string

	// Layers: Get, Put, Exists, Cleanup, ApplyDiff and Diff of a driver
	// whose layers are whole trees.
	treelayer.Layers
}

// Init checks that home is on btrfs and makes home/subvolumes. A home on
// any other filesystem is refused with drivers.ErrPrerequisites, which
// dockerd takes as "try the next driver". Nothing is created before the
// checks pass. opts.Mounter is not used: layers are never mounted.
func Init(home string, opts drivers.Options) (drivers.Driver, error) {
	// Look at home if it exists (it may be a mount of its own), else at
	// the data-root that will hold it, as dockerd does.
	testdir := home
	if _, err := os.Stat(testdir); errors.Is(err, fs.ErrNotExist) {
		testdir = filepath.Dir(home)
	}
	backing, err := hostsys.Statfs(testdir)
	if err != nil {
		return nil, fmt.Errorf("init btrfs in %s: %w", home, err)
	}
	if backing.Magic != superMagic {
		return nil, drivers.NotSupported(Name, drivers.ErrPrerequisites,
			"put the data-root on a btrfs filesystem, or choose another storage driver",
			"the data-root is on %s, not btrfs (%s)", backing.Name, testdir)
	}
	if err := parseOptions(opts.StorageOpts); err != nil {
		return nil, err
	}
	for _, dir := range []string{home, filepath.Join(home, "subvolumes")} {
		if err := os.MkdirAll(dir, 0o710); err != nil {
			return nil, fmt.Errorf("init btrfs in %s: %w", home, err)
		}
	}
	d := &Driver{home: home}
	d.Layers.Dir = d.dir
	return d, nil
}

func parseOptions(opts []string) error {
	for _, opt := range opts {
		key, _, ok := strings.Cut(opt, "=")
		if !ok {
			return fmt.Errorf("parse btrfs storage option %q: want key=value", opt)
		}
		switch key = strings.ToLower(strings.TrimSpace(key)); key {
		case "btrfs.min_space":
			return fmt.Errorf("parse btrfs storage option %q: it enables btrfs quota groups, which graphprobe does not implement; drop the option to benchmark btrfs", opt)
		default:
			return fmt.Errorf("parse btrfs storage option %q: unknown option %s for btrfs (dockerd knows btrfs.min_space)", opt, key)
		}
	}
	return nil
}

// Name implements drivers.Driver.
func (d *Driver) Name() string { return Name }

// Home implements drivers.Driver.
func (d *Driver) Home() string { return d.home }

func (d *Driver) subvolumes() string { return filepath.Join(d.home, "subvolumes") }

func (d *Driver) dir(id string) string { return filepath.Join(d.subvolumes(), id) }

// Create makes an empty subvolume for a base layer and a writable
// snapshot of the parent's subvolume for any other.
func (d *Driver) Create(id, parent string) error {
	if _, err := d.CheckCreate(id, parent); err != nil {
		return err
	}
	if _, err := os.Lstat(d.dir(id)); err == nil {
		return fmt.Errorf("create layer %s: %s already exists", id, d.dir(id))
	}
	var err error
	if parent == "" {
		err = subvolCreate(d.subvolumes(), id)
	} else {
		err = snapshot(d.dir(parent), d.subvolumes(), id)
	}
	if err != nil {
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	return nil
}

// Remove destroys the layer's subvolume and any subvolume a container
// made inside it.
func (d *Driver) Remove(id string) error {
	dir, err := d.CheckRemovable(id)
	if err != nil {
		return err
	}
	err = subvolDestroy(d.subvolumes(), id)
	if errors.Is(err, unix.EPERM) {
		// Without CAP_SYS_ADMIN (or user_subvol_rm_allowed) a snapshot
		// destroy is refused, but kernels since 4.18 let the owner
		// rmdir an empty subvolume: empty it and remove it.
		err = os.RemoveAll(dir)
	}
	if err != nil {
		return fmt.Errorf("remove layer %s: %w", id, err)
	}
	return nil
}

// Status gives the backing filesystem and the number of subvolumes.
// dockerd up to 20.10 showed "Build Version" and "Library Version" here:
// the version of the libbtrfs headers it was compiled with, which says
// nothing about the host (Docker 23 dropped them), and which a driver
// built without cgo does not have.
func (d *Driver) Status() [][2]string {
	return treelayer.StatusRows(d.home, d.subvolumes(), "Subvolumes")
}
