package probe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/internal/hostsys"
)

func unameRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// liveEnv is what the overlay tests need to know about the kernel.
type liveEnv struct {
	indexParam    bool // /sys/module/overlay/parameters/index exists
	metacopyParam bool // metacopy is on by default
}

// indexOff mirrors Docker and containerd, which mount with index=off when
// the kernel has the index feature.
func (e *liveEnv) indexOff() []string {
	if e.indexParam {
		return []string{"index=off"}
	}
	return nil
}

// liveEnv reads the overlay parameters as they are when the tests run
// (after --load-modules has loaded overlay).
func (p *prober) liveEnv() *liveEnv {
	_, index := p.params["index"]
	env := &liveEnv{indexParam: index}
	if on := p.paramOn("metacopy"); on != nil && *on {
		env.metacopyParam = true
	}
	return env
}

func (e *liveEnv) metacopyInUse() error {
	if e.metacopyParam {
		return notEnabled("metacopy is on by default (overlay parameter metacopy=Y), so Docker uses the naive diff")
	}
	return nil
}

// liveResults are the outcomes of the live tests.
type liveResults struct {
	// skip says why the mount tests did not run ("" when they ran).
	skip string
	// where says what filesystem the tests ran on.
	where   string
	results map[string]error
	// tmpfs holds the re-run on a private tmpfs of every test that failed
	// on the data-root's filesystem: it tells "the kernel cannot" from
	// "this filesystem cannot".
	tmpfs map[string]error
	// on says where each test ran: "dataroot", "tmpfs", or "settled" for
	// a fact whose settledBy test passed.
	on map[string]string
}

// liveOrder is the order the live tests run in: table order, except that
// a test that settles another runs before it (the multi-lower mount
// settles the one-lower mount, which then costs nothing).
func liveOrder(rows []factRow) []*factRow {
	var first, then []*factRow
	for i := range rows {
		switch r := &rows[i]; {
		case r.live == nil:
		case r.settledBy != "":
			then = append(then, r)
		default:
			first = append(first, r)
		}
	}
	return append(first, then...)
}

func (p *prober) runLiveTests() *liveResults {
	lr := &liveResults{}
	dr := &p.r.DataRoot
	probed := dr.ProbedPath

	if !p.r.Privileged {
		lr.skip = "mount test needs root"
		p.dTypeReadOnly(probed, "not root")
		return lr
	}
	if removed, err := hostsys.RemoveStaleScratch(probed, "probe"); err != nil {
		p.warn("%v", err)
	} else {
		for _, r := range removed {
			p.warn("removed stale scratch dir %s left by an earlier run", r)
		}
	}
	scratch, scratchErr := hostsys.MakeScratch(probed, "probe")
	if scratchErr == nil {
		// Runs after ns.Close (defers run last-in first-out).
		defer os.RemoveAll(scratch)
		ok, err := hostsys.SupportsDType(scratch)
		if err != nil {
			p.warn("%v", err)
		} else {
			dr.DType = Bool(ok)
			p.dTypeMethod = MethodMountTest
		}
	} else {
		p.warn("%v; tests ran on a private tmpfs instead", scratchErr)
		p.dTypeReadOnly(probed, "data-root not writable")
	}

	if p.opts.NoMountTests {
		lr.skip = "mount tests disabled"
		return lr
	}
	if !p.mods.fs["overlay"] {
		lr.skip = "overlay is not loaded, and the probe never loads a module (rerun with --load-modules to test it)"
		return lr
	}
	ns, err := hostsys.NewMountNS()
	if err != nil {
		lr.skip = fmt.Sprintf("cannot make a private mount namespace: %v", err)
		return lr
	}

	env := p.liveEnv()
	lr.results = map[string]error{}
	// A place for private tmpfs mounts: the scratch dir, or one in the
	// temporary directory when the data-root is not writable.
	tmpParent := scratch
	if scratchErr != nil {
		if removed, err := hostsys.RemoveStaleScratch(os.TempDir(), "probe"); err == nil {
			for _, r := range removed {
				p.warn("removed stale scratch dir %s left by an earlier run", r)
			}
		}
		if tmpParent, err = hostsys.MakeScratch(os.TempDir(), "probe"); err != nil {
			lr.skip = fmt.Sprintf("no writable scratch dir: %v", err)
			return lr
		}
		defer os.RemoveAll(tmpParent)
	}
	defer ns.Close()
	err = ns.Do(func() error {
		base := scratch
		kernelBase, err := privateTmpfs(tmpParent)
		if err != nil {
			return err
		}
		if scratchErr != nil {
			base = kernelBase
			lr.where = "a private tmpfs (the data-root was not writable)"
		}
		lr.on = map[string]string{}
		order := liveOrder(p.rows)
		for _, row := range order {
			dir, on := base, "dataroot"
			if row.on == onTmpfs {
				dir, on = kernelBase, "tmpfs"
			}
			if err, ran := lr.results[row.settledBy]; row.settledBy != "" && ran && err == nil {
				// Skip the extra mount: each costs directories to create
				// and remove on the data-root's filesystem.
				lr.results[row.name] = nil
				lr.on[row.name] = "settled"
				continue
			}
			lr.results[row.name] = row.runLive(dir, env)
			lr.on[row.name] = on
		}
		if scratchErr != nil || dr.Filesystem == "tmpfs" {
			return nil
		}
		// Re-run on tmpfs what failed on the data-root's filesystem, to say
		// whether the kernel or the filesystem is the reason.
		for _, row := range order {
			if lr.results[row.name] != nil && lr.on[row.name] == "dataroot" {
				if lr.tmpfs == nil {
					lr.tmpfs = map[string]error{}
				}
				lr.tmpfs[row.name] = row.runLive(kernelBase, env)
			}
		}
		return nil
	})
	if err != nil {
		lr.skip = fmt.Sprintf("mount tests failed to run: %v", err)
		lr.results = nil
	}
	return lr
}

