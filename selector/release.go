package selector

import (
	"fmt"
	"slices"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
	"github.com/graphprobe/graphprobe/version"
)

// Release is what changed in one Docker release line (or the patch release
// that changed a rule) for storage-driver selection. It is one of the two
// tables the decision derives from; drivers.Info is the other, and
// release_test.go holds them to each other.
type Release struct {
	// Since is the first release the row governs; it holds until the next
	// row's Since.
	Since version.Docker
	// Sample is the release of the line that `graphprobe matrix` decides
	// for by default and the completions offer; zero leaves the line out of
	// the defaults (its change shows on no fixture host).
	Sample version.Docker
	// Priority is dockerd's driver priority list, as
	// daemon/graphdriver/driver_linux.go of the release lists it.
	Priority []string
	// Added and Removed are the drivers the release first ships or no
	// longer ships; RemovedNote is what dockerd says of a removed one.
	Added, Removed []string
	RemovedNote    string
	// Overlay2Check is how the release decides that overlay2 can run on
	// the kernel.
	Overlay2Check overlay2Check
	// DTypeWarnOnly: overlay on a backing filesystem without d_type is
	// logged and run all the same (17.03–17.09); 17.12 made it an error.
	DTypeWarnOnly bool
	// RefusesOverlayFSByName: overlay and overlay2 refuse every backing
	// filesystem of drivers.Info.RefusedBackingFS by name; from 20.10
	// dockerd only tries a mount (moby #40210).
	RefusesOverlayFSByName bool
	// OverrideKernelCheck is what overlay2.override_kernel_check does.
	OverrideKernelCheck daemonjson.KernelCheck
	// ContainerdStore is whether the containerd image store exists and
	// whether it is the default on a fresh host.
	ContainerdStore storeAvailability
}

// overlay2Check says how a release decides whether overlay2 can run on the
// kernel.
type overlay2Check int

const (
	// checkKernelVersion: kernel >= 4.0, unless
	// overlay2.override_kernel_check=true (17.03–17.09).
	checkKernelVersion overlay2Check = iota
	// checkVersionThenMount: kernel >= 4.0, else a real multi-lower test
	// mount (17.12–19.03).
	checkVersionThenMount
	// checkMount: always a test mount (20.10 and later).
	checkMount
)

// What overlay2.override_kernel_check does in a release; daemonjson
// applies it to the storage-opts it writes (StorageRules).
const (
	// okcHonoured: the option skips the kernel version check.
	okcHonoured = daemonjson.KernelCheckHonoured
	// okcIgnored: accepted but does nothing (19.03.7–23.0).
	okcIgnored = daemonjson.KernelCheckIgnored
	// okcRefused: an unknown option that stops dockerd (24 and later).
	okcRefused = daemonjson.KernelCheckRefused
)

// storeAvailability is the containerd image store's state in a release.
type storeAvailability int

const (
	storeNone    storeAvailability = iota // graph drivers only
	storeOptIn                            // features.containerd-snapshotter (24–28)
	storeDefault                          // the default on a fresh host (29+)
)

var (
	priority1703 = []string{"aufs", "btrfs", "zfs", "overlay2", "overlay", "devicemapper", "vfs"}
	priority1709 = []string{"btrfs", "zfs", "overlay2", "aufs", "overlay", "devicemapper", "vfs"}
	priority2010 = []string{"btrfs", "zfs", "overlay2", "fuse-overlayfs", "aufs", "overlay", "devicemapper", "vfs"}
	priority2300 = []string{"overlay2", "fuse-overlayfs", "btrfs", "zfs", "aufs", "overlay", "devicemapper", "vfs"}
	priority2400 = []string{"overlay2", "fuse-overlayfs", "btrfs", "zfs", "devicemapper", "vfs"}
	priority2500 = []string{"overlay2", "fuse-overlayfs", "btrfs", "zfs", "vfs"}
)

func dv(s string) version.Docker { return version.MustDocker(s) }

