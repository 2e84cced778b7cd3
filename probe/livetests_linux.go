package probe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
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
	tmpfs   map[string]error
	elapsed time.Duration
}

// overlayTestOrder runs the cheap, decisive tests first.
var overlayTestOrder = []string{
	FactOverlay, FactMultiLowerdir, FactIndex, FactNativeDiff, FactRedirectDir,
	FactMetacopy, FactVolatile, FactUserxattr, FactLowerdirPlus,
}

func (p *prober) runLiveTests() *liveResults {
	lr := &liveResults{}
	start := time.Now()
	defer func() { lr.elapsed = time.Since(start) }()
	dr := &p.r.DataRoot
	probed := dr.ProbedPath

	if !p.r.Privileged {
		lr.skip = "mount test needs root"
		p.dTypeReadOnly(probed, "not root")
		return lr
	}
	if removed, err := RemoveStaleScratch(probed, "probe"); err != nil {
		p.warn("%v", err)
	} else {
		for _, r := range removed {
			p.warn("removed stale scratch dir %s left by an earlier run", r)
		}
	}
	scratch, scratchErr := MakeScratch(probed, "probe")
	if scratchErr == nil {
		defer os.RemoveAll(scratch)
		ok, err := SupportsDType(scratch)
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
	ns, err := NewMountNS()
	if err != nil {
		lr.skip = fmt.Sprintf("cannot make a private mount namespace: %v", err)
		return lr
	}
	defer ns.Close()

	env := &liveEnv{indexParam: p.params["index"] != ""}
	if on := p.paramOn("metacopy"); on != nil && *on {
		env.metacopyParam = true
	}
	lr.results = map[string]error{}
	err = ns.Do(func() error {
		base := scratch
		if scratchErr != nil {
			var err error
			if base, err = privateTmpfs(); err != nil {
				return err
			}
			defer unmountTmpfs(base)
			lr.where = "a private tmpfs (the data-root was not writable)"
		}
		for _, name := range overlayTestOrder {
			lr.results[name] = overlayLiveTests[name](base, env)
		}
		if scratchErr != nil || dr.Filesystem == "tmpfs" {
			return nil
		}
		// Re-run what failed on a private tmpfs, to say whether the kernel
		// or the data-root's filesystem is the reason.
		var failed []string
		for _, name := range overlayTestOrder {
			if lr.results[name] != nil {
				failed = append(failed, name)
			}
		}
		if len(failed) == 0 {
			return nil
		}
		t, err := privateTmpfs()
		if err != nil {
			return nil
		}
		defer unmountTmpfs(t)
		lr.tmpfs = map[string]error{}
		for _, name := range failed {
			lr.tmpfs[name] = overlayLiveTests[name](t, env)
		}
		return nil
	})
	if err != nil {
		lr.skip = fmt.Sprintf("mount tests failed to run: %v", err)
		lr.results = nil
	}
	return lr
}

// privateTmpfs mounts a small tmpfs on a fresh dir; call only inside the
// private mount namespace.
func privateTmpfs() (string, error) {
	dir, err := os.MkdirTemp("", ScratchPrefix+"tmpfs-")
	if err != nil {
		return "", err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=16m,mode=0700"); err != nil {
		os.Remove(dir)
		return "", &MountError{Op: "mount", Source: "tmpfs", Target: dir, FSType: "tmpfs", Err: err}
	}
	return dir, nil
}

func unmountTmpfs(dir string) {
	_ = unix.Unmount(dir, unix.MNT_DETACH)
	_ = os.Remove(dir)
}

// dTypeReadOnly decides d_type from the entries already in dir, without
// writing: an entry of known type proves d_type; all unknown disproves it.
func (p *prober) dTypeReadOnly(dir, why string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	buf := make([]byte, 8<<10)
	n, err := unix.Getdents(fd, buf)
	if err != nil || n <= 0 {
		return
	}
	known, unknown := 0, 0
	for off := 0; off < n; {
		reclen, typ, name := parseDirent(buf[off:n])
		if reclen == 0 {
			break
		}
		if name != "." && name != ".." {
			if typ == unix.DT_UNKNOWN {
				unknown++
			} else {
				known++
			}
		}
		off += reclen
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

var _ = filepath.Join
