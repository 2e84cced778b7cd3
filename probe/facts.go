package probe

import (
	"errors"
	"fmt"
	"strings"

	"github.com/graphprobe/graphprobe/version"
)

// backportsMultiLowerdir reports the vendor kernels known to carry multiple
// lower layers below 4.0: RHEL/CentOS 7 from 3.10.0-514 (7.3), as Docker's
// documentation states.
func backportsMultiLowerdir(kv version.Kernel) bool {
	return kv.RHEL != "" && kv.Major == 3 && kv.Minor == 10 && kv.RHELBuild >= 514
}

// applyLive takes a live test's verdict into f. It returns false when no
// live result exists for the fact.
func (p *prober) applyLive(f *Fact, name string) bool {
	if p.live == nil {
		return false
	}
	if p.live.results == nil {
		if p.live.skip == "mount test needs root" {
			f.Method = MethodMountTest
			f.Supported = nil
			f.Detail = "mount test needs root" + p.versionSays(f)
			needsRootHint(f)
			return true
		}
		return false
	}
	err, ok := p.live.results[name]
	if !ok {
		return false
	}
	f.Method = MethodMountTest
	fsName := p.r.DataRoot.Filesystem
	switch {
	case err == nil:
		f.Supported = Bool(true)
		f.Detail = "a test mount succeeded"
	case errors.Is(err, ErrNotSupported):
		f.Supported = Bool(false)
		f.Detail = "a test mount failed: " + errString(err)
		if t, ok := p.live.tmpfs[name]; ok {
			if t == nil {
				f.Detail += fmt.Sprintf("; the same test succeeds on tmpfs, so the kernel has it but the data-root's filesystem (%s) does not support it", fsName)
			} else {
				f.Detail += "; it fails on tmpfs too"
			}
		}
	case errors.Is(err, errNeedsRoot):
		f.Supported = nil
		f.Detail = "mount test needs root: " + err.Error()
		needsRootHint(f)
	default:
		f.Supported = nil
		f.Detail = "the test mount was inconclusive: " + err.Error()
	}
	switch {
	case p.live.where != "":
		f.Detail += "; tested on " + p.live.where
	case p.live.on[name] == "settled":
		// Only the overlay fact is settled by another (multi-lowerdir).
		f.Detail = "the multi-lower test mount succeeded, which settles it"
	case p.live.on[name] == "tmpfs":
		f.Detail += " (a kernel feature, tested on a private tmpfs)"
	case fsName != "":
		f.Detail += fmt.Sprintf(" (on the data-root's filesystem, %s)", fsName)
	}
	p.noteDisagreement(f)
	return true
}

// needsRootHint makes the remedy of a fact left unknown for want of root
// the one that applies: run the test. The feature's own remedy (a newer
// kernel) is kept only where the kernel version also says no.
func needsRootHint(f *Fact) {
	const rerun = "rerun as root to run the mount test (sudo graphprobe probe)"
	if f.Version != nil && !*f.Version && f.Hint != "" {
		f.Hint = rerun + "; the kernel version says no: " + f.Hint
		return
	}
	f.Hint = rerun
}

// applyCaptured takes a live result stored with a captured host.
func (p *prober) applyCaptured(f *Fact, name string) bool {
	if p.capture == nil {
		return false
	}
	c, ok := p.capture.Facts[name]
	if !ok || (c.Method != MethodMountTest && c.Method != MethodCaptured) {
		return false
	}
	f.Method = MethodCaptured
	f.Supported = c.Supported
	f.Detail = "captured live result: " + c.Detail
	if c.Hint != "" && f.Hint == "" {
		f.Hint = c.Hint
	}
	p.noteDisagreement(f)
	return true
}

func (p *prober) versionSays(f *Fact) string {
	switch {
	case f.Version == nil:
		return ""
	case *f.Version:
		return fmt.Sprintf("; the kernel version (%s) says yes", p.kv)
	default:
		return fmt.Sprintf("; the kernel version (%s) says no (needs %s)", p.kv, f.MinKernel)
	}
}

