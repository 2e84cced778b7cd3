package fuseoverlayfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/archive"
	"github.com/graphprobe/graphprobe/drivers/internal/naivediff"
	"github.com/graphprobe/graphprobe/drivers/internal/nsthread"
	"github.com/graphprobe/graphprobe/drivers/internal/ovl"
	"github.com/graphprobe/graphprobe/drivers/internal/refcount"
	"github.com/graphprobe/graphprobe/probe"
	"golang.org/x/sys/unix"
)

// Name is the driver's name as Docker spells it.
const Name = "fuse-overlayfs"

// Binary is the program that mounts.
const Binary = "fuse-overlayfs"

// minKernel is Docker's requirement.
const minKernel = "4.18"

// mountTimeout bounds the wait for a mount to appear and for a daemon to
// exit after its unmount; a healthy one takes milliseconds.
const mountTimeout = 10 * time.Second

func init() { drivers.Register(Name, Init) }

// Driver is an initialised fuse-overlayfs home.
type Driver struct {
	home      string
	layout    ovl.Layout
	refs      refcount.Counter
	bin       string
	backingFS string
}

// Init checks that the host can run fuse-overlayfs in home and prepares
// the home.
func Init(home string, opts drivers.Options) (drivers.Driver, error) {
	if opts.Mounter != nil {
		return nil, fmt.Errorf("%s: mounts are made by the %s binary; a Mounter cannot stand in for it", Name, Binary)
	}
	for _, o := range opts.StorageOpts {
		k, _, _ := strings.Cut(o, "=")
		return nil, fmt.Errorf("%s: unknown storage option %s (%s takes none)", Name, k, Name)
	}
	bin, err := exec.LookPath(Binary)
	if err != nil {
		return nil, drivers.NotSupported(Name, drivers.ErrPrerequisites, "install fuse-overlayfs (Debian and Ubuntu: apt-get install fuse-overlayfs)",
			"the %s binary is not on PATH", Binary)
	}
	if _, err := os.Stat(devFuse); err != nil {
		return nil, drivers.NotSupported(Name, drivers.ErrPrerequisites, "load the fuse module, or give the container the device (docker run --device /dev/fuse)",
			"%s is missing: %v", devFuse, err)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, fmt.Errorf("%s: uname: %w", Name, err)
	}
	if err := checkKernel(unix.ByteSliceToString(u.Release[:])); err != nil {
		return nil, err
	}
	testdir := ovl.TestDir(home)
	fsName, _, _, _, err := probe.Statfs(testdir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	d := &Driver{home: home, layout: ovl.Layout{Home: home}, bin: bin, backingFS: fsName}
	if err := d.testMount(testdir); err != nil {
		return nil, err
	}
	if err := d.layout.Init(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return d, nil
}

// devFuse is the device fuse-overlayfs talks to the kernel through.
var devFuse = "/dev/fuse"

// checkKernel applies Docker's version rule. A release that cannot be
// parsed is let through: the test mount that follows decides.
func checkKernel(release string) error {
	kv, err := probe.ParseKernelRelease(release)
	if err == nil && !kv.AtLeast(minKernel) {
		return drivers.NotSupported(Name, drivers.ErrNotSupported, "upgrade the kernel, or use vfs",
			"kernel %s is older than %s, which Docker requires for fuse-overlayfs", release, minKernel)
	}
	return nil
}

// testMount mounts two lowers, an upper and a work dir in a scratch dir
// of dir, and reads a lower file through the mount.
func (d *Driver) testMount(dir string) error {
	scratch, err := probe.MakeScratch(dir, "fuse-overlayfs-check")
	if err != nil {
		return fmt.Errorf("%s: test mount: %w", Name, err)
	}
	defer os.RemoveAll(scratch)
	for _, sub := range []string{"lower1", "lower2", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(scratch, sub), 0o755); err != nil {
			return fmt.Errorf("%s: test mount: %w", Name, err)
		}
	}
	if err := os.WriteFile(filepath.Join(scratch, "lower1", "f"), []byte("ok"), 0o644); err != nil {
		return fmt.Errorf("%s: test mount: %w", Name, err)
	}
	spec := ovl.Spec{Home: scratch, Lowers: []string{"lower2", "lower1"}, Upper: "upper", Work: "work", Target: "merged"}
	p, err := d.mount(spec)
	if err != nil {
		return drivers.NotSupported(Name, drivers.ErrNotSupported, "", "a test mount in %s failed: %v", dir, err)
	}
	b, rerr := os.ReadFile(filepath.Join(scratch, "merged", "f"))
	if err := d.unmount(filepath.Join(scratch, "merged"), p); err != nil {
		return fmt.Errorf("%s: test mount: %w", Name, err)
	}
	if rerr != nil || string(b) != "ok" {
		return drivers.NotSupported(Name, drivers.ErrNotSupported, "", "a test mount in %s does not show its lower layer's file (%q, %v)", dir, b, rerr)
	}
	return nil
}

func (d *Driver) Name() string { return Name }
func (d *Driver) Home() string { return d.home }

// Status gives the backing filesystem; Docker shows no rows for this
// driver.
func (d *Driver) Status() [][2]string {
	return [][2]string{{"Backing Filesystem", d.backingFS}}
}

// Exists reports whether layer id exists.
func (d *Driver) Exists(id string) bool { return d.layout.Exists(id) }

// Create makes layer id on parent, laid out as overlay2 lays it out.
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
	if merged := filepath.Join(d.layout.Dir(id), ovl.MergedDir); ovl.Mounted(merged) {
		if err := d.unmount(merged, nil); err != nil {
			return fmt.Errorf("remove layer %s: %w", id, err)
		}
	}
	return d.layout.Remove(id)
}

