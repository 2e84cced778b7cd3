package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/internal/dockertest"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector"
	"github.com/graphprobe/graphprobe/version"
)

// dockerd20 is the release the engine cache holds (dockertest.WantVersion).
const dockerd20 = "20.10.24"

// choiceCases are the data-roots of TestDockerdDefaultDriver. The cases
// that hide fuse-overlayfs show the same filesystem to a dockerd that
// cannot find the binary, so that both sides of 20.10's fallback run on
// every machine that has fuse-overlayfs installed.
var choiceCases = []struct {
	name     string
	kind     string
	hideFuse bool
}{
	{"ext4", testutil.Ext4, false},
	{"xfs", testutil.XFS, false},
	{"btrfs", testutil.Btrfs, false},
	{"tmpfs", testutil.Tmpfs, false},
	{"ext4-nodtype", testutil.Ext4NoDType, false},
	{"ext4-nodtype/no-fuse-overlayfs", testutil.Ext4NoDType, true},
	{"overlayfs", testutil.Overlay, false},
	{"overlayfs/no-fuse-overlayfs", testutil.Overlay, true},
}

// expectedDriver20 is the driver dockerd 20.10 picks with no driver
// configured and an empty data-root, by its priority list btrfs, zfs,
// overlay2, fuse-overlayfs, aufs, overlay, devicemapper, vfs, where a
// "not supported" init moves on to the next driver:
//   - btrfs wants the data-root on btrfs; zfs on zfs (never made here);
//   - overlay2 runs a test mount with two lower dirs in the data-root and
//     then wants d_type. On ext4 -O ^filetype the mount works but the
//     d_type check fails (a NotSupportedError); on a data-root that is
//     itself on overlayfs the test mount fails (overlayfs cannot be an
//     upper layer), which 20.10 logs and turns into ErrNotSupported;
//   - fuse-overlayfs checks only that the binary is on PATH and the kernel
//     is 4.18 or later: it does not look at the backing filesystem at all,
//     so it takes both cases above when installed;
//   - aufs needs the module (Debian and Ubuntu kernels only);
//   - overlay fails where overlay2 did, for the same reasons;
//   - devicemapper needs device-mapper (/dev/mapper/control), and then
//     20.10 builds a loop-lvm pool; on a host with it either devicemapper
//     or vfs is accepted, because the pool's success depends on dm-thin;
//   - vfs always works.
func expectedDriver20(t *testing.T, kind string, path []string) []string {
	switch kind {
	case testutil.Btrfs:
		return []string{"btrfs"}
	case testutil.Ext4, testutil.XFS, testutil.Tmpfs:
		return []string{"overlay2"}
	}
	if lookPathIn(path, "fuse-overlayfs") && kernelAtLeast(t, 4, 18) {
		return []string{"fuse-overlayfs"}
	}
	if aufsLoadable(t) {
		return []string{"aufs"}
	}
	if _, err := os.Stat("/dev/mapper/control"); err == nil {
		return []string{"devicemapper", "vfs"}
	}
	return []string{"vfs"}
}

// backingName is Docker's name for the filesystem of each kind.
var backingName = map[string]string{
	testutil.Ext4:        "extfs",
	testutil.Ext4NoDType: "extfs",
	testutil.XFS:         "xfs",
	testutil.Tmpfs:       "tmpfs",
	testutil.Btrfs:       "btrfs",
	testutil.Overlay:     "overlayfs",
}

