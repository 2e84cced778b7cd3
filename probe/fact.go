package probe

// The JSON schema lists the facts of factRows.
//go:generate go test -run TestSchemaFactNames -update .

import (
	"errors"
	"fmt"

	"github.com/graphprobe/graphprobe/version"
)

// Method says what decided a fact's verdict.
type Method string

const (
	// MethodMountTest: a real test mount (or syscall test) on this host.
	MethodMountTest Method = "mount-test"
	// MethodFile: a file of the host (/proc, /sys, /lib/modules, a binary).
	MethodFile Method = "file"
	// MethodVersion: the kernel version alone.
	MethodVersion Method = "version"
	// MethodInferred: reasoned from captured files when no test could run.
	MethodInferred Method = "inferred"
	// MethodCaptured: a live test result stored with a captured host.
	MethodCaptured Method = "captured"
)

// Fact names, as the JSON document and its users spell them. Each is the
// name of one row of factRows, which says everything else about it.
const (
	FactOverlay       = "overlay"
	FactMultiLowerdir = "overlay.multi-lowerdir"
	FactNativeDiff    = "overlay.native-diff"
	FactRedirectDir   = "overlay.redirect-dir"
	FactMetacopy      = "overlay.metacopy"
	FactIndex         = "overlay.index"
	FactVolatile      = "overlay.volatile"
	FactUserxattr     = "overlay.userxattr"
	FactLowerdirPlus  = "overlay.lowerdir-plus"
	FactAufs          = "aufs"
	FactDType         = "d_type"
	FactFuseOverlayfs = "fuse-overlayfs"
	FactBtrfs         = "btrfs"
	FactZfs           = "zfs"
	FactDevicemapper  = "devicemapper"
)

// testOn says where a fact's live test runs. Every fact is decided from
// the host's files in both modes (live: /proc, /sys, /boot, /lib/modules;
// fixture: the captured copies); a fact with a live test also runs it on a
// live host as root, and a capture carries that result to fixture mode.
type testOn uint8

const (
	// noLiveTest: the files decide. (d_type's getdents test is part of
	// reading the data-root, which every fact shares.)
	noLiveTest testOn = iota
	// onDataRoot: the answer depends on the data-root's filesystem, so
	// the test runs there, as dockerd's own checks do.
	onDataRoot
	// onTmpfs: a kernel feature, tested on a private tmpfs, which costs
	// nothing to clean up (removing directories is the slowest part of a
	// probe on some disks).
	onTmpfs
)

// liveTest is a real test of a fact on the host: it gets a fresh scratch
// dir on the filesystem under test and runs on the mount namespace's
// thread. nil means supported; an error wrapping ErrNotSupported means
// no; any other error is inconclusive. The row adds its name and minimum
// kernel to the *UnsupportedError (see factRow.runLive), so a test never
// repeats them.
type liveTest func(scratch string, env *liveEnv) error

// factRow is one fact the probe reports, with everything graphprobe knows
// about it: the kernel change behind it, how the host's files show it, the
// live test and where it runs. The report's display order and the JSON
// schema's list of facts come from factRows.
type factRow struct {
	name string
	// minKernel is the upstream kernel that brought the feature; zero
	// where no kernel threshold applies.
	minKernel version.Kernel
	// module and filesystem name the kernel module behind the fact, as
	// /proc/modules and /proc/filesystems spell them.
	module, filesystem string
	// config is the kernel option of the fact. For an overlay feature its
	// presence in a kernel config, even as "is not set", proves the kernel
	// has it (vendor kernels backport features below the upstream version).
	config string
	// param is the /sys/module/overlay/parameters file that exists on
	// kernels with the feature.
	param string
	// decide gives the verdict, live and fixture alike, taking the live
	// or captured test result where there is one.
	decide func(p *prober, row *factRow) Fact
	// live is the fact's own test on a live host; on says where it runs.
	live liveTest
	on   testOn
	// settledBy names the fact whose test, when it passes, passes this
	// one too: its test then runs first and this one is skipped.
	settledBy string
	// backport reports vendor kernels that carry the feature below
	// minKernel; backportNote says which.
	backport     func(version.Kernel) bool
	backportNote string
	// hint is the remedy when the answer is no.
	hint string
}

