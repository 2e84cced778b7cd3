package probe_test

import (
	"context"
	"github.com/graphprobe/graphprobe/drivers"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/version"
	"golang.org/x/sys/unix"
)

// TestUserxattrNeedsUpperXattrs: an overlay with userxattr mounts on an
// upper filesystem that stores no user.* xattrs (ramfs here; tmpfs before
// 6.6, seen on Debian's 6.1), and the kernel only logs "failed to set
// xattr on upper". The probe must test the feature, not the mount.
func TestUserxattrNeedsUpperXattrs(t *testing.T) {
	testutil.RequiresRoot(t)
	if data, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(data), "\toverlay\n") {
		t.Skip("overlay not loaded")
	}
	dir := t.TempDir()
	if err := unix.Mount("ramfs", dir, "ramfs", 0, "mode=0755"); err != nil {
		t.Fatalf("mount ramfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Setxattr(dir, "user.graphprobe", []byte("y"), 0); err == nil {
		t.Skip("this kernel's ramfs stores user.* xattrs")
	}
	r, err := probe.Run(context.Background(), probe.Options{DataRoot: filepath.Join(dir, "docker"), PriorDirs: drivers.PriorDirs()})
	if err != nil {
		t.Fatal(err)
	}
	f := r.Fact(probe.FactUserxattr)
	if f.Method != probe.MethodMountTest {
		t.Fatalf("userxattr decided by %s, want a mount test: %s", f.Method, f.Detail)
	}
	if f.Supported == nil || *f.Supported {
		t.Errorf("userxattr on a data-root without user.* xattrs = %v (%s), want false", f.Supported, f.Detail)
	}
	// The same kernel has the feature: on tmpfs (user.* xattrs since 6.6)
	// it must still say yes.
	if kv, ok := r.Kernel.Parsed(); ok && kv.AtLeast(version.K(6, 6)) {
		tmp := testutil.NewFS(t, testutil.Tmpfs, 0)
		r, err := probe.Run(context.Background(), probe.Options{DataRoot: filepath.Join(tmp.Dir, "docker"), PriorDirs: drivers.PriorDirs()})
		if err != nil {
			t.Fatal(err)
		}
		if f := r.Fact(probe.FactUserxattr); !f.Yes() {
			t.Errorf("userxattr on tmpfs (kernel %s) = %v (%s), want true", kv, f.Supported, f.Detail)
		}
	}
}