// TestDockerdDefaultDriver starts dockerd 20.10 with no storage driver
// configured on each filesystem, and checks what it picks and reports
// against Docker's rules, and against what graphprobe predicts for the same
// data-root before dockerd has touched it.
func TestDockerdDefaultDriver(t *testing.T) {
	dockertest.Ensure(t)
	for _, tc := range choiceCases {
		t.Run(tc.name, func(t *testing.T) {
			fs := testutil.NewFS(t, tc.kind, 0)
			dataRoot := filepath.Join(fs.Dir, "docker")
			path := dockerdPath(t, tc.hideFuse)

			// graphprobe's prediction, made first: once dockerd has run,
			// its driver directory is prior state and decides by itself.
			report, err := probe.Run(context.Background(), probe.Options{DataRoot: dataRoot, PriorDirs: drivers.PriorDirs()})
			if err != nil {
				t.Fatalf("probe: %v", err)
			}
			if tc.hideFuse {
				// The probe looks on the host's PATH; this dockerd cannot
				// see the binary, so neither may the prediction.
				report.Facts[probe.FactFuseOverlayfs] = probe.Fact{Supported: probe.Bool(false), Method: probe.MethodFile, Detail: "hidden from this dockerd's PATH"}
			}
			decision := selector.Decide(report, version.MustDocker(dockerd20), selector.Options{})

			d := dockertest.Start(t, dockertest.Options{DataRoot: dataRoot, Path: path})
			info := d.Info(t)
			d.Stop(t)
			entries := dockertest.ParseLog(d.Log())
			t.Logf("docker info: Driver=%s DriverStatus=%q (started in %s)", info.Driver, info.DriverStatus, d.StartDuration)
			for _, e := range dockertest.AtLevel(entries, "error") {
				if _, ok := e.Fields["storage-driver"]; ok {
					t.Logf("dockerd log: %s", e.Line)
				}
			}

			want := expectedDriver20(t, tc.kind, path)
			if !slices.Contains(want, info.Driver) {
				t.Errorf("dockerd %s picked %s on %s, want %s", dockerd20, info.Driver, tc.name, strings.Join(want, " or "))
			}
			if info.DockerRootDir != dataRoot {
				t.Errorf("DockerRootDir %s, want %s", info.DockerRootDir, dataRoot)
			}
			if info.Driver == "overlay2" {
				checkOverlay2Status(t, info, backingName[tc.kind])
			}
			checkFallbackLog(t, tc.kind, info.Driver, entries)

			t.Run("graphprobe-agrees", func(t *testing.T) {
				if decision.Driver != info.Driver {
					t.Errorf("graphprobe predicts %s for dockerd %s on %s, dockerd picked %s (reason: %s)", decision.Driver, dockerd20, tc.name, info.Driver, decision.Reason)
				}
				dr := report.DataRoot
				if want := backingName[tc.kind]; dr.Filesystem != want {
					t.Errorf("probe: data-root filesystem %q, want %q", dr.Filesystem, want)
				}
				if bfs, ok := info.Status(dockertest.StatusBackingFS); ok && dr.Filesystem != bfs {
					t.Errorf("probe: data-root filesystem %q, dockerd reports backing filesystem %q", dr.Filesystem, bfs)
				}
				wantDType := tc.kind != testutil.Ext4NoDType
				if dr.DType == nil || *dr.DType != wantDType {
					t.Errorf("probe: d_type %v, want %v", ptrString(dr.DType), wantDType)
				}
				if v, ok := info.Status(dockertest.StatusDType); ok && (dr.DType == nil || strconv.FormatBool(*dr.DType) != v) {
					t.Errorf("probe: d_type %v, dockerd reports %s", ptrString(dr.DType), v)
				}
				if dr.OnOverlay != (tc.kind == testutil.Overlay) {
					t.Errorf("probe: onOverlay %v on %s", dr.OnOverlay, tc.name)
				}
				if v, ok := info.Status(dockertest.StatusNativeDiff); ok {
					f := report.Facts[probe.FactNativeDiff]
					if !f.Known() || strconv.FormatBool(f.Yes()) != v {
						t.Errorf("probe: %s %v (%s), dockerd reports Native Overlay Diff %s", probe.FactNativeDiff, ptrString(f.Supported), f.Detail, v)
					}
				}
			})
		})
	}
}

// checkOverlay2Status checks overlay2's rows in docker info: the backing
// filesystem, d_type (overlay2 only starts with it on a fresh data-root),
// native diff (off when the kernel's overlay creates redirect_dir
// redirects or copies the opaque xattr up, before 4.8) and userxattr (off
// for a root dockerd outside a user namespace).
func checkOverlay2Status(t *testing.T, info dockertest.Info, backing string) {
	t.Helper()
	want := [][2]string{
		{dockertest.StatusBackingFS, backing},
		{dockertest.StatusDType, "true"},
		{dockertest.StatusNativeDiff, strconv.FormatBool(kernelAtLeast(t, 4, 8) && !overlayRedirectDir())},
		{dockertest.StatusUserXattr, "false"},
	}
	for _, kv := range want {
		if got, ok := info.Status(kv[0]); !ok || got != kv[1] {
			t.Errorf("docker info %q = %q (present %v), want %q", kv[0], got, ok, kv[1])
		}
	}
}

// priority20 is dockerd 20.10's driver order.
var priority20 = []string{"btrfs", "zfs", "overlay2", "fuse-overlayfs", "aufs", "overlay", "devicemapper", "vfs"}

// checkFallbackLog checks the lines 20.10 logs for each driver it tried and
// moved past before the one it picked, and that no later driver logged
// anything. Drivers that fail by a NotSupportedError (btrfs and zfs
// elsewhere, overlay2 and overlay without d_type, devicemapper) move on
// silently at the default log level; a failed overlay test mount, a
// missing fuse-overlayfs binary and a missing aufs are logged at level
// error with a storage-driver field.
func checkFallbackLog(t *testing.T, kind, picked string, entries []dockertest.Entry) {
	t.Helper()
	errs := dockertest.AtLevel(entries, "error")
	tried := true
	for _, drv := range priority20 {
		if drv == picked {
			tried = false
		}
		got := dockertest.WithField(errs, "storage-driver", drv)
		var wantPrefix string
		switch {
		case !tried:
		case (drv == "overlay2" || drv == "overlay") && kind == testutil.Overlay:
			wantPrefix = "failed to mount overlay: "
		case drv == "fuse-overlayfs":
			wantPrefix = `exec: "fuse-overlayfs": executable file not found in $PATH`
		case drv == "aufs":
			wantPrefix = "AUFS was not found in /proc/filesystems"
		}
		if wantPrefix == "" {
			if len(got) != 0 {
				t.Errorf("%s logged errors though dockerd %s", drv, map[bool]string{true: "moves past it silently here", false: "never tried it"}[tried])
				t.Logf("%s", strings.Join(lines(got), "\n"))
			}
			continue
		}
		if len(got) != 1 || !strings.HasPrefix(got[0].Msg, wantPrefix) {
			t.Errorf("want one error line of %s starting %q, got %q", drv, wantPrefix, lines(got))
		}
	}
}

func lines(es []dockertest.Entry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.Line)
	}
	return out
}

func ptrString(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return strconv.FormatBool(*b)
}
