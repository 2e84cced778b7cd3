package btrfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/archive"
	"github.com/graphprobe/graphprobe/probe"
)

// Name is the driver's name as Docker spells it.
const Name = "btrfs"

func init() { drivers.Register(Name, Init) }

// Driver is the btrfs driver in one home directory.
type Driver struct {
	home string

	mu   sync.Mutex
	refs map[string]int
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
	fsName, magic, _, _, err := probe.Statfs(testdir)
	if err != nil {
		return nil, fmt.Errorf("init btrfs in %s: %w", home, err)
	}
	if magic != superMagic {
		return nil, drivers.NotSupported(Name, drivers.ErrPrerequisites,
			"put the data-root on a btrfs filesystem, or choose another storage driver",
			"the data-root is on %s, not btrfs (%s)", fsName, testdir)
	}
	if err := parseOptions(opts.StorageOpts); err != nil {
		return nil, err
	}
	for _, dir := range []string{home, filepath.Join(home, "subvolumes")} {
		if err := os.MkdirAll(dir, 0o710); err != nil {
			return nil, fmt.Errorf("init btrfs in %s: %w", home, err)
		}
	}
	return &Driver{home: home, refs: map[string]int{}}, nil
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
	if err := validID(id); err != nil {
		return fmt.Errorf("create layer: %w", err)
	}
	if parent != "" {
		if err := validID(parent); err != nil {
			return fmt.Errorf("create layer %s: parent: %w", id, err)
		}
		if !isDir(d.dir(parent)) {
			return fmt.Errorf("create layer %s: parent %s: %w", id, parent, drivers.ErrLayerNotExist)
		}
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
	if err := validID(id); err != nil {
		return fmt.Errorf("remove layer: %w", err)
	}
	d.mu.Lock()
	n := d.refs[id]
	d.mu.Unlock()
	if n > 0 {
		return fmt.Errorf("remove layer %s: in use (%d references from Get); Put it first", id, n)
	}
	dir := d.dir(id)
	if _, err := os.Lstat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove layer %s: %w", id, drivers.ErrLayerNotExist)
		}
		return fmt.Errorf("remove layer %s: %w", id, err)
	}
	err := subvolDestroy(d.subvolumes(), id)
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

// Get returns the subvolume's directory and takes a reference.
func (d *Driver) Get(id string) (string, error) {
	if err := validID(id); err != nil {
		return "", fmt.Errorf("get layer: %w", err)
	}
	dir := d.dir(id)
	if !isDir(dir) {
		return "", fmt.Errorf("get layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	d.mu.Lock()
	d.refs[id]++
	d.mu.Unlock()
	return dir, nil
}

// Put releases a reference taken by Get.
func (d *Driver) Put(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refs[id] == 0 {
		return fmt.Errorf("put layer %s: %w", id, drivers.ErrNotMounted)
	}
	if d.refs[id]--; d.refs[id] == 0 {
		delete(d.refs, id)
	}
	return nil
}

// Exists reports whether the layer's subvolume exists.
func (d *Driver) Exists(id string) bool {
	return validID(id) == nil && isDir(d.dir(id))
}

// Status gives the backing filesystem and the number of subvolumes.
// dockerd up to 20.10 showed "Build Version" and "Library Version" here:
// the version of the libbtrfs headers it was compiled with, which says
// nothing about the host (Docker 23 dropped them), and which a driver
// built without cgo does not have.
func (d *Driver) Status() [][2]string {
	fsName, _, _, _, err := probe.Statfs(d.home)
	if err != nil {
		fsName = "unknown"
	}
	n := 0
	if entries, err := os.ReadDir(d.subvolumes()); err == nil {
		n = len(entries)
	}
	return [][2]string{
		{"Backing Filesystem", fsName},
		{"Subvolumes", strconv.Itoa(n)},
	}
}

// Cleanup drops every reference; btrfs has no mounts to undo.
func (d *Driver) Cleanup() error {
	d.mu.Lock()
	clear(d.refs)
	d.mu.Unlock()
	return nil
}

// ApplyDiff unpacks the stream into the layer's subvolume, which already
// holds its parent's tree: a whiteout deletes the path below it.
func (d *Driver) ApplyDiff(id, parent string, diff io.Reader) (int64, error) {
	if err := validID(id); err != nil {
		return 0, fmt.Errorf("apply diff: %w", err)
	}
	dir := d.dir(id)
	if !isDir(dir) {
		return 0, fmt.Errorf("apply diff to layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	n, err := archive.Apply(dir, diff, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone})
	if err != nil {
		return n, fmt.Errorf("apply diff to layer %s: %w", id, err)
	}
	return n, nil
}

// Diff compares the layer's tree with its parent's (the naive diff, as
// dockerd's btrfs does).
func (d *Driver) Diff(id, parent string) (io.ReadCloser, error) {
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	dir := d.dir(id)
	if !isDir(dir) {
		return nil, fmt.Errorf("diff layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	var parentDir string
	if parent != "" {
		if err := validID(parent); err != nil {
			return nil, fmt.Errorf("diff layer %s: parent: %w", id, err)
		}
		parentDir = d.dir(parent)
		if !isDir(parentDir) {
			return nil, fmt.Errorf("diff layer %s: parent %s: %w", id, parent, drivers.ErrLayerNotExist)
		}
	}
	rc, err := archive.ExportChanges(dir, parentDir)
	if err != nil {
		return nil, fmt.Errorf("diff layer %s against %q: %w", id, parent, err)
	}
	return rc, nil
}

// validID refuses ids that are not one path element: an id is joined to
// the home directory and must not reach outside it.
func validID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("invalid layer id %q: want one path element", id)
	}
	return nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