// factRows are the facts, in the order they are shown to people. Each cites
// the kernel change (or the Docker rule) it stands for. The overlay row
// comes before the overlay features, whose verdicts read it.
var factRows = []factRow{
	// "overlayfs: add overlay filesystem" (Linux 3.18): Docker's overlay
	// driver, one lower, upper and work dir.
	{
		name: FactOverlay, minKernel: version.K(3, 18),
		module: "overlay", filesystem: "overlay", config: "CONFIG_OVERLAY_FS",
		decide: (*prober).overlayFact, live: testOverlay, on: onDataRoot,
		settledBy: FactMultiLowerdir,
	},
	// "ovl: support multiple lower layers" (Linux 4.0, commit a78d9f0d5d5c).
	// overlay2 stacks image layers as lowers; without this only the
	// overlay (v1) driver works.
	{
		name: FactMultiLowerdir, minKernel: version.K(4, 0),
		decide: (*prober).overlayFeatureFact, live: testMultiLowerdir, on: onDataRoot,
		backport:     backportsMultiLowerdir,
		backportNote: "RHEL/CentOS 7.3 and later (3.10.0-514+) backport multiple lower layers",
		hint:         "upgrade the kernel to 4.0 or later (RHEL/CentOS: 7.3 or later), or use the overlay driver",
	},
	// "ovl: don't copy up opaqueness" (Linux 4.8); redirect_dir (4.10) and
	// metacopy (4.19) switched on by default make Docker fall back to the
	// naive diff, which is correct but slower on commit and push.
	{
		name: FactNativeDiff, minKernel: version.K(4, 8),
		decide: (*prober).overlayFeatureFact, live: testNativeDiff, on: onDataRoot,
		hint: "native diff only speeds up docker commit/push; to get it, disable redirect_dir and metacopy by default (overlay.redirect_dir=N overlay.metacopy=N on the kernel command line)",
	},
	// "ovl: redirect on rename-dir" (Linux 4.10): renaming a merged
	// directory without EXDEV.
	{
		name: FactRedirectDir, minKernel: version.K(4, 10),
		param: "redirect_dir", config: "CONFIG_OVERLAY_FS_REDIRECT_DIR",
		decide: (*prober).overlayFeatureFact, live: testRedirectDir, on: onTmpfs,
	},
	// "ovl: Add an mechanism to do metadata-only copy up" (Linux 4.19).
	{
		name: FactMetacopy, minKernel: version.K(4, 19),
		param: "metacopy", config: "CONFIG_OVERLAY_FS_METACOPY",
		decide: (*prober).overlayFeatureFact, live: testMetacopy, on: onTmpfs,
	},
	// "ovl: introduce the inodes index dir feature" (Linux 4.13). Docker
	// and containerd mount with index=off when the parameter exists.
	{
		name: FactIndex, minKernel: version.K(4, 13),
		param: "index", config: "CONFIG_OVERLAY_FS_INDEX",
		decide: (*prober).overlayFeatureFact, live: testIndex, on: onTmpfs,
	},
	// "ovl: provide a mount option "volatile"" (Linux 5.10).
	{
		name: FactVolatile, minKernel: version.K(5, 10),
		decide: (*prober).overlayFeatureFact, live: testVolatile, on: onTmpfs,
	},
	// "ovl: user xattr" (Linux 5.11): overlay in user namespaces, which
	// rootless Docker needs for kernel overlay. It needs user.* xattrs on
	// the upper filesystem, hence the test on the data-root.
	{
		name: FactUserxattr, minKernel: version.K(5, 11),
		decide: (*prober).overlayFeatureFact, live: testUserxattr, on: onDataRoot,
		hint: "rootless Docker needs kernel 5.11 for overlay2; otherwise it uses fuse-overlayfs",
	},
	// "ovl: add support for appending lowerdirs one by one" (Linux 6.8):
	// lowerdir+ through fsconfig(2) has no page-size limit on the stack.
	{
		name: FactLowerdirPlus, minKernel: version.K(6, 8),
		decide: (*prober).overlayFeatureFact, live: testLowerdirPlus, on: onTmpfs,
	},
	// Docker refuses overlay on a backing filesystem without d_type
	// (moby "overlay2: check d_type support", Docker 1.13).
	{name: FactDType, decide: (*prober).dTypeFact},
	// aufs was never merged upstream: only distribution kernels carry it.
	{
		name: FactAufs, module: "aufs", filesystem: "aufs", config: "CONFIG_AUFS_FS",
		decide: (*prober).aufsFact,
	},
	// Docker requires kernel 4.18 for fuse-overlayfs (FUSE in user
	// namespaces, "fuse: Allow fully unprivileged mounts", Linux 4.18).
	{
		name: FactFuseOverlayfs, minKernel: version.K(4, 18),
		module: "fuse", filesystem: "fuse", config: "CONFIG_FUSE_FS",
		decide: (*prober).fuseOverlayfsFact,
	},
	{
		name: FactBtrfs, module: "btrfs", filesystem: "btrfs", config: "CONFIG_BTRFS_FS",
		decide: (*prober).btrfsFact,
	},
	{
		name: FactZfs, module: "zfs", filesystem: "zfs", config: "CONFIG_ZFS",
		decide: (*prober).zfsFact,
	},
	{
		name: FactDevicemapper, module: "dm_mod", config: "CONFIG_BLK_DEV_DM",
		decide: (*prober).devicemapperFact,
	},
}

