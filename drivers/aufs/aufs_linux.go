package aufs

import (
	"bufio"
	"bytes"
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
	"github.com/graphprobe/graphprobe/drivers/internal/naivediff"
	"github.com/graphprobe/graphprobe/internal/hostsys"
)

// Name is the driver's name as Docker spells it.
const Name = "aufs"

// maxBranches is aufs's limit on the branches of one union (the kernel's
// default CONFIG_AUFS_BRANCH_MAX_127): a layer's own diff plus at most 126
// parents.
const maxBranches = 127

// Statfs magics of the backing filesystems aufs refuses to stack on.
const (
	magicAufs     = 0x61756673
	magicBtrfs    = 0x9123683E
	magicEcryptfs = 0xF15F
)

func init() { drivers.Register(Name, Init) }

// host is what Init reads about the machine, replaceable in tests: the
// proc directory, the statfs of a path, and the page size that bounds
// mount data.
type host struct {
	proc     string
	statfs   func(path string) (name string, magic int64, err error)
	pageSize int
}

func liveHost() host {
	return host{
		proc: "/proc",
		statfs: func(p string) (string, int64, error) {
			backing, err := hostsys.Statfs(p)
			return backing.Name, backing.Magic, err
		},
		pageSize: unix.Getpagesize(),
	}
}

// Driver is the aufs driver in one home directory.
type Driver struct {
	home      string
	mounter   drivers.Mounter
	real      bool // mounter is mount(2) itself
	pageSize  int
	backingFS string
	dirperm1  bool

	// mu serialises Get, Put and Cleanup: dockerd serialises aufs mounts
	// too, and the counts and the mounts must change together.
	mu      sync.Mutex
	refs    map[string]int
	paths   map[string]string
	mounted map[string]bool
}

// Init checks the kernel and the backing filesystem, makes the layout and
// finds out (by a test mount, as dockerd does) whether aufs takes the
// dirperm1 option.
func Init(home string, opts drivers.Options) (drivers.Driver, error) {
	return newDriver(home, opts, liveHost())
}

func newDriver(home string, opts drivers.Options, h host) (*Driver, error) {
	if err := checkKernel(h.proc); err != nil {
		return nil, err
	}
	testdir := home
	if _, err := os.Stat(testdir); errors.Is(err, fs.ErrNotExist) {
		testdir = filepath.Dir(home)
	}
	fsName, magic, err := h.statfs(testdir)
	if err != nil {
		return nil, fmt.Errorf("init aufs in %s: %w", home, err)
	}
	switch magic {
	case magicAufs, magicBtrfs, magicEcryptfs:
		return nil, drivers.NotSupported(Name, drivers.ErrIncompatibleFS,
			"put the data-root on ext4 or xfs, or choose another storage driver",
			"aufs cannot use a %s data-root (%s)", fsName, testdir)
	}
	if len(opts.StorageOpts) > 0 {
		return nil, fmt.Errorf("parse aufs storage option %q: aufs takes no storage options", opts.StorageOpts[0])
	}
	for _, dir := range []string{home, filepath.Join(home, "mnt"), filepath.Join(home, "diff"), filepath.Join(home, "layers")} {
		if err := os.MkdirAll(dir, 0o710); err != nil {
			return nil, fmt.Errorf("init aufs in %s: %w", home, err)
		}
	}
	d := &Driver{
		home:      home,
		mounter:   opts.Mounter,
		pageSize:  h.pageSize,
		backingFS: fsName,
		refs:      map[string]int{},
		paths:     map[string]string{},
		mounted:   map[string]bool{},
	}
	if d.mounter == nil {
		d.mounter, d.real = sysMounter{}, true
	}
	d.removeStale()
	d.dirperm1 = d.probeDirperm1()
	return d, nil
}

