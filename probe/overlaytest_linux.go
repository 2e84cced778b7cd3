package probe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/internal/hostsys"
)

// overlayFixture is a hostsys fixture inside a temp dir of the probe's
// scratch dir.
type overlayFixture struct{ *hostsys.OverlayFixture }

func newOverlayFixture(scratch, name string, nlowers int) (*overlayFixture, error) {
	dir, err := os.MkdirTemp(scratch, name+"-")
	if err != nil {
		return nil, err
	}
	f, err := hostsys.NewOverlayFixture(dir, nlowers)
	if err != nil {
		return nil, err
	}
	return &overlayFixture{f}, nil
}

// unmount is deliberately a no-op: every test mount lives in the probe's
// private namespace, which the kernel tears down in one go when the
// namespace's thread ends. Unmounting one by one costs an RCU grace period
// each (about 0.4 ms, and 9 ms for the first), more than all the mounts.
func (f *overlayFixture) unmount() {}

// classifyMount turns a mount failure into a conclusive "no" where the
// kernel rejected the filesystem or an option, and leaves everything else
// inconclusive.
func classifyMount(feature, minKernel string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENODEV), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOTSUP):
		return &UnsupportedError{Feature: feature, MinKernel: minKernel, Reason: err.Error()}
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: %v", errNeedsRoot, err)
	}
	return err
}