// noteDisagreement says so when the version and the verdict differ: that is
// exactly what users need to see (vendor backports, WSL1, nested overlay).
func (p *prober) noteDisagreement(f *Fact) {
	if f.Version == nil || f.Supported == nil || *f.Version == *f.Supported {
		return
	}
	if *f.Supported {
		f.Detail += fmt.Sprintf("; the kernel version %s alone says no (needs %s), but %s: this kernel carries the feature", p.kv, f.MinKernel, methodWins(f.Method))
	} else {
		f.Detail += fmt.Sprintf("; the kernel version %s alone says yes, but %s", p.kv, methodWins(f.Method))
	}
}

func methodWins(m Method) string {
	switch m {
	case MethodMountTest:
		return "the test wins"
	case MethodCaptured:
		return "the captured test wins"
	case MethodFile:
		return "the host's files decide"
	}
	return "the evidence decides"
}

func (p *prober) overlayFact(row *factRow) Fact {
	f := Fact{MinKernel: row.minKernel.Threshold(), Version: p.versionAtLeast(row.minKernel)}
	state, evidence := p.mods.state(row.module, row.filesystem, row.config)
	f.Module = state
	f.Hint = fmt.Sprintf("use a kernel with overlay (%s or later, %s); without it only vfs (slow) works", row.minKernel.Threshold(), row.config)
	switch {
	case p.mods.fs == nil && state == ModuleUnknown:
		f.Method, f.Supported = MethodVersion, f.Version
		f.Detail = "/proc/filesystems unreadable; decided by the kernel version"
	case p.mods.fs["overlay"]:
		f.Method, f.Supported = MethodFile, Bool(true)
		f.Detail = "overlay is registered in /proc/filesystems (" + string(state) + ")"
	case state.Available():
		f.Method, f.Supported = MethodFile, Bool(true)
		f.Detail = evidence + "; dockerd loads it at start"
	default:
		f.Method, f.Supported = MethodFile, Bool(false)
		f.Detail = "overlay is not in /proc/filesystems and " + evidence
		if p.mods.fs["overlayfs"] {
			f.Detail += "; the kernel has only Ubuntu's older \"overlayfs\" patch, which Docker's overlay drivers cannot use"
		}
		if p.kvOK && p.kv.WSL == 1 {
			f.Detail += "; this is WSL1, which emulates Linux and has no overlay filesystem"
			f.Hint = "use WSL2 (wsl --set-version <distro> 2), which runs a real kernel with overlay"
		}
	}
	if f.Supported == nil || *f.Supported {
		// A live test refines "the kernel has it" into "it works here".
		if !p.applyLive(&f, row.name) {
			p.applyCaptured(&f, row.name)
		}
	}
	p.noteDisagreementOnce(&f)
	if f.Yes() {
		f.Hint = ""
	}
	return f
}

// noteDisagreementOnce adds the version note unless applyLive/applyCaptured
// already did.
func (p *prober) noteDisagreementOnce(f *Fact) {
	if f.Method == MethodMountTest || f.Method == MethodCaptured {
		return
	}
	p.noteDisagreement(f)
}

