package selector

import (
	"fmt"
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

// eligibility decides whether dockerd of version dv can run driver on the
// host the report describes. It is pure.
func eligibility(r *probe.Report, dv DockerVersion, driver string) verdict {
	v := verdict{eligible: true}
	if ok, why := dv.Ships(driver); !ok {
		hint := "use overlay2; migrating keeps no images: docker save them first, or re-pull"
		if driver == "fuse-overlayfs" {
			hint = "upgrade Docker to 20.10 or later"
		}
		v.reject(why, hint)
		return v
	}
	info, _ := drivers.Lookup(driver)
	fs := r.DataRoot.Filesystem
	refuses := func() bool {
		for _, bad := range info.RefusedBackingFS {
			if fs != bad {
				continue
			}
			hint := "put the data-root on ext4 or xfs (for example a dedicated volume mounted at " + r.DataRoot.Path + ")"
			if fs == "overlayfs" {
				hint = "the data-root is itself on overlayfs (a container, or Docker-in-Docker): mount a volume at " + r.DataRoot.Path + ", or use fuse-overlayfs (Docker 20.10+)"
			}
			overlayFamily := driver == "overlay2" || driver == "overlay"
			switch {
			case !overlayFamily || dv.Less(dv2010):
				v.reject(fmt.Sprintf("backing filesystem %s is unsupported by %s (Docker %s refuses it by name)", fs, driver, dv), hint)
				return true
			case kernelRefusesUpper[fs]:
				// From 20.10 dockerd only tries a mount (moby #40210), which
				// fails here: the kernel cannot put overlay's upper layer
				// on this filesystem.
				v.reject(fmt.Sprintf("the kernel cannot use %s as overlay's upper layer (dockerd's test mount fails: \"failed to mount overlay: invalid argument\")", fs), hint)
				return true
			default:
				// zfs 2.2 and later can back overlay: only the test mount
				// on the data-root can tell.
				if ml := r.Fact(probe.FactMultiLowerdir); ml.Method != probe.MethodMountTest && ml.Method != probe.MethodCaptured {
					v.unknown(fmt.Sprintf("overlay on %s: Docker %s decides by a test mount, which this probe could not run on the data-root", fs, dv))
				}
			}
		}
		return false
	}
	switch driver {
	case "overlay2", "overlay":
		ov := r.Fact(probe.FactOverlay)
		if ov.No() {
			v.reject("overlay is not available: "+ov.Detail, ov.Hint)
			return v
		}
		if !ov.Known() {
			v.unknown("overlay: " + ov.Detail)
		}
		if ov.Module == probe.ModuleLoadable {
			v.module = "overlay"
		}
		if refuses() {
			return v
		}
		dt := r.Fact(probe.FactDType)
		switch {
		case dt.No() && dv.Less(dv1712):
			// 17.03–17.09 logged the warning and ran the driver all the
			// same; 17.12 made it an error.
			v.reasons = append(v.reasons, fmt.Sprintf("the backing %s filesystem is formatted without d_type support, which leads to incorrect behavior; Docker %s only warns and runs %s anyway (17.12 and later refuse it): %s", fs, dv, driver, hostsys.DTypeHint(fs)))
		case dt.No():
			v.reject(fmt.Sprintf("the backing %s filesystem is formatted without d_type support, which leads to incorrect behavior", fs), hostsys.DTypeHint(fs))
			return v
		}
		if !dt.Known() {
			v.unknown("d_type: " + dt.Detail)
		}
		if driver == "overlay2" {
			overlay2Rules(r, dv, &v)
		}
	case "aufs":
		f := r.Fact(probe.FactAufs)
		if f.No() {
			v.reject("aufs is not available: "+f.Detail, orHint(f.Hint, "install the distribution's aufs module package (Ubuntu: linux-image-extra-$(uname -r); Debian: aufs-dkms)"))
			return v
		}
		if !f.Known() {
			v.unknown("aufs module: " + f.Detail)
		}
		if f.Module == probe.ModuleLoadable {
			v.module = "aufs"
		}
		refuses()
	case "fuse-overlayfs":
		f := r.Fact(probe.FactFuseOverlayfs)
		if f.No() {
			v.reject("fuse-overlayfs is not usable: "+f.Detail, orHint(f.Hint, "install the fuse-overlayfs package"))
			return v
		}
		if !f.Known() {
			v.unknown("fuse-overlayfs: " + f.Detail)
		}
	case "btrfs", "zfs", "devicemapper":
		f := r.Fact(map[string]string{"btrfs": probe.FactBtrfs, "zfs": probe.FactZfs, "devicemapper": probe.FactDevicemapper}[driver])
		if f.No() {
			v.reject(f.Detail, f.Hint)
			return v
		}
		if !f.Known() {
			v.unknown(driver + ": " + f.Detail)
		}
		if driver == "devicemapper" {
			v.reasons = append(v.reasons, "devicemapper without a configured thin pool runs on loop devices (loop-lvm), which Docker strongly discourages for production")
		}
	case "vfs":
		v.reasons = append(v.reasons, "vfs always works, but copies every layer in full: slow and space-hungry")
	default:
		v.reject("unknown driver", "")
	}
	return v
}

// overlay2Rules applies how each Docker release decides that overlay2 can
// run on the kernel.
func overlay2Rules(r *probe.Report, dv DockerVersion, v *verdict) {
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
	switch dv.overlay2Check() {
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

var (
	dv1712 = DockerVersion{17, 12, 0}
	dv2010 = DockerVersion{20, 10, 0}
)

// kernelRefusesUpper are filesystems the kernel refuses as overlay's upper
// layer, whatever dockerd checks.
var kernelRefusesUpper = map[string]bool{"overlayfs": true, "aufs": true, "nfs": true}

// joinReasons makes a one-line reason.
func joinReasons(rs []string) string { return strings.Join(rs, "; ") }

func orHint(h, def string) string {
	if h != "" {
		return h
	}
	return def
}
