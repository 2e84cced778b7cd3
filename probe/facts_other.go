package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/graphprobe/graphprobe/internal/hostsys"
)

func (p *prober) dTypeFact(*factRow) (f Fact) {
	dr := p.r.DataRoot
	defer func() {
		if f.No() || f.Supported == nil {
			f.Hint = hostsys.DTypeHint(dr.Filesystem)
		}
	}()
	if dr.DType != nil {
		f.Supported = dr.DType
		f.Method = p.dTypeMethod
		switch p.dTypeMethod {
		case MethodMountTest:
			f.Detail = fmt.Sprintf("getdents on a file created in %s returned %s", dr.ProbedPath, map[bool]string{true: "its type", false: "DT_UNKNOWN"}[*dr.DType])
		case MethodCaptured:
			f.Detail = "captured live result"
		default:
			f.Detail = p.dTypeNote
		}
		return f
	}
	f.Method = MethodInferred
	switch dr.Filesystem {
	case "btrfs", "tmpfs", "zfs", "overlayfs", "ramfs":
		f.Supported = Bool(true)
		f.Detail = dr.Filesystem + " always returns d_type"
	case "extfs":
		f.Supported = Bool(true)
		f.Detail = "assumed: ext4 is formatted with filetype by default (capture the host for a real test)"
	case "xfs":
		f.Detail = "xfs has d_type only when formatted with ftype=1 (the default since xfsprogs 3.2.3; RHEL/CentOS 7.0–7.2 installs made ftype=0): needs a live test"
	default:
		f.Detail = fmt.Sprintf("filesystem %s: needs a live test", dr.Filesystem)
	}
	if p.h.Live() && !p.r.Privileged {
		f.Detail = "the data-root is not readable without root; " + f.Detail
	}
	return f
}

func (p *prober) aufsFact(row *factRow) Fact {
	state, evidence := p.mods.state(row.module, row.filesystem, row.config)
	f := Fact{Method: MethodFile, Module: state, Detail: evidence}
	switch {
	case state.Available():
		f.Supported = Bool(true)
		if state == ModuleLoadable {
			f.Detail += "; dockerd loads it at start"
		}
	case state == ModuleAbsent:
		f.Supported = Bool(false)
		f.Hint = "install the distribution's aufs module (Ubuntu 14.04/16.04: linux-image-extra-$(uname -r); Debian: aufs-dkms), or move to overlay2: Docker 24 and later removed aufs"
	default:
		f.Hint = "capture modules.dep and modules.builtin of this kernel to decide"
	}
	return f
}

func (p *prober) fuseOverlayfsFact(row *factRow) Fact {
	min := row.minKernel.Threshold()
	f := Fact{Method: MethodFile, MinKernel: min, Version: p.versionAtLeast(row.minKernel)}
	state, evidence := p.mods.state(row.module, row.filesystem, row.config)
	f.Module = state
	var missing, have []string
	if p.h.Exists("/dev/fuse") {
		have = append(have, "/dev/fuse exists")
	} else {
		missing = append(missing, "/dev/fuse is missing")
	}
	where := "dockerd's PATH"
	if p.opts.DockerdPathFrom != "" {
		where += " (set in " + p.opts.DockerdPathFrom + ")"
	}
	if bin, ok := p.lookDockerdPath("fuse-overlayfs"); ok {
		desc := bin
		if p.fuseVersion != "" {
			desc += " " + p.fuseVersion
		}
		have = append(have, desc+" on "+where)
	} else {
		missing = append(missing, "no fuse-overlayfs binary on "+where+": "+strings.Join(p.dockerdPath(), ":"))
	}
	if !state.Available() && state != ModuleUnknown {
		missing = append(missing, "fuse: "+evidence)
	}
	if f.Version != nil && !*f.Version {
		missing = append(missing, fmt.Sprintf("kernel %s is older than %s (Docker's minimum for fuse-overlayfs)", p.kv, min))
	}
	switch {
	case len(missing) > 0:
		f.Supported = Bool(false)
		f.Detail = strings.Join(missing, "; ")
		if len(have) > 0 {
			f.Detail += " (" + strings.Join(have, ", ") + ")"
		}
		f.Hint = "install the fuse-overlayfs package (and fuse3); the kernel must be " + min + " or later"
	case f.Version == nil:
		f.Detail = strings.Join(have, ", ") + "; kernel release unknown"
	default:
		f.Supported = Bool(true)
		f.Detail = strings.Join(have, ", ")
	}
	return f
}