// Get mounts layer id with fuse-overlayfs and returns its root (the diff
// of a base layer, which needs no mount).
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
	var p *process
	if !ovl.Mounted(merged) {
		spec := ovl.Spec{Home: d.home, Target: filepath.Join(id, ovl.MergedDir)}
		if d.layout.Committed(id) {
			// Read-only, as overlay2 mounts a layer with children.
			spec.Lowers = append([]string{filepath.Join(id, ovl.DiffDir)}, lowers...)
		} else {
			spec.Lowers = lowers
			spec.Upper, spec.Work = filepath.Join(id, ovl.DiffDir), filepath.Join(id, ovl.WorkDir)
		}
		if p, err = d.mount(spec); err != nil {
			unix.Rmdir(merged)
			return "", fmt.Errorf("get layer %s: %w", id, err)
		}
	}
	e.Count, e.Path, e.Value = 1, merged, p
	return merged, nil
}

// Put releases a reference; the last one unmounts and waits for the
// fuse-overlayfs process to exit.
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
		p, _ := e.Value.(*process)
		if err := d.unmount(e.Path, p); err != nil {
			return fmt.Errorf("put layer %s: %w", id, err)
		}
		unix.Rmdir(e.Path)
	}
	e.Count, e.Path, e.Value = 0, "", nil
	return nil
}

// Cleanup unmounts every layer, stops every daemon and leaves the data.
func (d *Driver) Cleanup() error {
	var errs []error
	for _, id := range d.refs.Held() {
		e := d.refs.Lock(id)
		if e.Count > 0 && filepath.Base(e.Path) == ovl.MergedDir {
			p, _ := e.Value.(*process)
			if err := d.unmount(e.Path, p); err != nil {
				errs = append(errs, err)
			}
			unix.Rmdir(e.Path)
		}
		e.Count, e.Path, e.Value = 0, "", nil
		e.Unlock()
	}
	if err := ovl.UnmountUnder(d.home); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: clean up %s: %w", Name, d.home, err)
	}
	return nil
}