// releases are the Docker releases graphprobe models, oldest first. The
// first row is the oldest release graphprobe knows; the last governs every
// newer release. Adding a Docker release is one row here (and its tests).
var releases = []Release{
	{Since: dv("17.03"), Sample: dv("17.03.2"), Priority: priority1703,
		Overlay2Check: checkKernelVersion, DTypeWarnOnly: true, RefusesOverlayFSByName: true, OverrideKernelCheck: okcHonoured},
	{Since: dv("17.09"), Priority: priority1709,
		Overlay2Check: checkKernelVersion, DTypeWarnOnly: true, RefusesOverlayFSByName: true, OverrideKernelCheck: okcHonoured},
	{Since: dv("17.12"), Sample: dv("18.09.9"), Priority: priority1709,
		Overlay2Check: checkVersionThenMount, RefusesOverlayFSByName: true, OverrideKernelCheck: okcHonoured},
	{Since: dv("19.03.7"), Priority: priority1709,
		Overlay2Check: checkVersionThenMount, RefusesOverlayFSByName: true, OverrideKernelCheck: okcIgnored},
	{Since: dv("20.10"), Sample: dv("20.10.24"), Priority: priority2010, Added: []string{"fuse-overlayfs"},
		Overlay2Check: checkMount, OverrideKernelCheck: okcIgnored},
	{Since: dv("23.0"), Sample: dv("23.0.6"), Priority: priority2300,
		Overlay2Check: checkMount, OverrideKernelCheck: okcIgnored},
	{Since: dv("24.0"), Sample: dv("24.0.9"), Priority: priority2400,
		Removed: []string{"aufs", "overlay"}, RemovedNote: `dockerd refuses to start: "the %s storage-driver has been deprecated and removed"`,
		Overlay2Check: checkMount, OverrideKernelCheck: okcRefused, ContainerdStore: storeOptIn},
	{Since: dv("25.0"), Sample: dv("25.0.5"), Priority: priority2500, Removed: []string{"devicemapper"},
		Overlay2Check: checkMount, OverrideKernelCheck: okcRefused, ContainerdStore: storeOptIn},
	{Since: dv("29.0"), Sample: dv("29.0.0"), Priority: priority2500,
		Overlay2Check: checkMount, OverrideKernelCheck: okcRefused, ContainerdStore: storeDefault},
}

// StorageRules are the rules daemonjson applies to the storage-opts it
// writes for release v (the zero version: the newest), with the releases
// that changed them, for the reasons it gives.
func StorageRules(v version.Docker) daemonjson.Rules {
	r := daemonjson.Rules{KernelCheck: ReleaseFor(v).OverrideKernelCheck}
	for _, row := range releases {
		switch {
		case row.OverrideKernelCheck == okcIgnored && r.KernelCheckIgnoredSince.IsZero():
			r.KernelCheckIgnoredSince = row.Since
		case row.OverrideKernelCheck == okcRefused && r.KernelCheckRefusedSince.IsZero():
			r.KernelCheckRefusedSince = row.Since
		}
	}
	return r
}

// Releases returns the release table, oldest first.
func Releases() []Release { return slices.Clone(releases) }

// ReleaseFor returns the row that governs release v: the last row whose
// Since is not newer than v. A release older than the first row gets the
// first (ParseDockerVersion refuses those); the zero version, "not known",
// gets the newest.
func ReleaseFor(v version.Docker) Release {
	if v.IsZero() {
		return releases[len(releases)-1]
	}
	r := releases[0]
	for _, row := range releases[1:] {
		if v.Less(row.Since) {
			break
		}
		r = row
	}
	return r
}

// OldestKnown is the oldest release graphprobe models.
var OldestKnown = releases[0].Since

// NewestKnown is the newest Docker release whose rules graphprobe knows; it
// is the target when neither --docker-version nor a dockerd is found.
var NewestKnown = releases[len(releases)-1].Since

// Newer reports whether the release is newer than any graphprobe knows:
// it is then decided by the newest rules, which the caller should say.
func Newer(v version.Docker) bool { return v.Major > NewestKnown.Major }