// overlayFeatureFact decides an overlay feature: a live or captured test,
// else the module parameters, the kernel config, a known backport, and
// last the kernel version. It reads the overlay fact, which comes earlier
// in factRows.
func (p *prober) overlayFeatureFact(feat *factRow) (f Fact) {
	min := feat.minKernel.Threshold()
	f = Fact{MinKernel: min, Version: p.versionAtLeast(feat.minKernel), Hint: feat.hint}
	defer func() {
		if f.Yes() {
			f.Hint = ""
		} else if f.Hint == "" {
			f.Hint = fmt.Sprintf("needs kernel %s or later", min)
		}
	}()
	ov := p.r.Facts[FactOverlay]
	// A live result settles a kernel feature even when overlay cannot be
	// used on the data-root's filesystem (the test then ran on tmpfs).
	if p.applyLive(&f, feat.name) || p.applyCaptured(&f, feat.name) {
		return f
	}
	if ov.No() {
		f.Method, f.Supported = ov.Method, Bool(false)
		f.Detail = "overlay is not available: " + ov.Detail
		return f
	}
	if p.h.Live() && p.live != nil && p.live.skip != "" {
		defer func() { f.Detail += " (not tested: " + p.live.skip + ")" }()
	}
	if feat.name == FactNativeDiff {
		p.inferNativeDiff(&f, feat)
		return f
	}
	// A parameter file proves the feature; a parameters dir without it
	// proves a kernel that predates it.
	if feat.param != "" && len(p.params) > 0 {
		if _, ok := p.params[feat.param]; ok {
			f.Method, f.Supported = MethodFile, Bool(true)
			f.Detail = "/sys/module/overlay/parameters/" + feat.param + " exists"
		} else {
			f.Method, f.Supported = MethodFile, Bool(false)
			f.Detail = "/sys/module/overlay/parameters has no " + feat.param
		}
		p.noteDisagreement(&f)
		return f
	}
	if feat.config != "" {
		if _, ok := p.mods.config[feat.config]; ok {
			f.Method, f.Supported = MethodFile, Bool(true)
			f.Detail = feat.config + " appears in the kernel config (" + p.r.KernelConfigSource + ")"
			p.noteDisagreement(&f)
			return f
		}
	}
	if f.Version != nil && !*f.Version && feat.backport != nil && feat.backport(p.kv) {
		f.Method, f.Supported = MethodInferred, Bool(true)
		f.Detail = feat.backportNote
		p.noteDisagreement(&f)
		return f
	}
	f.Method, f.Supported = MethodVersion, f.Version
	if f.Version == nil {
		f.Detail = "kernel release unknown: " + p.r.Kernel.Error
	} else {
		f.Detail = fmt.Sprintf("kernel %s, threshold %s", p.kv, min)
	}
	return f
}

// inferNativeDiff decides native diff without a test: the kernel must be
// 4.8 or later and neither redirect_dir nor metacopy on by default.
func (p *prober) inferNativeDiff(f *Fact, row *factRow) {
	redirect, metacopy := p.row(FactRedirectDir), p.row(FactMetacopy)
	f.Method = MethodInferred
	if f.Version == nil {
		f.Detail = "kernel release unknown: " + p.r.Kernel.Error
		return
	}
	if !*f.Version {
		// A vendor kernel that carries redirect_dir (4.10) carries the 4.8
		// fix too.
		_, hasRedirect := p.params[redirect.param]
		if _, ok := p.mods.config[redirect.config]; ok {
			hasRedirect = true
		}
		if !hasRedirect {
			f.Supported = Bool(false)
			f.Detail = fmt.Sprintf("kernel %s copies up the opaque xattr (fixed in %s)", p.kv, row.minKernel.Threshold())
			return
		}
	}
	via := fmt.Sprintf("kernel %s or later", row.minKernel.Threshold())
	if !*f.Version {
		via = fmt.Sprintf("the kernel carries %s (a vendor backport), and with it the %s opaque fix", redirect.param, row.minKernel.Threshold())
	}
	var why []string
	unknown := false
	// Before overlay is loaded its defaults come from the kernel config,
	// unless modprobe.d or the command line set them (graphprobe's own
	// hint tells users to do exactly that).
	var load map[string]paramSource
	if len(p.params) == 0 {
		load = p.overlayLoadParams()
	}
	for _, d := range []*factRow{redirect, metacopy} {
		if on := p.paramOn(d.param); on != nil {
			if *on {
				why = append(why, d.param+"=Y by default (module parameter)")
			}
			continue
		}
		if ps, ok := load[d.param]; ok {
			if on := paramValueOn(ps.value); on != nil {
				if *on {
					why = append(why, fmt.Sprintf("%s=%s from %s", d.param, ps.value, ps.source))
				}
				continue
			}
		}
		switch p.mods.config.Tristate(d.config) {
		case "y":
			why = append(why, d.config+"=y")
		case "unknown":
			if len(p.params) == 0 && p.kv.AtLeast(d.minKernel) {
				unknown = true
			}
		}
	}
	switch {
	case len(why) > 0:
		f.Supported = Bool(false)
		f.Detail = "Docker uses the naive diff: " + strings.Join(why, ", ")
	case unknown:
		f.Supported = nil
		f.Detail = via + ", but whether redirect_dir or metacopy is on by default is unknown (no overlay parameters or kernel config)"
	default:
		f.Supported = Bool(true)
		f.Detail = via + "; redirect_dir and metacopy off by default"
	}
}
