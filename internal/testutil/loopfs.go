package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mount"
	"github.com/moby/sys/mountinfo"
)

// FS kinds that tests can ask for. xfs with ftype=0 needs the v4 format,
// which current kernels refuse to mount (CONFIG_XFS_SUPPORT_V4 is gone), so
// the no-d_type case is tested with ext4 -O ^filetype.
const (
	Ext4        = "ext4"
	Ext4NoDType = "ext4-nodtype" // ext4 -O ^filetype: getdents returns DT_UNKNOWN
	XFS         = "xfs"
	XFSNoFtype  = "xfs-noftype" // xfs ftype=0 (v4 format): no d_type
	Btrfs       = "btrfs"
	Tmpfs       = "tmpfs"
	Overlay     = "overlay" // a directory on overlayfs (Docker-in-Docker)
)

// PremountedEnv + kind (ext4, xfs, btrfs, ext4_nodtype) names a directory
// on an already mounted filesystem of that kind for NewFS to use instead of
// a loop image: the kernel-matrix VMs attach their filesystems as disks.
const PremountedEnv = "GRAPHPROBE_TESTFS_"

// FS is a real filesystem mounted for one test.
type FS struct {
	Kind string
	// Dir is the mount point: an empty directory on the filesystem.
	Dir string
	// Image is the backing file of a loop filesystem.
	Image string
}

// NewFS makes a filesystem of the given kind, mounts it on a fresh
// directory and unmounts it when the test ends. sizeMiB is the size of a
// loop image (0: 256 MiB; btrfs needs at least 114 MiB, xfs 300 MiB).
func NewFS(t testing.TB, kind string, sizeMiB int) *FS {
	t.Helper()
	RequiresRoot(t)
	base := t.TempDir()
	f := &FS{Kind: kind, Dir: filepath.Join(base, "mnt")}
	if err := os.Mkdir(f.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	switch kind {
	case Tmpfs:
		mustMount(t, "tmpfs", f.Dir, "tmpfs", fmt.Sprintf("size=%dm", orDefault(sizeMiB, 256)))
		return f
	case Overlay:
		// A tmpfs holding lower/upper/work, and an overlay on Dir.
		under := filepath.Join(base, "under")
		os.Mkdir(under, 0o755)
		mustMount(t, "tmpfs", under, "tmpfs", fmt.Sprintf("size=%dm", orDefault(sizeMiB, 256)))
		for _, d := range []string{"lower", "upper", "work"} {
			if err := os.Mkdir(filepath.Join(under, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		mustMount(t, "overlay", f.Dir, "overlay", fmt.Sprintf("lowerdir=%s/lower,upperdir=%s/upper,workdir=%s/work", under, under, under))
		return f
	}
	if dir := os.Getenv(PremountedEnv + strings.ReplaceAll(kind, "-", "_")); dir != "" {
		// A VM with the filesystem on a disk and no mkfs tools: a fresh
		// directory on it stands for a fresh filesystem.
		d, err := os.MkdirTemp(dir, "fs-")
		if err != nil {
			t.Fatalf("testutil.NewFS: %s%s: %v", PremountedEnv, kind, err)
		}
		f.Dir = d
		t.Cleanup(func() { os.RemoveAll(d) })
		return f
	}
	var mkfs []string
	size := orDefault(sizeMiB, 256)
	switch kind {
	case Ext4:
		mkfs = []string{"mkfs.ext4", "-q", "-F"}
	case Ext4NoDType:
		mkfs = []string{"mkfs.ext4", "-q", "-F", "-O", "^filetype"}
	case XFS:
		mkfs = []string{"mkfs.xfs", "-q", "-f", "-n", "ftype=1"}
		size = max(size, 300)
	case Btrfs:
		mkfs = []string{"mkfs.btrfs", "-q", "-f"}
		size = max(size, 128)
	default:
		t.Fatalf("testutil.NewFS: unknown kind %q", kind)
	}
	RequiresTool(t, mkfs[0])
	f.Image = filepath.Join(base, "image")
	img, err := os.Create(f.Image)
	if err != nil {
		t.Fatal(err)
	}
	if err := img.Truncate(int64(size) << 20); err != nil {
		t.Fatal(err)
	}
	img.Close()
	if out, err := exec.Command(mkfs[0], append(mkfs[1:], f.Image)...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(mkfs, " "), err, out)
	}
	// mount(8) sets up the loop device with autoclear, so unmounting
	// releases it.
	if out, err := exec.Command("mount", "-o", "loop", f.Image, f.Dir).CombinedOutput(); err != nil {
		t.Fatalf("mount -o loop %s: %v\n%s", f.Image, err, out)
	}
	t.Cleanup(func() { unmountAll(t, f.Dir) })
	return f
}

func orDefault(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

func mustMount(t testing.TB, source, target, fstype, data string) {
	t.Helper()
	if err := mount.Mount(source, target, fstype, data); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountAll(t, target) })
}

// unmountAll unmounts target and anything a failed test left below it.
func unmountAll(t testing.TB, target string) {
	_ = mount.RecursiveUnmount(target)
}

// MountsUnder lists the mount points at or below dir in the calling
// thread's mount table, deepest first: the table lists a mount after the
// one it is mounted on.
func MountsUnder(dir string) []string {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range slices.Backward(mounts) {
		out = append(out, m.Mountpoint)
	}
	return out
}

// MountTable returns the mount points of the calling thread's mount table,
// for before/after leak checks. mountinfo reads /proc/thread-self:
// /proc/self follows the main thread, which is not necessarily in the
// caller's namespace.
func MountTable(t testing.TB) []string {
	t.Helper()
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(mounts))
	for i, m := range mounts {
		out[i] = m.Mountpoint
	}
	return out
}
