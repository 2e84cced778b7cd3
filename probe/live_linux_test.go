package probe_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/version"
)

// TestLiveFilesystems probes a data-root on each real filesystem the tests
// can make, and checks the filesystem, d_type and the overlay verdicts.
func TestLiveFilesystems(t *testing.T) {
	testutil.RequiresRoot(t)
	tests := []struct {
		kind      string
		fs        string
		dType     bool
		overlay   bool // a test mount on the data-root works
		onOverlay bool
	}{
		{testutil.Ext4, "extfs", true, true, false},
		{testutil.Ext4NoDType, "extfs", false, true, false},
		{testutil.XFS, "xfs", true, true, false},
		{testutil.Btrfs, "btrfs", true, true, false},
		{testutil.Tmpfs, "tmpfs", true, true, false},
		// Docker-in-Docker: overlayfs cannot be the upper layer of another
		// overlay mount.
		{testutil.Overlay, "overlayfs", true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			fs := testutil.NewFS(t, tt.kind, 0)
			dataRoot := filepath.Join(fs.Dir, "docker")
			r, err := probe.Run(context.Background(), probe.Options{DataRoot: dataRoot, PriorDirs: drivers.PriorDirs()})
			if err != nil {
				t.Fatal(err)
			}
			dr := r.DataRoot
			if dr.Filesystem != tt.fs || dr.OnOverlay != tt.onOverlay {
				t.Errorf("filesystem = %s (onOverlay %v), want %s (%v)", dr.Filesystem, dr.OnOverlay, tt.fs, tt.onOverlay)
			}
			if dr.Exists || dr.ProbedPath != fs.Dir {
				t.Errorf("data-root exists=%v probed %s, want probed %s", dr.Exists, dr.ProbedPath, fs.Dir)
			}
			if dr.DType == nil || *dr.DType != tt.dType {
				t.Errorf("dType = %v, want %v", dr.DType, tt.dType)
			}
			dt := r.Facts[probe.FactDType]
			if dt.Method != probe.MethodMountTest || !dt.Known() || *dt.Supported != tt.dType {
				t.Errorf("d_type fact = %+v", dt)
			}
			if !tt.dType && !strings.Contains(dt.Hint, "tune2fs -O filetype") {
				t.Errorf("d_type hint = %q, want the ext4 remedy", dt.Hint)
			}
			for _, name := range []string{probe.FactOverlay, probe.FactMultiLowerdir} {
				f := r.Facts[name]
				if f.Method != probe.MethodMountTest || f.Supported == nil || *f.Supported != tt.overlay {
					t.Errorf("%s = %+v, want supported=%v by mount-test", name, f, tt.overlay)
				}
			}
			if !tt.overlay {
				f := r.Facts[probe.FactMultiLowerdir]
				if !strings.Contains(f.Detail, "succeeds on tmpfs") {
					t.Errorf("multi-lowerdir detail %q should say the kernel can, the filesystem cannot", f.Detail)
				}
			}
			// A kernel at least 6.8 has every overlay feature: a probe
			// saying no on such a kernel is broken.
			if kv, ok := r.Kernel.Parsed(); ok {
				for _, name := range []string{probe.FactIndex, probe.FactMetacopy, probe.FactRedirectDir, probe.FactVolatile, probe.FactLowerdirPlus} {
					f := r.Facts[name]
					min, err := version.ParseKernel(f.MinKernel)
					if err != nil {
						t.Fatalf("%s: minKernel %q: %v", name, f.MinKernel, err)
					}
					if kv.AtLeast(min) && !f.Yes() {
						t.Errorf("%s = %+v on kernel %s (minimum %s)", name, f, kv, f.MinKernel)
					}
				}
			}
			assertNoLeaks(t, fs.Dir)
		})
	}
}

// assertNoLeaks checks that the probe left no mount and no scratch dir.
// Only mounts below dir and scratch mounts are looked at: other tests may
// mount things of their own at the same time.
func assertNoLeaks(t *testing.T, dir string) {
	t.Helper()
	for _, m := range testutil.MountTable(t) {
		if strings.HasPrefix(m, dir+"/") || strings.Contains(m, "/"+hostsys.ScratchPrefix) {
			t.Errorf("mount %s left behind", m)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), hostsys.ScratchPrefix) {
			t.Errorf("scratch dir %s left behind", e.Name())
		}
	}
}

func TestLiveDataRootExists(t *testing.T) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Ext4, 0)
	dataRoot := filepath.Join(fs.Dir, "docker")
	for _, d := range []string{"overlay2/l", "vfs/dir/abc", "aufs", "btrfs/subvolumes"} {
		if err := os.MkdirAll(filepath.Join(dataRoot, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	r, err := probe.Run(context.Background(), probe.Options{DataRoot: dataRoot, PriorDirs: drivers.PriorDirs()})
	if err != nil {
		t.Fatal(err)
	}
	if !r.DataRoot.Exists || r.DataRoot.ProbedPath != dataRoot {
		t.Errorf("exists %v probed %s", r.DataRoot.Exists, r.DataRoot.ProbedPath)
	}
	// overlay2 and btrfs are non-empty, as dockerd counts; vfs holds a
	// layer in dir/, which dockerd skips but the probe reports (another
	// driver would hide it); aufs is empty.
	if !reflect.DeepEqual(r.PriorDrivers, []string{"btrfs", "overlay2", "vfs"}) {
		t.Errorf("prior drivers = %v, want [btrfs overlay2 vfs]", r.PriorDrivers)
	}
	// vfs/dir without layers is no data.
	if err := os.Remove(filepath.Join(dataRoot, "vfs", "dir", "abc")); err != nil {
		t.Fatal(err)
	}
	r, err = probe.Run(context.Background(), probe.Options{DataRoot: dataRoot, PriorDirs: drivers.PriorDirs()})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.PriorDrivers, []string{"btrfs", "overlay2"}) {
		t.Errorf("prior drivers with an empty vfs/dir = %v, want [btrfs overlay2]", r.PriorDrivers)
	}
}

func TestLiveSymlinkedDataRoot(t *testing.T) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Btrfs, 0)
	link := filepath.Join(t.TempDir(), "docker")
	if err := os.Symlink(fs.Dir, link); err != nil {
		t.Fatal(err)
	}
	r, err := probe.Run(context.Background(), probe.Options{DataRoot: link, PriorDirs: drivers.PriorDirs()})
	if err != nil {
		t.Fatal(err)
	}
	// dockerd follows a symlinked data-root, so the probe does too.
	if r.DataRoot.Filesystem != "btrfs" || r.DataRoot.ProbedPath != fs.Dir {
		t.Errorf("filesystem %s probed %s, want btrfs at %s", r.DataRoot.Filesystem, r.DataRoot.ProbedPath, fs.Dir)
	}
	if !r.Facts[probe.FactBtrfs].Yes() {
		t.Errorf("btrfs fact = %+v", r.Facts[probe.FactBtrfs])
	}
}