// ParseDockerVersion reads a release (version.ParseDocker) and refuses one
// older than any graphprobe models.
func ParseDockerVersion(s string) (version.Docker, error) {
	v, err := version.ParseDocker(s)
	if err != nil {
		return version.Docker{}, err
	}
	if v.Less(OldestKnown) {
		return version.Docker{}, fmt.Errorf("docker version %s: graphprobe knows Docker %s and later", s, OldestKnown.Line())
	}
	return v, nil
}

// MatrixReleases are the rows' samples: one release per change of the rules
// that the fixture hosts show, for `graphprobe matrix` and the completions.
func MatrixReleases() []version.Docker {
	var out []version.Docker
	for _, r := range releases {
		if !r.Sample.IsZero() {
			out = append(out, r.Sample)
		}
	}
	return out
}

// removedIn returns the row that removed driver, and false while every
// known release ships it.
func removedIn(driver string) (Release, bool) {
	for _, r := range releases {
		if slices.Contains(r.Removed, driver) {
			return r, true
		}
	}
	return Release{}, false
}

// addedIn returns the row that added driver, and false when it predates
// the table.
func addedIn(driver string) (Release, bool) {
	for _, r := range releases {
		if slices.Contains(r.Added, driver) {
			return r, true
		}
	}
	return Release{}, false
}

// LastShippedLine names the last release line that ships a driver removed
// in line removed ("24.0" -> "23.0"), from the table; "<removed" when the
// table does not say.
func LastShippedLine(removed string) string {
	for i, r := range releases {
		if i > 0 && r.Since.Line() == removed {
			return releases[i-1].Since.Line()
		}
	}
	return "<" + removed
}

// Ships reports whether release v has the driver, and if not, why.
func Ships(v version.Docker, driver string) (bool, string) {
	if v.IsZero() {
		v = NewestKnown
	}
	if r, ok := removedIn(driver); ok && v.AtLeast(r.Since) {
		why := fmt.Sprintf("the %s storage driver was removed in Docker %s", driver, r.Since.Line())
		if r.RemovedNote != "" {
			why += " (" + fmt.Sprintf(r.RemovedNote, driver) + ")"
		}
		return false, why
	}
	if r, ok := addedIn(driver); ok && v.Less(r.Since) {
		return false, fmt.Sprintf("the %s storage driver ships with Docker %s and later", driver, r.Since.Line())
	}
	return true, ""
}

// Snapshotter maps a graph driver to the containerd snapshotter that takes
// its place in the containerd image store (drivers.Info.Snapshotter).
func Snapshotter(driver string) string {
	i, _ := drivers.Lookup(driver)
	return i.Snapshotter
}

// ForcesGraphDriverMode reports whether a storage-driver value puts dockerd
// 29+ into graph-driver mode on its own (when features.containerd-snapshotter
// is not set): every name of a graph driver it still has does; every
// other name is a containerd snapshotter.
func ForcesGraphDriverMode(name string) bool {
	i, _ := drivers.Lookup(name)
	return i.ForcesGraphDriverMode
}

// GraphDriverFor maps a storage-driver value back to the graph driver whose
// rules decide whether it can run: a snapshotter name maps to its graph
// driver twin.
func GraphDriverFor(name string) string { return drivers.ForStorageDriver(name) }

// ContainerdStoreDefault reports whether the release uses the containerd
// image store (snapshotters) by default on a fresh host.
func (r Release) ContainerdStoreDefault() bool { return r.ContainerdStore == storeDefault }

// ContainerdStoreAvailable reports whether the release can use the
// containerd image store at all (opt-in through features).
func (r Release) ContainerdStoreAvailable() bool { return r.ContainerdStore != storeNone }

// OverrideKernelCheckAllowed reports whether overlay2.override_kernel_check
// may be written: it is honoured before 19.03.7, ignored in 19.03.7–23.0
// (harmless but useless), and an unknown option that stops dockerd from 24.
func (r Release) OverrideKernelCheckAllowed() bool { return r.OverrideKernelCheck != okcRefused }

// OverrideKernelCheckHonoured reports whether the option still does
// something.
func (r Release) OverrideKernelCheckHonoured() bool { return r.OverrideKernelCheck == okcHonoured }