// privateTmpfs mounts a small tmpfs on a fresh dir in parent; call only
// inside the private mount namespace. It is never unmounted by hand: the
// namespace's teardown does it (see overlayFixture.unmount), and rmdir of
// the mount point from the host namespace afterwards is allowed.
func privateTmpfs(parent string) (string, error) {
	dir, err := os.MkdirTemp(parent, "tmpfs-")
	if err != nil {
		return "", err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=16m,mode=0700"); err != nil {
		os.Remove(dir)
		return "", &hostsys.MountError{Op: "mount", Source: "tmpfs", Target: dir, FSType: "tmpfs", Err: err}
	}
	return dir, nil
}

// dTypeReadOnly decides d_type from the entries already in dir, without
// writing: an entry of known type proves d_type; all unknown disproves it.
func (p *prober) dTypeReadOnly(dir, why string) {
	known, unknown, err := hostsys.CountDTypes(dir)
	if err != nil {
		return
	}
	switch {
	case known > 0:
		p.r.DataRoot.DType = Bool(true)
	case unknown > 0:
		p.r.DataRoot.DType = Bool(false)
	default:
		return
	}
	p.dTypeMethod = MethodFile
	p.dTypeNote = fmt.Sprintf("read from the existing entries of %s (%s)", dir, why)
}

// The live tests behind the overlay facts, one per row of factRows.
// They never name their fact or its minimum kernel: the row adds both to
// a "no" (factRow.runLive).

// classifyMount turns a mount failure into a conclusive "no" where the
// kernel rejected the filesystem or an option, and leaves everything else
// inconclusive.
func classifyMount(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENODEV), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOTSUP):
		return &UnsupportedError{Reason: err.Error()}
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: %v", errNeedsRoot, err)
	}
	return err
}

// testOverlay is Docker's overlay driver's check: one lower, upper, work.
var testOverlay = mountTest("overlay", 1)

// testMultiLowerdir is overlay2's own check (moby supportsMultipleLowerDir):
// two lowers.
var testMultiLowerdir = mountTest("multi-lower", 2)

// mountTest is a live test that mounts a fixture stack of lowers layers.
func mountTest(name string, lowers int) func(string, *liveEnv) error {
	return func(scratch string, env *liveEnv) error {
		f, err := newOverlayFixture(scratch, name, lowers)
		if err != nil {
			return err
		}
		if err := f.Mount(env.indexOff()...); err != nil {
			return classifyMount(err)
		}
		f.unmount()
		return nil
	}
}

// Docker's doesSupportNativeDiff: an opaque dir must not stay opaque
// when copied up (fixed in 4.8), and a renamed dir must not carry a
// redirect xattr (redirect_dir on by default), which a plain tar of the
// upper dir cannot express. metacopy in use also forbids native diff.
func testNativeDiff(scratch string, env *liveEnv) error {
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
		return classifyMount(err)
	}
	defer f.unmount()
	if err := os.WriteFile(filepath.Join(f.Merged, "d", "f"), nil, 0o644); err != nil {
		return fmt.Errorf("copy up through overlay: %w", err)
	}
	buf := make([]byte, 16)
	if n, err := unix.Lgetxattr(filepath.Join(f.Upper, "d"), "trusted.overlay.opaque", buf); err == nil && string(buf[:n]) == "y" {
		return notSupported("the opaque xattr was copied up")
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
		return notEnabled("redirect_dir is enabled by default (a renamed directory carries a redirect xattr); Docker falls back to the slower naive diff")
	}
	return env.metacopyInUse()
}

