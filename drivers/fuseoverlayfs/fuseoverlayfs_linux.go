package fuseoverlayfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/archive"
	"github.com/graphprobe/graphprobe/drivers/internal/nsthread"
	"github.com/graphprobe/graphprobe/drivers/internal/ovl"
	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/version"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Name is the driver's name as Docker spells it.
const Name = "fuse-overlayfs"

// Binary is the program that mounts.
const Binary = "fuse-overlayfs"

// minKernel is Docker's requirement.
var minKernel = version.K(4, 18)

// mountTimeout bounds the wait for a mount to appear and for a daemon to
// exit after its unmount; a healthy one takes milliseconds.
const mountTimeout = 10 * time.Second

func init() { drivers.Register(Name, Init) }

// Driver is an initialised fuse-overlayfs home.
type Driver struct {
	// Layers: the overlay2 layout, its mounts and its diffs.
	*ovl.Layers
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
	backing, err := hostsys.Statfs(testdir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	fuse := &supervisor{bin: bin, running: map[string]*process{}}
	if err := fuse.testMount(testdir); err != nil {
		return nil, err
	}
	layout := ovl.Layout{Home: home}
	if err := layout.Init(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return &Driver{
		Layers: ovl.NewLayers(ovl.LayersConfig{
			Driver: Name, Layout: layout, Backend: fuse,
			// No Mounter stands in for the binary, so Cleanup may detach
			// whatever is left below the home.
			Sweep: true,
			// A diff on a layer's own parent is unpacked straight into
			// diff/, keeping the stream's aufs-form whiteouts, which
			// fuse-overlayfs reads as whiteouts (as Docker's driver
			// does). Diff always compares the mounted layer with its
			// mounted parent: a diff/ holds whiteouts in whichever form
			// fuse-overlayfs wrote them, so Docker never tars it directly.
			Whiteouts:   archive.WhiteoutAUFS,
			ApplyDirect: func() bool { return true },
		}),
		backingFS: backing.Name,
	}, nil
}

// devFuse is the device fuse-overlayfs talks to the kernel through.
var devFuse = "/dev/fuse"

// checkKernel applies Docker's version rule. A release that cannot be
// parsed is let through: the test mount that follows decides.
func checkKernel(release string) error {
	kv, err := version.ParseKernel(release)
	if err == nil && !kv.AtLeast(minKernel) {
		return drivers.NotSupported(Name, drivers.ErrNotSupported, "upgrade the kernel, or use vfs",
			"kernel %s is older than %s, which Docker requires for fuse-overlayfs", release, minKernel.Threshold())
	}
	return nil
}

// supervisor is the driver's mount backend: each mount is a fuse-overlayfs
// process of its own, supervised by this one.
type supervisor struct {
	bin string

	mu sync.Mutex
	// running are the daemons started here, by mount point, until they
	// exit: an unmount waits for its daemon.
	running map[string]*process
}

// testMount mounts two lowers, an upper and a work dir in a scratch dir
// of dir, and reads a lower file through the mount.
func (s *supervisor) testMount(dir string) error {
	scratch, err := hostsys.MakeScratch(dir, "fuse-overlayfs-check")
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
	if err := s.Mount(spec); err != nil {
		return drivers.NotSupported(Name, drivers.ErrNotSupported, "", "a test mount in %s failed: %v", dir, err)
	}
	b, rerr := os.ReadFile(filepath.Join(scratch, "merged", "f"))
	if err := s.Unmount(filepath.Join(scratch, "merged")); err != nil {
		return fmt.Errorf("%s: test mount: %w", Name, err)
	}
	if rerr != nil || string(b) != "ok" {
		return drivers.NotSupported(Name, drivers.ErrNotSupported, "", "a test mount in %s does not show its lower layer's file (%q, %v)", dir, b, rerr)
	}
	return nil
}

func (d *Driver) Name() string { return Name }

// Status gives the backing filesystem; Docker shows no rows for this
// driver.
func (d *Driver) Status() [][2]string {
	return [][2]string{{"Backing Filesystem", d.backingFS}}
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

// Mount starts fuse-overlayfs in the foreground for spec and returns once
// the mount is in the mount table.
func (s *supervisor) Mount(spec ovl.Spec) error {
	target := filepath.Join(spec.Home, spec.Target)
	data := spec.Data(true)
	p := &process{done: make(chan struct{}), output: &tail{max: 4096}}
	started := make(chan error, 1)
	// The thread that starts the daemon waits for it and ends with it:
	// the parent-death signal is tied to that thread, not to the process,
	// so it must neither end early nor go back to Go's pool.
	err := nsthread.Go(func() {
		cmd := exec.Command(s.bin, "-f", "-o", data, target)
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
		return fmt.Errorf("start %s: %w", Binary, err)
	}
	if err := <-started; err != nil {
		return &hostsys.MountError{Op: "mount", Source: Binary, Target: target, FSType: "fuse." + Binary, Data: data, Err: err}
	}
	if err := waitMounted(target, p); err != nil {
		p.stop()
		return &hostsys.MountError{Op: "mount", Source: Binary, Target: target, FSType: "fuse." + Binary, Data: data, Err: err}
	}
	s.mu.Lock()
	s.running[target] = p
	s.mu.Unlock()
	return nil
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
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.Mountpoint != target || !strings.HasPrefix(m.FSType, "fuse"), false
	})
	if err != nil {
		return false, fmt.Errorf("read mount table: %w", err)
	}
	return len(mounts) > 0, nil
}

// stop kills a daemon that did not mount, and reaps it.
func (p *process) stop() {
	if p.pid > 0 && !p.exited() {
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
	<-p.done
}

// Unmount removes the mount at target and waits for its daemon, when it
// was started here, to exit. A daemon that still runs after a failed
// unmount stays known, for the next try to wait for.
func (s *supervisor) Unmount(target string) error {
	s.mu.Lock()
	p := s.running[target]
	s.mu.Unlock()
	err := unmount(target, p)
	if p != nil && p.exited() {
		s.mu.Lock()
		delete(s.running, target)
		s.mu.Unlock()
	}
	return err
}

// unmount removes the mount at target and waits for its daemon (p, nil
// when not started by this driver) to exit.
func unmount(target string, p *process) error {
	var err error
	if os.Geteuid() == 0 {
		err = unix.Unmount(target, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(target, unix.MNT_DETACH)
		}
		if err != nil {
			err = &hostsys.MountError{Op: "unmount", Target: target, FSType: "fuse." + Binary, Err: err}
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
