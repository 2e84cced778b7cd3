package overlay2

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/archive"
	"github.com/graphprobe/graphprobe/drivers/internal/naivediff"
	"github.com/graphprobe/graphprobe/drivers/internal/ovl"
	"github.com/graphprobe/graphprobe/drivers/internal/refcount"
	"golang.org/x/sys/unix"
)

// Name is the driver's name as Docker spells it.
const Name = "overlay2"

func init() { drivers.Register(Name, Init) }

// Driver is an initialised overlay2 home.
type Driver struct {
	home      string
	layout    ovl.Layout
	refs      refcount.Counter
	mounter   drivers.Mounter
	backingFS string
	metacopy  bool
	// options go into every mount's data ("index=off").
	options []string
	// method is how stacks are mounted; Auto outside tests.
	method ovl.Method

	diffOnce sync.Once
	// naiveReason is why native diff cannot be used, "" when it can.
	naiveReason string
	// forceNaive makes Diff and ApplyDiff take the naive path (tests).
	forceNaive bool
}

// Init checks that the host can run overlay2 in home and prepares the home.
func Init(home string, opts drivers.Options) (drivers.Driver, error) {
	if err := parseOptions(opts.StorageOpts); err != nil {
		return nil, err
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
	options := ovl.IndexOff()
	if err := ovl.TestMount(Name, testdir, 2, options); err != nil {
		return nil, err
	}
	metacopy, err := ovl.UsingMetacopy(testdir, options)
	if err != nil {
		return nil, fmt.Errorf("%s: check for metacopy: %w", Name, err)
	}
	layout := ovl.Layout{Home: home}
	if err := layout.Init(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return &Driver{
		home: home, layout: layout, mounter: opts.Mounter, backingFS: fsName,
		metacopy: metacopy, options: options, method: ovl.Auto,
	}, nil
}

// parseOptions accepts the storage options dockerd accepts for overlay2.
func parseOptions(opts []string) error {
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return fmt.Errorf("%s: storage option %q: want key=value", Name, o)
		}
		switch strings.ToLower(k) {
		case "overlay2.override_kernel_check":
			// Ignored by dockerd since 19.03.7: the test mount decides.
			if _, err := strconv.ParseBool(v); err != nil {
				return fmt.Errorf("%s: storage option %s: %w", Name, o, err)
			}
		case "overlay2.size":
			return fmt.Errorf("%s: storage option %s: per-container size limits need xfs project quotas, which graphprobe does not set up", Name, o)
		default:
			return fmt.Errorf("%s: unknown storage option %s", Name, k)
		}
	}
	return nil
}

func (d *Driver) Name() string { return Name }
func (d *Driver) Home() string { return d.home }

// Status gives the rows `docker info` shows for overlay2.
func (d *Driver) Status() [][2]string {
	return [][2]string{
		{"Backing Filesystem", d.backingFS},
		{"Supports d_type", "true"},
		{"Using metacopy", strconv.FormatBool(d.metacopy)},
		{"Native Overlay Diff", strconv.FormatBool(d.NativeDiff())},
		{"userxattr", "false"},
	}
}

// NativeDiff reports whether Diff tars diff/ as it is. It is decided on
// first use, by a test mount in the home, as Docker does.
func (d *Driver) NativeDiff() bool {
	d.diffOnce.Do(func() {
		if err := ovl.NativeDiff(d.home, d.options); err != nil {
			d.naiveReason = err.Error()
		}
	})
	return d.naiveReason == "" && !d.forceNaive
}

// Exists reports whether layer id exists.
func (d *Driver) Exists(id string) bool { return d.layout.Exists(id) }