// checkKernel refuses a kernel that cannot mount aufs, saying whether
// loading a module could help.
func checkKernel(proc string) error {
	if inUserNS(proc) {
		return drivers.NotSupported(Name, drivers.ErrNotSupported,
			"run dockerd in the initial user namespace, or use fuse-overlayfs",
			"aufs cannot be mounted in a user namespace")
	}
	data, err := os.ReadFile(filepath.Join(proc, "filesystems"))
	if err != nil {
		return drivers.NotSupported(Name, drivers.ErrNotSupported, "", "cannot tell whether the kernel has aufs: %v", err)
	}
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		if f := strings.Fields(s.Text()); len(f) > 0 && f[len(f)-1] == "aufs" {
			return nil
		}
	}
	hint := "load it with `modprobe aufs` (graphprobe select does, unless --no-load-modules); only Ubuntu and Debian kernels ship the module; otherwise use overlay2"
	if _, err := os.Stat(filepath.Join(proc, "modules")); errors.Is(err, fs.ErrNotExist) {
		hint = "this kernel has no loadable module support (no " + filepath.Join(proc, "modules") + "), so `modprobe aufs` cannot add it; only a kernel with aufs built in can run this driver; use overlay2"
	}
	return drivers.NotSupported(Name, drivers.ErrNotSupported, hint,
		"aufs is not in %s", filepath.Join(proc, "filesystems"))
}

// inUserNS reports whether this process runs in a user namespace other
// than the initial one, whose uid_map maps every id to itself.
func inUserNS(proc string) bool {
	b, err := os.ReadFile(filepath.Join(proc, "self", "uid_map"))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

// removeStale finishes removals a crash interrupted: Remove renames a
// layer's directories to <id>-removing before deleting them.
func (d *Driver) removeStale() {
	for _, sub := range []string{"mnt", "diff"} {
		entries, _ := os.ReadDir(filepath.Join(d.home, sub))
		for _, e := range entries {
			if e.IsDir() && strings.HasSuffix(e.Name(), "-removing") {
				_ = os.RemoveAll(filepath.Join(d.home, sub, e.Name()))
			}
		}
	}
}

// probeDirperm1 mounts a one-branch aufs with dirperm1: aufs before 3.18
// (2014) refuses the option, which makes directory permission checks look
// at the top branch only.
func (d *Driver) probeDirperm1() bool {
	base, err := os.MkdirTemp(d.home, ".dirperm1-base-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(base)
	union, err := os.MkdirTemp(d.home, ".dirperm1-union-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(union)
	if err := d.mounter.Mount("none", union, "aufs", 0, "br:"+base+",dirperm1,"+xinoOpt); err != nil {
		return false
	}
	_ = d.unmount(union)
	return true
}

// Name implements drivers.Driver.
func (d *Driver) Name() string { return Name }

// Home implements drivers.Driver.
func (d *Driver) Home() string { return d.home }

func (d *Driver) layersFile(id string) string { return filepath.Join(d.home, "layers", id) }
func (d *Driver) diffDir(id string) string    { return filepath.Join(d.home, "diff", id) }
func (d *Driver) mntDir(id string) string     { return filepath.Join(d.home, "mnt", id) }

// parentIDs reads layers/<id>: the layer's parents, nearest first.
func (d *Driver) parentIDs(id string) ([]string, error) {
	b, err := os.ReadFile(d.layersFile(id))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, drivers.ErrLayerNotExist
		}
		return nil, err
	}
	var ids []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			ids = append(ids, line)
		}
	}
	return ids, nil
}

// Create makes diff/<id> and mnt/<id> and writes layers/<id>: the parent
// and the parent's own parents.
func (d *Driver) Create(id, parent string) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("create layer: %w", err)
	}
	if _, err := os.Lstat(d.layersFile(id)); err == nil {
		return fmt.Errorf("create layer %s: %s already exists", id, d.layersFile(id))
	}
	var ids []string
	if parent != "" {
		if err := validID(parent); err != nil {
			return fmt.Errorf("create layer %s: parent: %w", id, err)
		}
		pids, err := d.parentIDs(parent)
		if err != nil {
			return fmt.Errorf("create layer %s: parent %s: %w", id, parent, err)
		}
		ids = append([]string{parent}, pids...)
	}
	if len(ids)+1 > maxBranches {
		return fmt.Errorf("create layer %s on %s: %w: aufs mounts at most %d branches, and the layer would need %d",
			id, parent, drivers.ErrMaxDepth, maxBranches, len(ids)+1)
	}
	for _, dir := range []string{d.mntDir(id), d.diffDir(id)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			d.removeDirs(id)
			return fmt.Errorf("create layer %s: %w", id, err)
		}
	}
	var b strings.Builder
	for _, p := range ids {
		b.WriteString(p + "\n")
	}
	if err := os.WriteFile(d.layersFile(id), []byte(b.String()), 0o644); err != nil {
		_ = os.Remove(d.layersFile(id))
		d.removeDirs(id)
		return fmt.Errorf("create layer %s: %w", id, err)
	}
	return nil
}