func (p *prober) fuseOverlayfsVersion(bin string) string {
	out, err := p.opts.Exec(p.ctx, bin, "--version")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		if i := strings.Index(line, "version "); i >= 0 && strings.HasPrefix(line, "fuse-overlayfs") {
			return strings.TrimSpace(line[i+len("version "):])
		}
	}
	return ""
}

func (p *prober) btrfsFact(row *factRow) Fact {
	state, evidence := p.mods.state(row.module, row.filesystem, row.config)
	f := Fact{Method: MethodFile, Module: state}
	fs := p.r.DataRoot.Filesystem
	if p.r.Mode == "fixture" && p.r.DataRoot.Magic == "" {
		f.Method = MethodInferred
	}
	switch {
	case fs == "btrfs":
		f.Supported = Bool(true)
		f.Detail = "the data-root is on btrfs (" + evidence + ")"
	case fs == "unknown" || fs == "":
		f.Detail = "the data-root's filesystem is unknown"
	default:
		f.Supported = Bool(false)
		f.Detail = "the data-root is on " + fs + ", not btrfs"
		f.Hint = "the btrfs driver needs the data-root on a btrfs filesystem"
	}
	return f
}

func (p *prober) zfsFact(row *factRow) Fact {
	f := Fact{Method: MethodFile}
	state, evidence := p.mods.state(row.module, row.filesystem, row.config)
	f.Module = state
	fs := p.r.DataRoot.Filesystem
	var missing []string
	if fs != "zfs" {
		missing = append(missing, "the data-root is on "+fs+", not zfs")
	}
	if !p.h.Exists("/dev/zfs") {
		missing = append(missing, "/dev/zfs is missing")
	}
	if _, ok := p.h.LookPath("zfs"); !ok {
		missing = append(missing, "no zfs binary")
	}
	if len(missing) > 0 {
		f.Supported = Bool(false)
		f.Detail = strings.Join(missing, "; ")
		f.Hint = "the zfs driver needs the data-root on a zfs dataset, /dev/zfs and the zfs utilities"
		return f
	}
	f.Supported = Bool(true)
	f.Detail = "the data-root is on zfs, /dev/zfs and the zfs binary exist (" + evidence + ")"
	return f
}

func (p *prober) devicemapperFact(row *factRow) Fact {
	state, evidence := p.mods.state(row.module, row.filesystem, row.config)
	f := Fact{Method: MethodFile, Module: state}
	thin := p.mods.config.Tristate("CONFIG_DM_THIN_PROVISIONING")
	control := p.h.Exists("/dev/mapper/control")
	switch {
	case !state.Available() && state != ModuleUnknown:
		f.Supported = Bool(false)
		f.Detail = "device-mapper: " + evidence
	case thin == "n":
		f.Supported = Bool(false)
		f.Detail = "CONFIG_DM_THIN_PROVISIONING is not set"
	case !control && state != ModuleLoadable:
		f.Supported = Bool(false)
		f.Detail = "/dev/mapper/control is missing (" + evidence + ")"
	case state == ModuleUnknown:
		f.Detail = evidence
	default:
		f.Supported = Bool(true)
		f.Detail = evidence
		if control {
			f.Detail += "; /dev/mapper/control exists"
		}
		if thin != "unknown" {
			f.Detail += "; CONFIG_DM_THIN_PROVISIONING=" + thin
		}
	}
	if !f.Yes() {
		f.Hint = "devicemapper is deprecated (removed in Docker 25); use overlay2"
	}
	return f
}

// dataRootProbePath walks up from the data-root to the nearest existing
// directory: Docker creates the data-root at start, on its parent's
// filesystem. An existing path that is not a directory (a file, a FIFO, a
// dangling symlink) is an error: dockerd could not start there either.
func (p *prober) dataRootProbePath(dr string) (string, bool, error) {
	cur := dr
	for {
		st, err := p.h.Lstat(cur)
		if err == nil {
			if st.Mode()&fs.ModeSymlink != 0 {
				// Follow it: a symlinked data-root is fine when it leads
				// to a directory.
				if target, err := p.h.statFollow(cur); err != nil {
					return "", false, fmt.Errorf("data-root %s: %s is a dangling symlink, not a directory (%v)", dr, cur, errors.Unwrap(err))
				} else if !target.IsDir() {
					return "", false, fmt.Errorf("data-root %s: %s is a symlink to %s, not a directory", dr, cur, hostsys.FileKind(target.Mode()))
				}
				return cur, cur == dr, nil
			}
			if !st.IsDir() {
				return "", false, fmt.Errorf("data-root %s: %s is %s, not a directory", dr, cur, hostsys.FileKind(st.Mode()))
			}
			return cur, cur == dr, nil
		}
		if cur == "/" {
			return "/", false, nil
		}
		cur = path.Dir(cur)
	}
}