// redirect_dir=on: rename merged directories without EXDEV.
func testRedirectDir(scratch string, env *liveEnv) error {
	f, err := newOverlayFixture(scratch, "redirect-dir", 1)
	if err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(f.Lowers[0], "d1"), 0o755); err != nil {
		return err
	}
	if err := f.Mount(append(env.indexOff(), "redirect_dir=on")...); err != nil {
		return classifyMount(err)
	}
	defer f.unmount()
	if err := os.Rename(filepath.Join(f.Merged, "d1"), filepath.Join(f.Merged, "d2")); err != nil {
		if errors.Is(err, unix.EXDEV) {
			return notSupported("rename of a lower directory gave EXDEV with redirect_dir=on")
		}
		return err
	}
	return nil
}

// metacopy=on: a chmod copies up only metadata (trusted.overlay.metacopy).
func testMetacopy(scratch string, env *liveEnv) error {
	f, err := newOverlayFixture(scratch, "metacopy", 1)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.Lowers[0], "file"), []byte("data"), 0o644); err != nil {
		return err
	}
	if err := f.Mount(append(env.indexOff(), "metacopy=on")...); err != nil {
		return classifyMount(err)
	}
	defer f.unmount()
	if err := os.Chmod(filepath.Join(f.Merged, "file"), 0o600); err != nil {
		return fmt.Errorf("chmod through overlay: %w", err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(f.Upper, "file"), "trusted.overlay.metacopy", nil); err != nil {
		return notSupported("chmod copied up the whole file (no trusted.overlay.metacopy xattr)")
	}
	return nil
}

// index=off is what Docker and containerd pass when the kernel has the
// index feature; an old kernel rejects the option.
func testIndex(scratch string, env *liveEnv) error {
	f, err := newOverlayFixture(scratch, "index", 1)
	if err != nil {
		return err
	}
	if err := f.Mount("index=off"); err != nil {
		return classifyMount(err)
	}
	f.unmount()
	return nil
}

// volatile: no sync of the upper layer, for throwaway containers.
func testVolatile(scratch string, env *liveEnv) error {
	f, err := newOverlayFixture(scratch, "volatile", 1)
	if err != nil {
		return err
	}
	if err := f.Mount(append(env.indexOff(), "volatile")...); err != nil {
		return classifyMount(err)
	}
	f.unmount()
	return nil
}

// userxattr: overlay's private xattrs in the user.* namespace, which
// rootless overlay needs.
func testUserxattr(scratch string, env *liveEnv) error {
	f, err := newOverlayFixture(scratch, "userxattr", 1)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.Lowers[0], "f"), nil, 0o644); err != nil {
		return err
	}
	if err := f.Mount(append(env.indexOff(), "userxattr")...); err != nil {
		return classifyMount(err)
	}
	defer f.unmount()
	// The mount succeeds even when the upper filesystem takes no
	// user.* xattrs (tmpfs before 6.6): the kernel only logs "failed
	// to set xattr on upper". Check the feature itself: a user.*
	// xattr set through the mount (a copy-up) must reach the upper.
	return checkUserxattrUpper(f)
}

// lowerdir+ through fsconfig(2): one lower per call, so a deep stack
// has no page-size limit on its mount data.
func testLowerdirPlus(scratch string, env *liveEnv) error {
	f, err := newOverlayFixture(scratch, "lowerdir-plus", 2)
	if err != nil {
		return err
	}
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return classifyMount(&hostsys.MountError{Op: "fsopen", FSType: "overlay", Err: err})
	}
	defer unix.Close(fd)
	for _, l := range f.Lowers {
		if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
			return classifyMount(&hostsys.MountError{Op: "fsconfig lowerdir+", Target: l, FSType: "overlay", Err: err})
		}
	}
	for k, v := range map[string]string{"upperdir": f.Upper, "workdir": f.Work} {
		if err := unix.FsconfigSetString(fd, k, v); err != nil {
			return classifyMount(&hostsys.MountError{Op: "fsconfig " + k, Target: v, FSType: "overlay", Err: err})
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return classifyMount(&hostsys.MountError{Op: "fsconfig create", FSType: "overlay", Err: err})
	}
	return nil
}

// checkUserxattrUpper sets a user.* xattr on a lower file through the
// mount: overlay copies the file up and must store the xattr on the upper,
// where userxattr keeps overlay's own metadata too.
func checkUserxattrUpper(f *overlayFixture) error {
	const why = "the upper filesystem does not store user.* xattrs (tmpfs has them from kernel 6.6)"
	if err := unix.Setxattr(filepath.Join(f.Merged, "f"), "user.graphprobe", []byte("y"), 0); err != nil {
		return notEnabled("%s: setting user.graphprobe through the mount failed: %v", why, err)
	}
	buf := make([]byte, 8)
	n, err := unix.Getxattr(filepath.Join(f.Upper, "f"), "user.graphprobe", buf)
	if err != nil || string(buf[:n]) != "y" {
		return notEnabled("%s: the copied-up file has no user.graphprobe on the upper (%v)", why, err)
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	var ue *UnsupportedError
	if errors.As(err, &ue) {
		return ue.Reason
	}
	return err.Error()
}
