package ovl

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/moby/sys/mount"
	"golang.org/x/sys/unix"
)

// TestDir is where init checks run: the home if it exists (it may be a
// mount of its own), else its parent, as Docker does.
func TestDir(home string) string {
	if _, err := os.Stat(home); errors.Is(err, fs.ErrNotExist) {
		return filepath.Dir(home)
	}
	return home
}

// Host is what CheckHost found.
type Host struct {
	// Dir is where the checks ran (see TestDir).
	Dir string
	// BackingFS is the filesystem under Dir, as Docker names it.
	BackingFS string
	// Options go into every mount's data (see IndexOff).
	Options []string
}

// CheckHost runs Docker's init checks of a kernel overlay driver for home,
// in Docker's order: overlay in /proc/filesystems, a backing filesystem
// the driver accepts, d_type, and a test mount with n lowers.
func CheckHost(driver, home string, n int, warnNoDType bool) (Host, error) {
	h := Host{Dir: TestDir(home)}
	if err := HaveOverlay(driver); err != nil {
		return h, err
	}
	var err error
	if h.BackingFS, err = BackingFS(driver, h.Dir); err != nil {
		return h, err
	}
	if err := CheckDType(driver, h.Dir, h.BackingFS); err != nil && !(warnNoDType && errors.Is(err, drivers.ErrNotSupported)) {
		return h, err
	}
	h.Options = IndexOff()
	if err := TestMount(driver, h.Dir, n, h.Options); err != nil {
		return h, err
	}
	return h, nil
}

// HaveOverlay reads /proc/filesystems: the kernel has overlay once it is
// listed there (built in, or its module loaded).
func HaveOverlay(driver string) error {
	have, err := hostsys.HaveFilesystem("overlay")
	if err != nil {
		return err
	}
	if !have {
		return drivers.NotSupported(driver, drivers.ErrNotSupported, "load the overlay module (modprobe overlay), or use a kernel with CONFIG_OVERLAY_FS",
			"overlay is not in /proc/filesystems")
	}
	return nil
}

// refusalHints are the remedies for a refused backing filesystem.
var refusalHints = map[string]string{
	"overlayfs": "the data-root is itself on overlayfs, as in Docker-in-Docker or a container's root filesystem: put the data-root on a volume (ext4, xfs), or use fuse-overlayfs",
	"aufs":      "put the data-root on ext4 or xfs",
	"zfs":       "use the zfs storage driver, or put the data-root on ext4 or xfs",
	"ecryptfs":  "put the data-root outside the encrypted home directory",
	"nfs":       "put the data-root on a local filesystem (ext4, xfs)",
}

// BackingFS names the filesystem under dir (Docker's name) and refuses the
// ones overlay cannot run on, with ErrIncompatibleFS.
//
// Docker 17.x–19.03 refused every filesystem of the registry's list by name
// (zfs and ecryptfs too); from 20.10 dockerd only tries a mount (moby
// #40210), and overlay works on zfs 2.2 and later. The drivers follow
// today's dockerd and leave zfs and ecryptfs to the test mount; the
// selector applies the older releases' rules when it decides for them.
// The ones the kernel refuses as overlay's upper layer (the registry's
// KernelRefusedFS) would fail the test mount anyway: refusing them by name
// gives the reason instead of "invalid argument".
func BackingFS(driver, dir string) (string, error) {
	backing, err := hostsys.Statfs(dir)
	if err != nil {
		return "", fmt.Errorf("%s: find the backing filesystem: %w", driver, err)
	}
	name := backing.Name
	info, _ := drivers.Lookup(driver)
	if slices.Contains(info.KernelRefusedFS, name) {
		return name, drivers.NotSupported(driver, drivers.ErrIncompatibleFS, refusalHints[name],
			"%s is on %s, which %s does not support as its backing filesystem", dir, name, driver)
	}
	return name, nil
}

// CheckDType refuses a backing filesystem without d_type, with Docker's
// remedy for it.
func CheckDType(driver, dir, fsName string) error {
	ok, err := hostsys.SupportsDType(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", driver, err)
	}
	if !ok {
		return drivers.NotSupported(driver, drivers.ErrNotSupported, hostsys.DTypeHint(fsName),
			"the backing %s filesystem of %s is formatted without d_type support, which leads to incorrect behavior", fsName, dir)
	}
	return nil
}

// IndexOff is what Docker and containerd add to the mount data when the
// kernel has overlay's index feature: the index ties an upper dir to its
// first lowers, and a layer is mounted over different stacks.
func IndexOff() []string {
	if _, err := os.Stat("/sys/module/overlay/parameters/index"); err == nil {
		return []string{"index=off"}
	}
	return nil
}

// fixture is a throwaway overlay stack for the init checks.
type fixture struct {
	dir  string
	spec Spec
}