func (d *Driver) removeDirs(id string) {
	_ = os.RemoveAll(d.mntDir(id))
	_ = os.RemoveAll(d.diffDir(id))
}

// Remove unmounts a stale mount of the layer, then deletes layers/<id>
// and, each renamed out of the way first so that a crash leaves nothing
// dockerd mistakes for a layer, diff/<id> and mnt/<id>.
func (d *Driver) Remove(id string) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("remove layer: %w", err)
	}
	d.mu.Lock()
	n, stale := d.refs[id], d.mounted[id]
	if n == 0 && stale {
		if err := d.unmount(d.mntDir(id)); err != nil {
			d.mu.Unlock()
			return fmt.Errorf("remove layer %s: %w", id, err)
		}
		delete(d.mounted, id)
	}
	d.mu.Unlock()
	if n > 0 {
		return fmt.Errorf("remove layer %s: in use (%d references from Get); Put it first", id, n)
	}
	if err := os.Remove(d.layersFile(id)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove layer %s: %w", id, drivers.ErrLayerNotExist)
		}
		return fmt.Errorf("remove layer %s: %w", id, err)
	}
	for _, dir := range []string{d.diffDir(id), d.mntDir(id)} {
		if err := atomicRemove(dir); err != nil {
			return fmt.Errorf("remove layer %s: %w", id, err)
		}
	}
	return nil
}

func atomicRemove(dir string) error {
	gone := dir + "-removing"
	if err := os.Rename(dir, gone); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.RemoveAll(gone)
}