// FactNames gives every fact the probe reports, in the order they are
// shown to people.
func FactNames() []string {
	names := make([]string, len(factRows))
	for i := range factRows {
		names[i] = factRows[i].name
	}
	return names
}

// decideFacts gives every row its verdict, in table order.
func (p *prober) decideFacts() {
	for i := range p.rows {
		row := &p.rows[i]
		p.r.Facts[row.name] = row.decide(p, row)
	}
}

// row returns the named row; the names are constants of this package, so
// a missing one is a programming error.
func (p *prober) row(name string) *factRow {
	for i := range p.rows {
		if p.rows[i].name == name {
			return &p.rows[i]
		}
	}
	panic("probe: no fact row " + name)
}

// versionSaysAtLeast is what the kernel version alone says about a
// threshold: nil where none applies or the release is unknown.
func (p *prober) versionAtLeast(min version.Kernel) *bool {
	if !p.kvOK || min.IsZero() {
		return nil
	}
	return Bool(p.kv.AtLeast(min))
}

// runLive runs the row's test and stamps a "no" with the row's name and
// minimum kernel.
func (r *factRow) runLive(scratch string, env *liveEnv) error {
	err := r.live(scratch, env)
	var ue *UnsupportedError
	if errors.As(err, &ue) && ue.Feature == "" {
		ue.Feature = r.name
		if !ue.hostSetting {
			ue.MinKernel = r.minKernel.Threshold()
		}
	}
	return err
}

// Fact is one verdict about the host. Supported and Version are tri-state:
// nil means unknown (inconclusive, or no threshold applies).
type Fact struct {
	// Supported is the verdict.
	Supported *bool `json:"supported"`
	// Method is what decided Supported.
	Method Method `json:"method"`
	// Version is what the kernel version alone says; nil where no threshold
	// applies or the release could not be parsed.
	Version *bool `json:"version"`
	// MinKernel is the upstream kernel that introduced the feature.
	MinKernel string `json:"minKernel,omitempty"`
	// Detail is the evidence behind the verdict, for people.
	Detail string `json:"detail,omitempty"`
	// Hint is the remedy when the answer is no (or unknown).
	Hint string `json:"hint,omitempty"`
	// Module is the state of the kernel module behind the fact, where one
	// applies: builtin, loaded, loadable, absent or unknown.
	Module ModuleState `json:"module,omitempty"`
}

// Known reports whether the verdict is conclusive.
func (f Fact) Known() bool { return f.Supported != nil }

// Yes reports a conclusive yes.
func (f Fact) Yes() bool { return f.Supported != nil && *f.Supported }

// No reports a conclusive no.
func (f Fact) No() bool { return f.Supported != nil && !*f.Supported }

// Bool returns a pointer to b, for tri-state fields.
func Bool(b bool) *bool { return &b }

// ErrNotSupported is wrapped by every error that means "this host cannot do
// it", as opposed to "the test could not tell".
var ErrNotSupported = errors.New("not supported")

// UnsupportedError is a conclusive "no", carrying the kernel that introduced
// the feature so that callers can say what would fix it.
type UnsupportedError struct {
	Feature   string
	MinKernel string
	Reason    string
	// hostSetting marks a "no" that no kernel upgrade fixes: the kernel
	// has the feature, and the host's settings (module defaults, the
	// upper filesystem) rule it out.
	hostSetting bool
}

func (e *UnsupportedError) Error() string {
	msg := e.Feature + " " + ErrNotSupported.Error()
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.MinKernel != "" {
		msg += fmt.Sprintf(" (requires kernel %s or later)", e.MinKernel)
	}
	return msg
}

func (e *UnsupportedError) Unwrap() error { return ErrNotSupported }

// notSupported is a conclusive "no" of a live test: the kernel lacks the
// feature. The row running the test adds the name and minimum kernel.
func notSupported(format string, args ...any) error {
	return &UnsupportedError{Reason: fmt.Sprintf(format, args...)}
}

// notEnabled is a conclusive "no" of a live test where the kernel has the
// feature but the host's settings rule it out: no minimum kernel applies.
func notEnabled(format string, args ...any) error {
	return &UnsupportedError{Reason: fmt.Sprintf(format, args...), hostSetting: true}
}

// errNeedsRoot marks live tests that could not run without privileges; it is
// inconclusive, never a "no".
var errNeedsRoot = errors.New("needs root")
