package probe

import (
	"errors"
	"fmt"
	"os"

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
		return notSupported(FactNativeDiff, "", "metacopy is on by default (overlay parameter metacopy=Y), so Docker uses the naive diff")
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
	// on says where each test ran: "dataroot", "tmpfs", or "multi" for
	// the overlay fact settled by the multi-lower mount.
	on map[string]string
}

// onDataRoot are the tests that depend on the data-root's filesystem and
// run there, as dockerd's own checks do. The others test kernel features
// and run on a private tmpfs, which costs nothing to clean up (removing
// directories is the slowest part of a probe on some disks).
var onDataRoot = map[string]bool{
	FactOverlay:       true,
	FactMultiLowerdir: true,
	FactNativeDiff:    true,
	FactUserxattr:     true, // needs user.* xattrs on the upper filesystem
}

// overlayTestOrder runs the decisive tests first. The multi-lower test runs
// before the one-lower test because its success settles both.
var overlayTestOrder = []string{
	FactMultiLowerdir, FactOverlay, FactIndex, FactNativeDiff, FactRedirectDir,
	FactMetacopy, FactVolatile, FactUserxattr, FactLowerdirPlus,
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
		for _, name := range overlayTestOrder {
			dir, on := base, "dataroot"
			if !onDataRoot[name] {
				dir, on = kernelBase, "tmpfs"
			}
			if name == FactOverlay && lr.results[FactMultiLowerdir] == nil {
				// A two-lower mount proves the one-lower mount: skip the
				// extra mount (each costs directories to create and
				// remove on the data-root's filesystem).
				lr.results[name] = nil
				lr.on[name] = "multi"
				continue
			}
			lr.results[name] = overlayLiveTests[name](dir, env)
			lr.on[name] = on
		}
		if scratchErr != nil || dr.Filesystem == "tmpfs" {
			return nil
		}
		// Re-run on tmpfs what failed on the data-root's filesystem, to say
		// whether the kernel or the filesystem is the reason.
		for _, name := range overlayTestOrder {
			if lr.results[name] != nil && lr.on[name] == "dataroot" {
				if lr.tmpfs == nil {
					lr.tmpfs = map[string]error{}
				}
				lr.tmpfs[name] = overlayLiveTests[name](kernelBase, env)
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