// Create makes layer id on parent.
func (d *Driver) Create(id, parent string) error {
	if err := d.layout.Create(id, parent); err != nil {
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	return nil
}

// Remove deletes layer id, which must not be mounted.
func (d *Driver) Remove(id string) error {
	if err := ovl.ValidID(id, ovl.LinkDir); err != nil {
		return fmt.Errorf("remove layer: %w", err)
	}
	e := d.refs.Lock(id)
	defer e.Unlock()
	if e.Count > 0 {
		return fmt.Errorf("remove layer %s: it is mounted (%d references); release it with Put first", id, e.Count)
	}
	merged := filepath.Join(d.layout.Dir(id), ovl.MergedDir)
	if ovl.Mounted(merged) {
		// Left by an earlier run in this namespace.
		if err := d.unmount(merged); err != nil {
			return fmt.Errorf("remove layer %s: %w", id, err)
		}
	}
	return d.layout.Remove(id)
}

// Get mounts layer id and returns its root: the diff of a base layer, the
// merged overlay of any other.
func (d *Driver) Get(id string) (string, error) {
	if !d.layout.Exists(id) {
		return "", fmt.Errorf("get layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	e := d.refs.Lock(id)
	defer e.Unlock()
	if e.Count > 0 {
		e.Count++
		return e.Path, nil
	}
	dir := d.layout.Dir(id)
	lowers, err := d.layout.Lowers(id)
	if err != nil {
		return "", fmt.Errorf("get layer %s: %w", id, err)
	}
	if len(lowers) == 0 {
		e.Count, e.Path = 1, filepath.Join(dir, ovl.DiffDir)
		return e.Path, nil
	}
	merged := filepath.Join(dir, ovl.MergedDir)
	if err := os.Mkdir(merged, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("get layer %s: %w", id, err)
	}
	if !ovl.Mounted(merged) {
		if _, err := d.spec(id, lowers).Mount(d.method, d.mounter); err != nil {
			unix.Rmdir(merged)
			return "", fmt.Errorf("get layer %s: %w", id, err)
		}
	}
	e.Count, e.Path = 1, merged
	return merged, nil
}

// spec is the mount of layer id over lowers. A committed layer (one with
// children) is mounted read-only with its diff as the top lower, as
// Docker does: writing to it would change its children.
func (d *Driver) spec(id string, lowers []string) ovl.Spec {
	s := ovl.Spec{Home: d.home, Target: filepath.Join(id, ovl.MergedDir), Options: d.options}
	if d.layout.Committed(id) {
		s.Lowers = append([]string{filepath.Join(id, ovl.DiffDir)}, lowers...)
		return s
	}
	s.Lowers = lowers
	s.Upper, s.Work = filepath.Join(id, ovl.DiffDir), filepath.Join(id, ovl.WorkDir)
	return s
}

// Put releases a reference; the last one unmounts.
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
	if filepath.Base(e.Path) == ovl.MergedDir {
		if err := d.unmount(e.Path); err != nil {
			return fmt.Errorf("put layer %s: %w", id, err)
		}
		// Removing the mount point also detaches copies of the mount
		// in other namespaces (Linux 3.18+), as Docker relies on.
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
		if e.Count > 0 && filepath.Base(e.Path) == ovl.MergedDir {
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

// ApplyDiff unpacks diff into layer id. With native diff and id's real
// parent, the stream goes straight into diff/ with overlay whiteouts;
// otherwise it is applied through the mounted layer.
func (d *Driver) ApplyDiff(id, parent string, diff io.Reader) (int64, error) {
	if !d.layout.Exists(id) {
		return 0, fmt.Errorf("apply diff to layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	if !d.NativeDiff() || !d.layout.IsParent(id, parent) {
		n, err := naivediff.Apply(d, id, diff)
		if err != nil {
			return n, fmt.Errorf("apply diff to layer %s: %w", id, err)
		}
		return n, nil
	}
	n, err := archive.Apply(filepath.Join(d.layout.Dir(id), ovl.DiffDir), diff, archive.ApplyOptions{Whiteouts: archive.WhiteoutOverlay})
	if err != nil {
		return n, fmt.Errorf("apply diff to layer %s: %w", id, err)
	}
	return n, nil
}

// Diff exports layer id's changes against parent.
func (d *Driver) Diff(id, parent string) (io.ReadCloser, error) {
	if !d.layout.Exists(id) {
		return nil, fmt.Errorf("diff layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	var rc io.ReadCloser
	var err error
	if !d.NativeDiff() || !d.layout.IsParent(id, parent) {
		rc, err = naivediff.Diff(d, id, parent)
	} else {
		rc, err = archive.Export(filepath.Join(d.layout.Dir(id), ovl.DiffDir), archive.ExportOptions{Whiteouts: archive.WhiteoutOverlay})
	}
	if err != nil {
		return nil, fmt.Errorf("diff layer %s: %w", id, err)
	}
	return rc, nil
}
