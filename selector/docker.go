package selector

import (
	"fmt"
	"strconv"
	"strings"
)

// DockerVersion is a Docker engine release, compared numerically
// (year.month.patch for 17.03–20.10, major.minor.patch from 23.0).
type DockerVersion struct {
	Major, Minor, Patch int
}

// NewestKnown is the newest Docker release whose rules graphprobe knows; it
// is the target when neither --docker-version nor a dockerd is found.
var NewestKnown = DockerVersion{29, 0, 0}

// OldestKnown is the oldest release graphprobe models.
var OldestKnown = DockerVersion{17, 3, 0}

// ParseDockerVersion reads "20.10.24", "17.03", "17.03.2-ce", "25.0.3",
// "v24.0.7", "29".
func ParseDockerVersion(s string) (DockerVersion, error) {
	orig := s
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "v"))
	if i := strings.IndexAny(s, "-+~ "); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if s == "" || len(parts) > 3 {
		return DockerVersion{}, fmt.Errorf("parse docker version %q: want MAJOR[.MINOR[.PATCH]], such as 20.10.24", orig)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || len(p) > 4 {
			return DockerVersion{}, fmt.Errorf("parse docker version %q: want MAJOR[.MINOR[.PATCH]], such as 20.10.24", orig)
		}
		n[i] = v
	}
	v := DockerVersion{n[0], n[1], n[2]}
	if v.Less(OldestKnown) {
		return DockerVersion{}, fmt.Errorf("docker version %s: graphprobe knows Docker 17.03 and later", orig)
	}
	return v, nil
}

// MustDockerVersion parses a version known to be valid.
func MustDockerVersion(s string) DockerVersion {
	v, err := ParseDockerVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

func (v DockerVersion) String() string {
	if v.Major < 23 {
		return fmt.Sprintf("%d.%02d.%d", v.Major, v.Minor, v.Patch)
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Less orders versions.
func (v DockerVersion) Less(o DockerVersion) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// AtLeast is !v.Less(o).
func (v DockerVersion) AtLeast(o DockerVersion) bool { return !v.Less(o) }

func dv(major, minor int) DockerVersion { return DockerVersion{major, minor, 0} }

// Priority returns dockerd's driver priority list for the release, as
// daemon/graphdriver/driver_linux.go of that release lists it.
func (v DockerVersion) Priority() []string {
	switch {
	case v.Less(dv(17, 9)):
		return []string{"aufs", "btrfs", "zfs", "overlay2", "overlay", "devicemapper", "vfs"}
	case v.Less(dv(20, 10)):
		return []string{"btrfs", "zfs", "overlay2", "aufs", "overlay", "devicemapper", "vfs"}
	case v.Less(dv(23, 0)):
		return []string{"btrfs", "zfs", "overlay2", "fuse-overlayfs", "aufs", "overlay", "devicemapper", "vfs"}
	case v.Less(dv(24, 0)):
		return []string{"overlay2", "fuse-overlayfs", "btrfs", "zfs", "aufs", "overlay", "devicemapper", "vfs"}
	case v.Less(dv(25, 0)):
		return []string{"overlay2", "fuse-overlayfs", "btrfs", "zfs", "devicemapper", "vfs"}
	}
	return []string{"overlay2", "fuse-overlayfs", "btrfs", "zfs", "vfs"}
}

// Ships reports whether the release has the driver, and if not, why.
func (v DockerVersion) Ships(driver string) (bool, string) {
	switch driver {
	case "aufs", "overlay":
		if v.AtLeast(dv(24, 0)) {
			return false, fmt.Sprintf("the %s storage driver was removed in Docker 24.0 (dockerd refuses to start: \"the %s storage-driver has been deprecated and removed\")", driver, driver)
		}
	case "devicemapper":
		if v.AtLeast(dv(25, 0)) {
			return false, "the devicemapper storage driver was removed in Docker 25.0"
		}
	case "fuse-overlayfs":
		if v.Less(dv(20, 10)) {
			return false, "the fuse-overlayfs storage driver ships with Docker 20.10 and later"
		}
	}
	return true, ""
}

// ContainerdStoreDefault reports whether the release uses the containerd
// image store (snapshotters) by default on a fresh host.
func (v DockerVersion) ContainerdStoreDefault() bool { return v.AtLeast(dv(29, 0)) }

// ContainerdStoreAvailable reports whether the release can use the
// containerd image store at all (opt-in through features).
func (v DockerVersion) ContainerdStoreAvailable() bool { return v.AtLeast(dv(24, 0)) }

// overlay2KernelCheck says how the release decides whether overlay2 can run
// on the kernel.
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

func (v DockerVersion) overlay2Check() overlay2Check {
	switch {
	case v.Less(dv(17, 12)):
		return checkKernelVersion
	case v.Less(dv(20, 10)):
		return checkVersionThenMount
	}
	return checkMount
}

// OverrideKernelCheckAllowed reports whether overlay2.override_kernel_check
// may be written: it is honoured before 19.03.7, ignored in 19.03.7–23.0
// (harmless but useless), and an unknown option that stops dockerd from 24.
func (v DockerVersion) OverrideKernelCheckAllowed() bool { return v.Less(dv(24, 0)) }

// OverrideKernelCheckHonoured reports whether the option still does
// something.
func (v DockerVersion) OverrideKernelCheckHonoured() bool {
	return v.Less(DockerVersion{19, 3, 7})
}

// Snapshotter maps a graph driver to the containerd snapshotter that takes
// its place in the containerd image store: only overlayfs and native can
// be named in storage-driver, since dockerd 29 reads the names it also
// has as graph drivers (fuse-overlayfs, btrfs, zfs) as those graph
// drivers (seen with 29.7.2: "fuse-overlayfs" and "btrfs" run the graph
// drivers).
func Snapshotter(driver string) string {
	switch driver {
	case "overlay2", "overlay":
		return "overlayfs"
	case "vfs":
		return "native"
	}
	return ""
}

// ForcesGraphDriverMode reports whether a storage-driver value puts dockerd
// 29+ into graph-driver mode on its own (when features.containerd-snapshotter
// is not set): every name of a graph driver it still has does; every
// other name is a containerd snapshotter.
func ForcesGraphDriverMode(name string) bool {
	switch name {
	case "vfs", "overlay2", "btrfs", "fuse-overlayfs", "zfs":
		return true
	}
	return false
}

// GraphDriverFor maps a storage-driver value back to the graph driver whose
// rules decide whether it can run: a snapshotter name maps to its graph
// driver twin.
func GraphDriverFor(name string) string {
	switch name {
	case "overlayfs":
		return "overlay2"
	case "native":
		return "vfs"
	case "devmapper":
		return "devicemapper"
	}
	return name
}
