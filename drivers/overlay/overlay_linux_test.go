package overlay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/drivers"
	dt "github.com/graphprobe/graphprobe/drivers/drivertest"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

func onFS(kind string) dt.HomeFunc {
	return func(t testing.TB) string { return dt.OnFS(t, kind, 0)(t) }
}

func TestConformance(t *testing.T) {
	testutil.RequiresRoot(t)
	dt.Run(t, Name, dt.OnFS(t, testutil.Ext4, 512),
		dt.Refuses("data-root on overlayfs", onFS(testutil.Overlay), drivers.ErrIncompatibleFS, "is on overlayfs, which overlay does not support"),
		dt.Refuses("ext4 without d_type", onFS(testutil.Ext4NoDType), drivers.ErrNotSupported, "formatted without d_type support"),
	)
}

// TestLayout checks the on-disk layout against Docker's, and that an
// image layer shares its parent's files but not its directories.
func TestLayout(t *testing.T) {
	testutil.RequiresRoot(t)
	home := dt.OnFS(t, testutil.Ext4, 0)(t)
	d := dt.Init(t, Name, home).(*Driver)
	if _, err := d.ApplyDiff("base", "", nil); err == nil {
		t.Fatal("ApplyDiff before Create succeeded")
	}
	must(t, d.Create("base", ""))
	if _, err := d.ApplyDiff("base", "", dt.Tar(t, dt.Dir("etc", 0o755), dt.File("etc/f", "base", 0o644), dt.Symlink("etc/l", "f"))); err != nil {
		t.Fatal(err)
	}
	must(t, d.Create("image", "base"))
	for _, p := range []string{"image/upper", "image/work", "image/lower-id"} {
		if _, err := os.Stat(filepath.Join(home, p)); err != nil {
			t.Errorf("a layer on an image layer lacks %s: %v", p, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(home, "image/lower-id")); string(b) != "base" {
		t.Errorf("lower-id = %q, want base", b)
	}
	if _, err := d.ApplyDiff("image", "base", dt.Tar(t, dt.File("new", "n", 0o644))); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"image/upper", "image/work", "image/lower-id", "image/merged"} {
		if _, err := os.Lstat(filepath.Join(home, p)); err == nil {
			t.Errorf("%s is left after ApplyDiff made an image layer", p)
		}
	}
	ino := func(p string) uint64 {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(home, p), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	if ino("base/root/etc/f") != ino("image/root/etc/f") {
		t.Error("the image layer's etc/f is not a hard link of its parent's")
	}
	for _, p := range []string{"etc", "etc/l"} {
		if ino("base/root/"+p) == ino("image/root/"+p) {
			t.Errorf("the image layer shares %s's inode with its parent; directories and symlinks are new inodes", p)
		}
	}
	// A container layer on the image, and one on that (its -init layer).
	must(t, d.Create("init", "image"))
	root, err := d.Get("init")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(root, "init-file"), []byte("i"), 0o644))
	must(t, d.Put("init"))
	must(t, d.Create("ctr", "init"))
	if b, _ := os.ReadFile(filepath.Join(home, "ctr/lower-id")); string(b) != "image" {
		t.Errorf("a layer on a container layer has lower-id %q, want its image's (image)", b)
	}
	if b, err := os.ReadFile(filepath.Join(home, "ctr/upper/init-file")); err != nil || string(b) != "i" {
		t.Errorf("the container layer's upper is not a copy of its parent's: %q, %v", b, err)
	}
	root, err = d.Get("ctr")
	must(t, err)
	for _, p := range []string{"etc/f", "new", "init-file"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("container view lacks %s: %v", p, err)
		}
	}
	must(t, d.Put("ctr"))
	if st := d.Status(); st[0][1] != "extfs" {
		t.Errorf("Status() = %v", st)
	}
}

func TestStorageOptions(t *testing.T) {
	testutil.RequiresRoot(t)
	_, err := Init(dt.OnFS(t, testutil.Ext4, 0)(t), drivers.Options{StorageOpts: []string{"overlay.size=1G"}})
	if err == nil || !strings.Contains(err.Error(), "unknown storage option overlay.size") {
		t.Errorf("Init with an unknown option = %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func BenchmarkOverlay(b *testing.B) {
	dt.Bench(b, Name, dt.OnFS(b, testutil.Ext4, 512), dt.WithDeepChain(0))
}
