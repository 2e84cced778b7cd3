package selector

import (
	"fmt"
	"slices"
	"strings"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/version"
)

// verdict is one driver's eligibility before policy and prior state.
type verdict struct {
	eligible bool
	// reasons say why not (or, when eligible, what made it so).
	reasons []string
	hints   []string
	// unverified lists what could not be checked; the driver stays
	// eligible (dockerd would try it), and a live init settles it.
	unverified []string
	// opts are storage-opts the driver needs on this host.
	opts []string
	// module is the kernel module to load before a live init ("" if none).
	module string
}

func (v *verdict) reject(reason, hint string) {
	v.eligible = false
	v.reasons = append(v.reasons, reason)
	if hint != "" {
		v.hints = append(v.hints, hint)
	}
}

func (v *verdict) unknown(what string) { v.unverified = append(v.unverified, what) }

// driverRule is how eligibility reads a driver's probe fact
// (drivers.Info.Fact) and what it checks beyond it. Every driver in the
// registry has one (TestEveryDriverHasARule), so a newly registered driver
// cannot be rejected silently.
type driverRule struct {
	// unavailable prefixes the fact's detail when the fact says no ("":
	// the detail alone), unknown when the fact is unknown.
	unavailable, unknown string
	// hint is the remedy when the fact gives none.
	hint string
	// module: a loadable module of the fact's name is loaded before a
	// live init, as dockerd does.
	module bool
	// mountDecides: from the releases that stop refusing backing
	// filesystems by name (Release.RefusesOverlayFSByName false), dockerd
	// decides by a test mount instead.
	mountDecides bool
	// extra applies the driver's own rules once the fact allowed it; it
	// returns false when it rejected the driver.
	extra func(r *probe.Report, rel Release, dv version.Docker, driver string, v *verdict) bool
}

var driverRules = map[string]driverRule{
	"overlay2":       {unavailable: "overlay is not available: ", unknown: "overlay: ", module: true, mountDecides: true, extra: overlayRules},
	"overlay":        {unavailable: "overlay is not available: ", unknown: "overlay: ", module: true, mountDecides: true, extra: overlayRules},
	"aufs":           {unavailable: "aufs is not available: ", unknown: "aufs module: ", module: true, hint: "install the distribution's aufs module package (Ubuntu: linux-image-extra-$(uname -r); Debian: aufs-dkms)"},
	"fuse-overlayfs": {unavailable: "fuse-overlayfs is not usable: ", unknown: "fuse-overlayfs: ", hint: "install the fuse-overlayfs package"},
	"btrfs":          {unknown: "btrfs: "},
	"zfs":            {unknown: "zfs: "},
	"devicemapper": {unknown: "devicemapper: ", extra: func(_ *probe.Report, _ Release, _ version.Docker, _ string, v *verdict) bool {
		v.reasons = append(v.reasons, "devicemapper without a configured thin pool runs on loop devices (loop-lvm), which Docker strongly discourages for production")
		return true
	}},
	"vfs": {extra: func(_ *probe.Report, _ Release, _ version.Docker, _ string, v *verdict) bool {
		v.reasons = append(v.reasons, "vfs always works, but copies every layer in full: slow and space-hungry")
		return true
	}},
}

// eligibility decides whether dockerd of version dv can run driver on the
// host the report describes. It is pure.
func eligibility(r *probe.Report, dv version.Docker, driver string) verdict {
	v := verdict{eligible: true}
	if ok, why := Ships(dv, driver); !ok {
		hint := "use overlay2; migrating keeps no images: docker save them first, or re-pull"
		if ra, ok := addedIn(driver); ok && dv.Less(ra.Since) {
			hint = "upgrade Docker to " + ra.Since.Line() + " or later"
		}
		v.reject(why, hint)
		return v
	}
	info, known := drivers.Lookup(driver)
	rule, ok := driverRules[driver]
	if !known || !ok {
		v.reject("unknown driver", "")
		return v
	}
	rel := ReleaseFor(dv)
	if info.Fact != "" {
		f := r.Fact(info.Fact)
		if f.No() {
			v.reject(rule.unavailable+f.Detail, orHint(f.Hint, rule.hint))
			return v
		}
		if !f.Known() {
			v.unknown(rule.unknown + f.Detail)
		}
		if rule.module && f.Module == probe.ModuleLoadable {
			v.module = info.Fact
		}
	}
	if refusesBackingFS(r, rel, dv, info, rule, &v) {
		return v
	}
	if rule.extra != nil {
		rule.extra(r, rel, dv, driver, &v)
	}
	return v
}

