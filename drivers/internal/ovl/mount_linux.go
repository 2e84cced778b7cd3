package ovl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/internal/nsthread"
	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/moby/sys/mount"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Method is how a stack is handed to the kernel.
type Method int

const (
	// Auto picks Absolute when its data fits in a page, else FSConfig
	// where the kernel has lowerdir+, else Relative.
	Auto Method = iota
	// Absolute: one mount(2) with absolute paths.
	Absolute
	// FSConfig: fsopen, one fsconfig "lowerdir+" per lower, fsmount,
	// move_mount (Linux 6.8).
	FSConfig
	// Relative: one mount(2) with paths relative to the home, from a
	// thread whose working directory is the home.
	Relative
)

func (m Method) String() string {
	switch m {
	case Auto:
		return "auto"
	case Absolute:
		return "absolute"
	case FSConfig:
		return "fsconfig"
	case Relative:
		return "relative"
	}
	return fmt.Sprintf("method(%d)", int(m))
}

// Spec is one overlay mount of a layer stack. Paths are relative to Home.
type Spec struct {
	Home   string
	Lowers []string // nearest first
	// Upper and Work are empty for a read-only mount (a committed layer,
	// whose diff is then the first lower).
	Upper, Work string
	Target      string
	// Options are extra mount options ("index=off").
	Options []string
}

// Data is the mount data with absolute or home-relative paths.
func (s Spec) Data(absolute bool) string {
	p := func(rel string) string {
		if absolute {
			return filepath.Join(s.Home, rel)
		}
		return rel
	}
	var b strings.Builder
	for _, o := range s.Options {
		b.WriteString(o)
		b.WriteByte(',')
	}
	b.WriteString("lowerdir=")
	for i, l := range s.Lowers {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(p(l))
	}
	if s.Upper != "" {
		b.WriteString(",upperdir=")
		b.WriteString(p(s.Upper))
		b.WriteString(",workdir=")
		b.WriteString(p(s.Work))
	}
	return b.String()
}

// pageLimit is the most mount data mount(2) takes: one page including its
// terminating NUL.
var pageLimit = os.Getpagesize() - 1

// lowerdirPlus is 0 until known, then 1 (the kernel has fsconfig
// lowerdir+) or -1.
var lowerdirPlus atomic.Int32

// Choose resolves Auto for s: the method Mount would use.
func (s Spec) Choose(m Method, mounter drivers.Mounter) Method {
	if m != Auto {
		return m
	}
	if len(s.Data(true)) <= pageLimit {
		return Absolute
	}
	if mounter == nil && lowerdirPlus.Load() >= 0 {
		return FSConfig
	}
	return Relative
}

// Mount mounts s with method m (Auto chooses) through mounter (nil: the
// syscalls) and returns the method used. FSConfig cannot go through a
// Mounter.
func (s Spec) Mount(m Method, mounter drivers.Mounter) (Method, error) {
	m = s.Choose(m, mounter)
	switch m {
	case Absolute:
		data := s.Data(true)
		if len(data) > pageLimit {
			return m, s.mountError("mount", data, fmt.Errorf("%d bytes of mount data, more than a page (%d): %w", len(data), pageLimit+1, unix.EINVAL))
		}
		return m, s.mount(mounter, filepath.Join(s.Home, s.Target), data)
	case FSConfig:
		if mounter != nil {
			return m, errors.New("mount with fsconfig: the driver was given a Mounter, which only takes mount(2) calls")
		}
		err := s.fsconfig()
		if errors.Is(err, errNoLowerdirPlus) {
			lowerdirPlus.Store(-1)
			// The page limit still applies to what follows.
			return s.Mount(Relative, mounter)
		}
		if err == nil {
			lowerdirPlus.Store(1)
		}
		return m, err
	case Relative:
		data := s.Data(false)
		if len(data) > pageLimit {
			return m, s.mountError("mount", data, fmt.Errorf("%d bytes of mount data even with relative paths, more than a page: %w", len(data), unix.EINVAL))
		}
		return m, nsthread.Run(func() error {
			if err := unix.Chdir(s.Home); err != nil {
				return &os.PathError{Op: "chdir", Path: s.Home, Err: err}
			}
			return s.mount(mounter, s.Target, data)
		})
	}
	return m, fmt.Errorf("mount overlay on %s: unknown method %v", s.Target, m)
}