// ApplyDiff unpacks diff into layer id: straight into diff/ when parent is
// id's parent, keeping the stream's aufs-form whiteouts, which
// fuse-overlayfs reads as whiteouts (as Docker's driver does); otherwise
// through the mounted layer.
func (d *Driver) ApplyDiff(id, parent string, diff io.Reader) (int64, error) {
	if !d.layout.Exists(id) {
		return 0, fmt.Errorf("apply diff to layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	var n int64
	var err error
	if d.layout.IsParent(id, parent) {
		n, err = archive.Apply(filepath.Join(d.layout.Dir(id), ovl.DiffDir), diff, archive.ApplyOptions{Whiteouts: archive.WhiteoutAUFS})
	} else {
		n, err = naivediff.Apply(d, id, diff)
	}
	if err != nil {
		return n, fmt.Errorf("apply diff to layer %s: %w", id, err)
	}
	return n, nil
}

// Diff compares the mounted layer with its mounted parent: a diff/ holds
// whiteouts in whichever form fuse-overlayfs wrote them, so Docker never
// tars it directly.
func (d *Driver) Diff(id, parent string) (io.ReadCloser, error) {
	if !d.layout.Exists(id) {
		return nil, fmt.Errorf("diff layer %s: %w", id, drivers.ErrLayerNotExist)
	}
	rc, err := naivediff.Diff(d, id, parent)
	if err != nil {
		return nil, fmt.Errorf("diff layer %s: %w", id, err)
	}
	return rc, nil
}

// process is one running fuse-overlayfs.
type process struct {
	pid    int
	done   chan struct{}
	err    error // set before done is closed
	output *tail
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// mount starts fuse-overlayfs in the foreground for spec and returns once
// the mount is in the mount table.
func (d *Driver) mount(spec ovl.Spec) (*process, error) {
	target := filepath.Join(spec.Home, spec.Target)
	data := spec.Data(true)
	p := &process{done: make(chan struct{}), output: &tail{max: 4096}}
	started := make(chan error, 1)
	// The thread that starts the daemon waits for it and ends with it:
	// the parent-death signal is tied to that thread, not to the process,
	// so it must neither end early nor go back to Go's pool.
	err := nsthread.Go(func() {
		cmd := exec.Command(d.bin, "-f", "-o", data, target)
		cmd.Dir = spec.Home
		cmd.Stdout, cmd.Stderr = p.output, p.output
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			started <- err
			close(p.done)
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", Binary, err)
	}
	if err := <-started; err != nil {
		return nil, &probe.MountError{Op: "mount", Source: Binary, Target: target, FSType: "fuse." + Binary, Data: data, Err: err}
	}
	if err := waitMounted(target, p); err != nil {
		p.stop()
		return nil, &probe.MountError{Op: "mount", Source: Binary, Target: target, FSType: "fuse." + Binary, Data: data, Err: err}
	}
	return p, nil
}

// waitMounted polls the mount table until target is a fuse mount, the
// daemon exits, or mountTimeout passes.
func waitMounted(target string, p *process) error {
	deadline := time.Now().Add(mountTimeout)
	delay := 100 * time.Microsecond
	for {
		mounted, err := isFuseMount(target)
		if err != nil {
			return err
		}
		if mounted {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited before mounting (%v): %s", Binary, p.err, p.output.String())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not mount within %v: %s", Binary, mountTimeout, p.output.String())
		}
		time.Sleep(delay)
		delay = min(delay*2, 10*time.Millisecond)
	}
}

func isFuseMount(target string) (bool, error) {
	mounts, err := ovl.Mountinfo()
	if err != nil {
		return false, err
	}
	for _, m := range mounts {
		if m.Mountpoint == target && strings.HasPrefix(m.FSType, "fuse") {
			return true, nil
		}
	}
	return false, nil
}

// stop kills a daemon that did not mount, and reaps it.
func (p *process) stop() {
	if p.pid > 0 && !p.exited() {
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
	<-p.done
}

// unmount removes the mount at target and waits for its daemon (p, nil
// when not started by this driver) to exit.
func (d *Driver) unmount(target string, p *process) error {
	var err error
	if os.Geteuid() == 0 {
		err = unix.Unmount(target, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(target, unix.MNT_DETACH)
		}
		if err != nil {
			err = &probe.MountError{Op: "unmount", Target: target, FSType: "fuse." + Binary, Err: err}
		}
	} else if out, cerr := exec.Command("fusermount3", "-u", target).CombinedOutput(); cerr != nil {
		err = fmt.Errorf("fusermount3 -u %s: %w: %s", target, cerr, strings.TrimSpace(string(out)))
	}
	if err != nil || p == nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(mountTimeout):
		p.stop()
		return fmt.Errorf("%s (pid %d) did not exit within %v of the unmount of %s; killed it", Binary, p.pid, mountTimeout, target)
	}
	return nil
}

// tail keeps the last max bytes written to it: a daemon's messages.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.b) == 0 {
		return "(no output)"
	}
	return strings.TrimSpace(string(t.b))
}