// refusesBackingFS applies the driver's refused backing filesystems
// (drivers.Info.RefusedBackingFS) as release rel does, and reports whether
// it rejected the driver.
func refusesBackingFS(r *probe.Report, rel Release, dv version.Docker, info drivers.Info, rule driverRule, v *verdict) bool {
	fs := r.DataRoot.Filesystem
	if !slices.Contains(info.RefusedBackingFS, fs) {
		return false
	}
	hint := "put the data-root on ext4 or xfs (for example a dedicated volume mounted at " + r.DataRoot.Path + ")"
	if fs == "overlayfs" {
		hint = "the data-root is itself on overlayfs (a container, or Docker-in-Docker): mount a volume at " + r.DataRoot.Path + ", or use fuse-overlayfs (Docker 20.10+)"
	}
	switch {
	case !rule.mountDecides || rel.RefusesOverlayFSByName:
		v.reject(fmt.Sprintf("backing filesystem %s is unsupported by %s (Docker %s refuses it by name)", fs, info.Name, dv), hint)
		return true
	case slices.Contains(info.KernelRefusedFS, fs):
		// From 20.10 dockerd only tries a mount (moby #40210), which
		// fails here: the kernel cannot put overlay's upper layer on
		// this filesystem.
		v.reject(fmt.Sprintf("the kernel cannot use %s as overlay's upper layer (dockerd's test mount fails: \"failed to mount overlay: invalid argument\")", fs), hint)
		return true
	}
	// zfs 2.2 and later can back overlay: only the test mount on the
	// data-root can tell.
	if ml := r.Fact(probe.FactMultiLowerdir); ml.Method != probe.MethodMountTest && ml.Method != probe.MethodCaptured {
		v.unknown(fmt.Sprintf("overlay on %s: Docker %s decides by a test mount, which this probe could not run on the data-root", fs, dv))
	}
	return false
}

// overlayRules are overlay's and overlay2's rules past the overlay fact and
// the backing filesystem: d_type, and for overlay2 the kernel check.
func overlayRules(r *probe.Report, rel Release, dv version.Docker, driver string, v *verdict) bool {
	fs := r.DataRoot.Filesystem
	dt := r.Fact(probe.FactDType)
	switch {
	case dt.No() && rel.DTypeWarnOnly:
		// 17.03–17.09 logged the warning and ran the driver all the
		// same; 17.12 made it an error.
		v.reasons = append(v.reasons, fmt.Sprintf("the backing %s filesystem is formatted without d_type support, which leads to incorrect behavior; Docker %s only warns and runs %s anyway (17.12 and later refuse it): %s", fs, dv, driver, hostsys.DTypeHint(fs)))
	case dt.No():
		v.reject(fmt.Sprintf("the backing %s filesystem is formatted without d_type support, which leads to incorrect behavior", fs), hostsys.DTypeHint(fs))
		return false
	}
	if !dt.Known() {
		v.unknown("d_type: " + dt.Detail)
	}
	if driver == "overlay2" {
		overlay2Rules(r, rel, dv, v)
	}
	return v.eligible
}

// overlay2Rules applies how each Docker release decides that overlay2 can
// run on the kernel.
func overlay2Rules(r *probe.Report, rel Release, dv version.Docker, v *verdict) {
	ml := r.Fact(probe.FactMultiLowerdir)
	kv, kvOK := r.Kernel.Parsed()
	versionOK := kvOK && kv.AtLeast(version.K(4, 0))
	if ml.No() {
		v.reject("the kernel cannot mount overlay with multiple lower layers: "+ml.Detail, ml.Hint)
		return
	}
	if !ml.Known() {
		v.unknown("multiple lower layers: " + ml.Detail)
	}
	switch rel.Overlay2Check {
	case checkKernelVersion:
		if !kvOK {
			v.unknown("Docker " + dv.String() + " checks the kernel version for overlay2, and the release is unknown")
			return
		}
		if !versionOK {
			// The test (or a known backport) says the kernel can; this
			// Docker only looks at the version unless told not to.
			v.opts = append(v.opts, "overlay2.override_kernel_check=true")
			v.reasons = append(v.reasons, fmt.Sprintf("kernel %s is below 4.0 but has multiple lower layers (%s); Docker %s checks only the version, so overlay2.override_kernel_check=true is needed", kv, ml.Method, dv))
		}
	case checkVersionThenMount:
		if !versionOK {
			v.reasons = append(v.reasons, fmt.Sprintf("kernel below 4.0: Docker %s falls back to a test mount with multiple lower layers, which works here (%s)", dv, ml.Method))
		}
		if r.DataRoot.Filesystem == "btrfs" && kvOK && !kv.AtLeast(version.K(4, 7)) {
			v.reject(fmt.Sprintf("overlay2 on btrfs needs kernel 4.7 (Docker %s refuses it on %s)", dv, kv), "upgrade the kernel, or use the btrfs driver")
		}
	}
}

// joinReasons makes a one-line reason.
func joinReasons(rs []string) string { return strings.Join(rs, "; ") }

func orHint(h, def string) string {
	if h != "" {
		return h
	}
	return def
}