// overlayLiveTests are the real tests behind the overlay facts. Each gets a
// fresh scratch dir on the filesystem under test and runs on the mount
// namespace's thread. A nil error means supported.
var overlayLiveTests = map[string]func(scratch string, env *liveEnv) error{
	// Docker's overlay driver: one lower, upper, work.
	FactOverlay: func(scratch string, env *liveEnv) error {
		f, err := newOverlayFixture(scratch, "overlay", 1)
		if err != nil {
			return err
		}
		if err := f.Mount(env.indexOff()...); err != nil {
			return classifyMount(FactOverlay, "3.18", err)
		}
		f.unmount()
		return nil
	},
	// overlay2's own check (moby supportsMultipleLowerDir): two lowers.
	FactMultiLowerdir: func(scratch string, env *liveEnv) error {
		f, err := newOverlayFixture(scratch, "multi-lower", 2)
		if err != nil {
			return err
		}
		if err := f.Mount(env.indexOff()...); err != nil {
			return classifyMount(FactMultiLowerdir, "4.0", err)
		}
		f.unmount()
		return nil
	},
	// Docker's doesSupportNativeDiff: an opaque dir must not stay opaque
	// when copied up (fixed in 4.8), and a renamed dir must not carry a
	// redirect xattr (redirect_dir on by default), which a plain tar of the
	// upper dir cannot express. metacopy in use also forbids native diff.
	FactNativeDiff: func(scratch string, env *liveEnv) error {
		f, err := newOverlayFixture(scratch, "native-diff", 2)
		if err != nil {
			return err
		}
		l2, l1 := f.Lowers[0], f.Lowers[1]
		for _, d := range []string{filepath.Join(l1, "d"), filepath.Join(l1, "d1"), filepath.Join(l2, "d")} {
			if err := os.Mkdir(d, 0o755); err != nil {
				return err
			}
		}
		if err := unix.Lsetxattr(filepath.Join(l2, "d"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			return fmt.Errorf("set opaque xattr on %s: %w", filepath.Join(l2, "d"), err)
		}
		if err := f.Mount(env.indexOff()...); err != nil {
			return classifyMount(FactNativeDiff, "4.0", err)
		}
		defer f.unmount()
		if err := os.WriteFile(filepath.Join(f.Merged, "d", "f"), nil, 0o644); err != nil {
			return fmt.Errorf("copy up through overlay: %w", err)
		}
		buf := make([]byte, 16)
		if n, err := unix.Lgetxattr(filepath.Join(f.Upper, "d"), "trusted.overlay.opaque", buf); err == nil && string(buf[:n]) == "y" {
			return notSupported(FactNativeDiff, "4.8", "the opaque xattr was copied up")
		}
		if err := os.Rename(filepath.Join(f.Merged, "d1"), filepath.Join(f.Merged, "d2")); err != nil {
			if errors.Is(err, unix.EXDEV) {
				// redirect_dir off: directories cannot be renamed in
				// place, so diffs stay plain.
				return env.metacopyInUse()
			}
			return fmt.Errorf("rename a directory through overlay: %w", err)
		}
		if n, err := unix.Lgetxattr(filepath.Join(f.Upper, "d2"), "trusted.overlay.redirect", buf); err == nil && n > 0 {
			return notSupported(FactNativeDiff, "", "redirect_dir is enabled by default (a renamed directory carries a redirect xattr); Docker falls back to the slower naive diff")
		}
		return env.metacopyInUse()
	},
	// redirect_dir=on: rename merged directories without EXDEV.
	FactRedirectDir: func(scratch string, env *liveEnv) error {
		f, err := newOverlayFixture(scratch, "redirect-dir", 1)
		if err != nil {
			return err
		}
		if err := os.Mkdir(filepath.Join(f.Lowers[0], "d1"), 0o755); err != nil {
			return err
		}
		if err := f.Mount(append(env.indexOff(), "redirect_dir=on")...); err != nil {
			return classifyMount(FactRedirectDir, "4.10", err)
		}
		defer f.unmount()
		if err := os.Rename(filepath.Join(f.Merged, "d1"), filepath.Join(f.Merged, "d2")); err != nil {
			if errors.Is(err, unix.EXDEV) {
				return notSupported(FactRedirectDir, "4.10", "rename of a lower directory gave EXDEV with redirect_dir=on")
			}
			return err
		}
		return nil
	},
	// metacopy=on: a chmod copies up only metadata (trusted.overlay.metacopy).
	FactMetacopy: func(scratch string, env *liveEnv) error {
		f, err := newOverlayFixture(scratch, "metacopy", 1)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(f.Lowers[0], "file"), []byte("data"), 0o644); err != nil {
			return err
		}
		if err := f.Mount(append(env.indexOff(), "metacopy=on")...); err != nil {
			return classifyMount(FactMetacopy, "4.19", err)
		}
		defer f.unmount()
		if err := os.Chmod(filepath.Join(f.Merged, "file"), 0o600); err != nil {
			return fmt.Errorf("chmod through overlay: %w", err)
		}
		if _, err := unix.Lgetxattr(filepath.Join(f.Upper, "file"), "trusted.overlay.metacopy", nil); err != nil {
			return notSupported(FactMetacopy, "4.19", "chmod copied up the whole file (no trusted.overlay.metacopy xattr)")
		}
		return nil
	},
	// index=off is what Docker and containerd pass when the kernel has the
	// index feature; an old kernel rejects the option.
	FactIndex: func(scratch string, env *liveEnv) error {
		f, err := newOverlayFixture(scratch, "index", 1)
		if err != nil {
			return err
		}
		if err := f.Mount("index=off"); err != nil {
			return classifyMount(FactIndex, "4.13", err)
		}
		f.unmount()
		return nil
	},
	FactVolatile: func(scratch string, env *liveEnv) error {
		f, err := newOverlayFixture(scratch, "volatile", 1)
		if err != nil {
			return err
		}
		if err := f.Mount(append(env.indexOff(), "volatile")...); err != nil {
			return classifyMount(FactVolatile, "5.10", err)
		}
		f.unmount()
		return nil
	},
	// userxattr: overlay's private xattrs in the user.* namespace, which
	// rootless overlay needs.
	FactUserxattr: func(scratch string, env *liveEnv) error {
		f, err := newOverlayFixture(scratch, "userxattr", 1)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(f.Lowers[0], "f"), nil, 0o644); err != nil {
			return err
		}
		if err := f.Mount(append(env.indexOff(), "userxattr")...); err != nil {
			return classifyMount(FactUserxattr, "5.11", err)
		}
		defer f.unmount()
		// The mount succeeds even when the upper filesystem takes no
		// user.* xattrs (tmpfs before 6.6): the kernel only logs "failed
		// to set xattr on upper". Check the feature itself: a user.*
		// xattr set through the mount (a copy-up) must reach the upper.
		return checkUserxattrUpper(f)
	},
	// lowerdir+ through fsconfig(2): one lower per call, so a deep stack
	// has no page-size limit on its mount data.
	FactLowerdirPlus: func(scratch string, env *liveEnv) error {
		f, err := newOverlayFixture(scratch, "lowerdir-plus", 2)
		if err != nil {
			return err
		}
		fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
		if err != nil {
			return classifyMount(FactLowerdirPlus, "6.8", &hostsys.MountError{Op: "fsopen", FSType: "overlay", Err: err})
		}
		defer unix.Close(fd)
		for _, l := range f.Lowers {
			if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
				return classifyMount(FactLowerdirPlus, "6.8", &hostsys.MountError{Op: "fsconfig lowerdir+", Target: l, FSType: "overlay", Err: err})
			}
		}
		for k, v := range map[string]string{"upperdir": f.Upper, "workdir": f.Work} {
			if err := unix.FsconfigSetString(fd, k, v); err != nil {
				return classifyMount(FactLowerdirPlus, "6.8", &hostsys.MountError{Op: "fsconfig " + k, Target: v, FSType: "overlay", Err: err})
			}
		}
		if err := unix.FsconfigCreate(fd); err != nil {
			return classifyMount(FactLowerdirPlus, "6.8", &hostsys.MountError{Op: "fsconfig create", FSType: "overlay", Err: err})
		}
		return nil
	},
}

// checkUserxattrUpper sets a user.* xattr on a lower file through the
// mount: overlay copies the file up and must store the xattr on the upper,
// where userxattr keeps overlay's own metadata too.
func checkUserxattrUpper(f *overlayFixture) error {
	const why = "the upper filesystem does not store user.* xattrs (tmpfs has them from kernel 6.6)"
	if err := unix.Setxattr(filepath.Join(f.Merged, "f"), "user.graphprobe", []byte("y"), 0); err != nil {
		return notSupported(FactUserxattr, "5.11", "%s: setting user.graphprobe through the mount failed: %v", why, err)
	}
	buf := make([]byte, 8)
	n, err := unix.Getxattr(filepath.Join(f.Upper, "f"), "user.graphprobe", buf)
	if err != nil || string(buf[:n]) != "y" {
		return notSupported(FactUserxattr, "5.11", "%s: the copied-up file has no user.graphprobe on the upper (%v)", why, err)
	}
	return nil
}