// Get mounts the layer's union on mnt/<id> and returns it; a layer with
// no parents is not mounted, its diff/<id> is the whole tree.
func (d *Driver) Get(id string) (string, error) {
	if err := validID(id); err != nil {
		return "", fmt.Errorf("get layer: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refs[id] > 0 {
		d.refs[id]++
		return d.paths[id], nil
	}
	parents, err := d.parentIDs(id)
	if err != nil {
		return "", fmt.Errorf("get layer %s: %w", id, err)
	}
	path := d.diffDir(id)
	if len(parents) > 0 {
		if len(parents)+1 > maxBranches {
			return "", fmt.Errorf("get layer %s: %w: %d branches, aufs mounts at most %d", id, drivers.ErrMaxDepth, len(parents)+1, maxBranches)
		}
		ro := make([]string, len(parents))
		for i, p := range parents {
			ro[i] = d.diffDir(p)
		}
		path = d.mntDir(id)
		if err := d.mount(path, d.diffDir(id), ro); err != nil {
			return "", fmt.Errorf("get layer %s: %w", id, err)
		}
		d.mounted[id] = true
	}
	d.refs[id] = 1
	d.paths[id] = path
	return path, nil
}

// Put releases a reference; the last one unmounts the union.
func (d *Driver) Put(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refs[id] == 0 {
		return fmt.Errorf("put layer %s: %w", id, drivers.ErrNotMounted)
	}
	if d.refs[id]--; d.refs[id] > 0 {
		return nil
	}
	delete(d.refs, id)
	delete(d.paths, id)
	if d.mounted[id] {
		// On failure the layer stays marked mounted, for Cleanup or
		// Remove to try again.
		if err := d.unmount(d.mntDir(id)); err != nil {
			return fmt.Errorf("put layer %s: %w", id, err)
		}
		delete(d.mounted, id)
	}
	return nil
}

// Exists reports whether layers/<id> exists, as dockerd decides it.
func (d *Driver) Exists(id string) bool {
	if validID(id) != nil {
		return false
	}
	_, err := os.Lstat(d.layersFile(id))
	return err == nil
}

// Status gives the rows `docker info` shows for aufs.
func (d *Driver) Status() [][2]string {
	n := 0
	if entries, err := os.ReadDir(filepath.Join(d.home, "layers")); err == nil {
		for _, e := range entries {
			if !e.IsDir() {
				n++
			}
		}
	}
	return [][2]string{
		{"Root Dir", d.home},
		{"Backing Filesystem", d.backingFS},
		{"Dirs", strconv.Itoa(n)},
		{"Dirperm1 Supported", strconv.FormatBool(d.dirperm1)},
	}
}

// Cleanup unmounts every union this driver mounted and, with real mounts,
// any aufs still mounted below mnt/ from an earlier run.
func (d *Driver) Cleanup() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for id := range d.mounted {
		if err := d.unmount(d.mntDir(id)); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(d.mounted, id)
	}
	if d.real {
		entries, _ := os.ReadDir(filepath.Join(d.home, "mnt"))
		for _, e := range entries {
			p := filepath.Join(d.home, "mnt", e.Name())
			if mnt, err := hostsys.Statfs(p); err == nil && mnt.Magic == magicAufs {
				if err := d.unmount(p); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	clear(d.refs)
	clear(d.paths)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleanup aufs in %s: %w", d.home, err)
	}
	return nil
}

// isParent reports whether parent is the layer's direct parent ("" for a
// base layer): then the layer's diff is diff/<id> itself.
func (d *Driver) isParent(id, parent string) (bool, error) {
	parents, err := d.parentIDs(id)
	if err != nil {
		return false, err
	}
	if len(parents) == 0 {
		return parent == "", nil
	}
	return parents[0] == parent, nil
}

// ApplyDiff unpacks the stream into diff/<id>, keeping its whiteouts: they
// are aufs's own on-disk form. Against any layer other than the direct
// parent it falls back to applying through the mounted union, as dockerd.
func (d *Driver) ApplyDiff(id, parent string, diff io.Reader) (int64, error) {
	if err := validID(id); err != nil {
		return 0, fmt.Errorf("apply diff: %w", err)
	}
	direct, err := d.isParent(id, parent)
	if err != nil {
		return 0, fmt.Errorf("apply diff to layer %s: %w", id, err)
	}
	var n int64
	if direct {
		n, err = archive.Apply(d.diffDir(id), diff, archive.ApplyOptions{Whiteouts: archive.WhiteoutAUFS})
	} else {
		n, err = naivediff.Apply(d, id, diff)
	}
	if err != nil {
		return n, fmt.Errorf("apply diff to layer %s: %w", id, err)
	}
	return n, nil
}

// Diff tars diff/<id> as it is (aufs's bookkeeping entries left out)
// when parent is the direct parent, and compares mounted trees otherwise.
func (d *Driver) Diff(id, parent string) (io.ReadCloser, error) {
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	direct, err := d.isParent(id, parent)
	if err != nil {
		return nil, fmt.Errorf("diff layer %s: %w", id, err)
	}
	var rc io.ReadCloser
	if direct {
		rc, err = archive.Export(d.diffDir(id), archive.ExportOptions{Whiteouts: archive.WhiteoutAUFS})
	} else {
		rc, err = naivediff.Diff(d, id, parent)
	}
	if err != nil {
		return nil, fmt.Errorf("diff layer %s against %q: %w", id, parent, err)
	}
	return rc, nil
}

// NativeDiff is true: Diff against the direct parent is the layer's own
// directory, whiteouts and opaque markers exactly as applied.
func (d *Driver) NativeDiff() bool { return true }

// validID refuses ids that are not one path element: an id is joined to
// the home directory and must not reach outside it.
func validID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00\n") {
		return fmt.Errorf("invalid layer id %q: want one path element", id)
	}
	return nil
}
