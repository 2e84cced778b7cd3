package probe_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/version"
	"golang.org/x/sys/unix"
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
			r, err := probe.Run(context.Background(), probe.Options{DataRoot: dataRoot})
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
		if strings.HasPrefix(m, dir+"/") || strings.Contains(m, "/"+probe.ScratchPrefix) {
			t.Errorf("mount %s left behind", m)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), probe.ScratchPrefix) {
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
	r, err := probe.Run(context.Background(), probe.Options{DataRoot: dataRoot})
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
	r, err = probe.Run(context.Background(), probe.Options{DataRoot: dataRoot})
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
	r, err := probe.Run(context.Background(), probe.Options{DataRoot: link})
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

func TestStaleScratchRemoved(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	// A scratch dir of a process that no longer exists (pid 2^22+1 is past
	// the kernel's pid_max ceiling), one of a live process (ours: kept), a
	// symlink with the same pattern (never followed) and an unrelated dir.
	dead := filepath.Join(dir, probe.ScratchPrefix+"probe-4194305-abc")
	live := filepath.Join(dir, probe.ScratchPrefix+"probe-1-abc")
	if err := os.MkdirAll(filepath.Join(dead, "lower1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(live, 0o700); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	os.WriteFile(filepath.Join(target, "keep"), nil, 0o600)
	os.Symlink(target, filepath.Join(dir, probe.ScratchPrefix+"probe-4194306-x"))
	os.Mkdir(filepath.Join(dir, "other"), 0o700)

	removed, err := probe.RemoveStaleScratch(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(removed, []string{dead}) {
		t.Errorf("removed %v, want [%s]", removed, dead)
	}
	for _, p := range []string{live, filepath.Join(target, "keep"), filepath.Join(dir, "other")} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestMakeScratchRefusesSymlinkParent(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	os.Symlink(t.TempDir(), link)
	if _, err := probe.MakeScratch(link, "probe"); err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Fatalf("MakeScratch through a symlink: %v", err)
	}
	s, err := probe.MakeScratch(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Lstat(s)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", st.Mode().Perm())
	}
}

func TestMakeScratchRefusesUnsafeParent(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		name  string
		setup func(p string) error
		want  string
	}{
		{"world-writable", func(p string) error { return os.Chmod(p, 0o777) }, "writable by other users"},
		{"group-writable", func(p string) error { return os.Chmod(p, 0o775) }, "writable by other users"},
		{"other user's", func(p string) error { return os.Chown(p, 65534, 65534) }, "belongs to uid 65534"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			os.Mkdir(p, 0o755)
			if err := tt.setup(p); err != nil {
				t.Fatal(err)
			}
			_, err := probe.MakeScratch(p, "probe")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("MakeScratch in a %s dir: %v, want %q", tt.name, err, tt.want)
			}
			entries, _ := os.ReadDir(p)
			if len(entries) != 0 {
				t.Errorf("something was made: %v", entries)
			}
		})
	}
	// The sticky bit makes a shared dir safe: others cannot rename our dir.
	sticky := filepath.Join(dir, "sticky")
	os.Mkdir(sticky, 0o755)
	os.Chmod(sticky, os.ModeSticky|0o777)
	if s, err := probe.MakeScratch(sticky, "probe"); err != nil {
		t.Errorf("sticky dir refused: %v", err)
	} else {
		os.Remove(s)
	}
}

// TestMakeScratchFullFilesystem: on a full filesystem the error says which
// directory, that its filesystem is full, and what to do, not a bare ENOSPC.
func TestMakeScratchFullFilesystem(t *testing.T) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Ext4, 16)
	parent := filepath.Join(fs.Dir, "docker")
	if err := os.Mkdir(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	// Take every block (root may use the reserved ones too), then every
	// block a new directory could get.
	var st unix.Statfs_t
	if err := unix.Statfs(fs.Dir, &st); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(fs.Dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for n := int64(st.Bfree) * st.Bsize; n > 0; n -= 64 << 10 {
		if unix.Fallocate(int(f.Fd()), 0, 0, n) == nil {
			break
		}
	}
	f.Close()
	for i := 0; ; i++ {
		if err := os.Mkdir(filepath.Join(fs.Dir, fmt.Sprintf("d%d", i)), 0o700); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	_, err = probe.MakeScratch(parent, "bench")
	want := "make scratch dir in " + parent + ": the filesystem is full (no free blocks or inodes; df -h " + parent + " and df -i " + parent +
		" show which): free some space there and rerun, since drivers are initialised there as dockerd does: no space left on device"
	if err == nil || err.Error() != want || !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}