// newFixture makes lower1..n (n nearest), upper, work and merged in a
// scratch dir of parent.
func newFixture(parent, kind string, n int, opts []string) (*fixture, error) {
	dir, err := hostsys.MakeScratch(parent, kind)
	if err != nil {
		return nil, err
	}
	hf, err := hostsys.NewOverlayFixture(dir, n)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// The spec names the fixture's dirs relative to it, as a layer's are
	// relative to the home, so that every mount method can take it.
	rel := filepath.Base
	f := &fixture{dir: dir, spec: Spec{Home: dir, Upper: rel(hf.Upper), Work: rel(hf.Work), Target: rel(hf.Merged), Options: opts}}
	for _, l := range hf.Lowers {
		f.spec.Lowers = append(f.spec.Lowers, rel(l))
	}
	return f, nil
}

func (f *fixture) path(rel string) string { return filepath.Join(f.dir, rel) }

func (f *fixture) mount() error {
	_, err := f.spec.Mount(Absolute, nil)
	return err
}

func (f *fixture) close(mounted bool) {
	if mounted {
		_ = mount.Unmount(f.path("merged"))
	}
	os.RemoveAll(f.dir)
}

// TestMount mounts an overlay with n lowers in a scratch dir of dir, as
// Docker's init does (n=2 checks multiple lower layers).
func TestMount(driver, dir string, n int, opts []string) error {
	f, err := newFixture(dir, driver+"-check", n, opts)
	if err != nil {
		return fmt.Errorf("%s: test mount: %w", driver, err)
	}
	if err := f.mount(); err != nil {
		f.close(false)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EOPNOTSUPP) {
			return drivers.NotSupported(driver, drivers.ErrNotSupported, "", "an overlay test mount with %d lower layers in %s failed: %v", n, dir, err)
		}
		return fmt.Errorf("%s: test mount: %w", driver, err)
	}
	f.close(true)
	return nil
}

// NativeDiff is Docker's test of whether a layer's diff/ can be tarred as
// it is: an opaque directory must not stay opaque when it is copied up
// (fixed in 4.8), a renamed directory must not carry a redirect xattr
// (redirect_dir on), and metacopy must be off (a metadata-only copy-up
// has no data to tar). A nil error means native diff works.
func NativeDiff(dir string, opts []string) error {
	f, err := newFixture(dir, "native-diff-check", 2, opts)
	if err != nil {
		return err
	}
	l2, l1 := f.spec.Lowers[0], f.spec.Lowers[1]
	for _, d := range []string{filepath.Join(l1, "d"), filepath.Join(l1, "d1"), filepath.Join(l2, "d")} {
		if err := os.Mkdir(f.path(d), 0o755); err != nil {
			f.close(false)
			return err
		}
	}
	if err := unix.Lsetxattr(f.path(filepath.Join(l2, "d")), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		f.close(false)
		return fmt.Errorf("set the opaque xattr on the middle layer: %w", err)
	}
	if err := os.WriteFile(f.path(filepath.Join(l1, "meta")), []byte("data"), 0o644); err != nil {
		f.close(false)
		return err
	}
	if err := f.mount(); err != nil {
		f.close(false)
		return err
	}
	defer f.close(true)
	if err := os.WriteFile(f.path("merged/d/f"), nil, 0o644); err != nil {
		return fmt.Errorf("copy up through overlay: %w", err)
	}
	if v, err := getxattr(f.path("upper/d"), "trusted.overlay.opaque"); err == nil && string(v) == "y" {
		return errors.New("the opaque xattr is copied up (kernels before 4.8)")
	}
	if err := os.Rename(f.path("merged/d1"), f.path("merged/d2")); err != nil {
		if !errors.Is(err, unix.EXDEV) {
			return fmt.Errorf("rename a directory through overlay: %w", err)
		}
		// redirect_dir off: directories are copied, not redirected.
	} else if v, err := getxattr(f.path("upper/d2"), "trusted.overlay.redirect"); err == nil && len(v) > 0 {
		return errors.New("redirect_dir is on by default: a renamed directory carries a redirect xattr that a tar of diff/ cannot express")
	}
	if err := os.Chmod(f.path("merged/meta"), 0o600); err != nil {
		return fmt.Errorf("chmod through overlay: %w", err)
	}
	if _, err := getxattr(f.path("upper/meta"), "trusted.overlay.metacopy"); err == nil {
		return errors.New("metacopy is on: a chmod copies up metadata only, leaving no data in diff/ to tar")
	}
	return nil
}

// UsingMetacopy reports whether copy-up is metadata-only by default here,
// for the "Using metacopy" status row.
func UsingMetacopy(dir string, opts []string) (bool, error) {
	f, err := newFixture(dir, "metacopy-check", 1, opts)
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(f.path("lower1/f"), nil, 0o700); err != nil {
		f.close(false)
		return false, err
	}
	if err := f.mount(); err != nil {
		f.close(false)
		return false, err
	}
	defer f.close(true)
	if err := os.Chmod(f.path("merged/f"), 0o600); err != nil {
		return false, fmt.Errorf("chmod through overlay: %w", err)
	}
	_, err = getxattr(f.path("upper/f"), "trusted.overlay.metacopy")
	return err == nil, nil
}

func getxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(buf[:n]), nil
}