func (s Spec) mount(mounter drivers.Mounter, target, data string) error {
	var err error
	if mounter != nil {
		err = mounter.Mount("overlay", target, "overlay", 0, data)
	} else {
		err = unix.Mount("overlay", target, "overlay", 0, data)
	}
	if err != nil {
		return s.mountError("mount", data, err)
	}
	return nil
}

func (s Spec) mountError(op, data string, err error) error {
	return &hostsys.MountError{Op: op, Source: "overlay", Target: filepath.Join(s.Home, s.Target), FSType: "overlay", Data: data, Err: err}
}

var errNoLowerdirPlus = errors.New("the kernel has no fsconfig lowerdir+ for overlay (Linux 6.8)")

// fsconfig mounts s through the new mount API, one lower per call.
func (s Spec) fsconfig() error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return errNoLowerdirPlus
		}
		return s.mountError("fsopen", "", err)
	}
	defer unix.Close(fd)
	set := func(key, value string) error {
		if err := unix.FsconfigSetString(fd, key, value); err != nil {
			return s.mountError("fsconfig", key+"="+value+kernelLog(fd), err)
		}
		return nil
	}
	for _, l := range s.Lowers {
		if err := unix.FsconfigSetString(fd, "lowerdir+", filepath.Join(s.Home, l)); err != nil {
			// 6.5–6.7 refuse the unknown key at once; before 6.5 overlay
			// has no fs_context of its own, and the kernel's legacy one
			// takes any key until its page of options is full
			// ("Legacy: Cumulative options too large"): either way, no
			// lowerdir+.
			if errors.Is(err, unix.EINVAL) {
				return errNoLowerdirPlus
			}
			return s.mountError("fsconfig", "lowerdir+="+filepath.Join(s.Home, l)+kernelLog(fd), err)
		}
	}
	if s.Upper != "" {
		if err := set("upperdir", filepath.Join(s.Home, s.Upper)); err != nil {
			return err
		}
		if err := set("workdir", filepath.Join(s.Home, s.Work)); err != nil {
			return err
		}
	}
	for _, o := range s.Options {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			if err := unix.FsconfigSetFlag(fd, k); err != nil {
				return s.mountError("fsconfig", k+kernelLog(fd), err)
			}
			continue
		}
		if err := set(k, v); err != nil {
			return err
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return s.mountError("fsconfig create", s.Data(true)+kernelLog(fd), err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return s.mountError("fsmount", kernelLog(fd), err)
	}
	defer unix.Close(mfd)
	target := filepath.Join(s.Home, s.Target)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return s.mountError("move_mount", "", err)
	}
	return nil
}

// kernelLog reads the messages the kernel left on an fs context: they say
// which option it did not like.
func kernelLog(fd int) string {
	var msgs []string
	buf := make([]byte, 512)
	for range 16 {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " [kernel: " + strings.Join(msgs, "; ") + "]"
}

// Unmount detaches an overlay mount, as Docker's Put does: a busy mount
// goes away once its last user does.
func Unmount(target string) error {
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
		return &hostsys.MountError{Op: "unmount", Target: target, Err: err}
	}
	return nil
}

// Mounted reports whether dir is a mount point, by comparing its device
// with its parent's.
func Mounted(dir string) bool {
	var st, pst unix.Stat_t
	if unix.Lstat(dir, &st) != nil || unix.Lstat(filepath.Dir(dir), &pst) != nil {
		return false
	}
	return st.Dev != pst.Dev
}

// MountsUnder lists the mount points below dir (not dir itself) in the
// calling thread's mount namespace, deepest first.
func MountsUnder(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	// mountinfo reads /proc/thread-self, the calling thread's namespace.
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	var out []string
	for _, m := range mounts {
		if m.Mountpoint != dir {
			out = append(out, m.Mountpoint)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// UnmountUnder detaches every mount below dir, for a driver's Cleanup.
func UnmountUnder(dir string) error {
	mounts, err := MountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		// mount.Unmount detaches, and a mount already gone (EINVAL) is
		// no error. Its error names the call; the MountError every
		// driver returns keeps the cause.
		if err := mount.Unmount(m); err != nil {
			errs = append(errs, &hostsys.MountError{Op: "unmount", Target: m, Err: cause(err)})
		}
	}
	return errors.Join(errs...)
}

// cause is the errno inside an error of moby/sys/mount.
func cause(err error) error {
	if c := errors.Unwrap(err); c != nil {
		return c
	}
	return err
}
