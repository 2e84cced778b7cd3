package btrfs

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/drivertest"
	"github.com/graphprobe/graphprobe/internal/testutil"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	testutil.RequiresRoot(t)
	drivertest.Run(t, Name, drivertest.OnFS(t, testutil.Btrfs, 0),
		drivertest.Refuses("ext4", drivertest.OnFS(t, testutil.Ext4, 0), drivers.ErrPrerequisites, "the data-root is on extfs, not btrfs"),
		drivertest.Refuses("tmpfs", drivertest.OnFS(t, testutil.Tmpfs, 16), drivers.ErrPrerequisites, "the data-root is on tmpfs, not btrfs"),
	)
}

func BenchmarkBtrfs(b *testing.B) {
	// btrfs frees a destroyed snapshot's space lazily: a roomy filesystem
	// keeps the repeated layers of the benchmark from running out of it.
	drivertest.Bench(b, Name, drivertest.OnFS(b, testutil.Btrfs, 1024))
}

// TestABI checks the argument structs and request numbers against the
// kernel's uapi header, where the encoding is the generic one.
func TestABI(t *testing.T) {
	if s := unsafe.Sizeof(volArgs{}); s != 4096 {
		t.Errorf("sizeof(btrfs_ioctl_vol_args) = %d, want 4096", s)
	}
	if s := unsafe.Sizeof(volArgsV2{}); s != 4096 {
		t.Errorf("sizeof(btrfs_ioctl_vol_args_v2) = %d, want 4096", s)
	}
	if o := unsafe.Offsetof(volArgsV2{}.name); o != 56 {
		t.Errorf("offsetof(btrfs_ioctl_vol_args_v2, name) = %d, want 56", o)
	}
	switch runtime.GOARCH {
	case "amd64", "386", "arm64", "arm", "riscv64", "s390x", "loong64":
	default:
		t.Skipf("request numbers below are for the generic ioctl encoding, not %s", runtime.GOARCH)
	}
	for _, tt := range []struct {
		name      string
		got, want uintptr
	}{
		{"BTRFS_IOC_SUBVOL_CREATE", iocSubvolCreate, 0x5000940e},
		{"BTRFS_IOC_SNAP_DESTROY", iocSnapDestroy, 0x5000940f},
		{"BTRFS_IOC_SNAP_CREATE_V2", iocSnapCreateV2, 0x50009417},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}

func newDriver(t *testing.T, fs *testutil.FS) *Driver {
	t.Helper()
	d := drivertest.Init(t, Name, filepath.Join(fs.Dir, "btrfs"))
	return d.(*Driver)
}

// TestSnapshotsShareData shows that a child layer is a snapshot, not a
// copy: its files keep their inode numbers (in a subvolume of its own, so
// on another st_dev), and writing it leaves the parent alone.
func TestSnapshotsShareData(t *testing.T) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Btrfs, 0)
	d := newDriver(t, fs)
	must(t, d.Create("base", ""))
	base := d.dir("base")
	must(t, os.WriteFile(filepath.Join(base, "f"), []byte("base"), 0o644))
	must(t, d.Create("child", "base"))
	child := d.dir("child")

	for _, p := range []string{base, child} {
		if sub, err := isSubvolume(p); err != nil || !sub {
			t.Errorf("%s is not a subvolume (%v)", p, err)
		}
	}
	var bs, cs unix.Stat_t
	must(t, unix.Lstat(filepath.Join(base, "f"), &bs))
	must(t, unix.Lstat(filepath.Join(child, "f"), &cs))
	if bs.Ino != cs.Ino || bs.Dev == cs.Dev {
		t.Errorf("child's f: ino %d dev %d; base's: ino %d dev %d; want the same inode number in another subvolume", cs.Ino, cs.Dev, bs.Ino, bs.Dev)
	}
	must(t, os.WriteFile(filepath.Join(child, "f"), []byte("child"), 0o644))
	if b, _ := os.ReadFile(filepath.Join(base, "f")); string(b) != "base" {
		t.Errorf("writing the child's f changed the base: %q", b)
	}
}

// TestRemoveNestedSubvolumes removes a layer in which a container made
// subvolumes of its own, nested two deep, next to plain directories.
func TestRemoveNestedSubvolumes(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresTool(t, "btrfs")
	fs := testutil.NewFS(t, testutil.Btrfs, 0)
	d := newDriver(t, fs)
	must(t, d.Create("base", ""))
	must(t, d.Create("ctr", "base"))
	root := d.dir("ctr")
	must(t, os.MkdirAll(filepath.Join(root, "var/lib"), 0o755))
	must(t, subvolCreate(filepath.Join(root, "var/lib"), "machines"))
	must(t, subvolCreate(filepath.Join(root, "var/lib/machines"), "inner"))
	must(t, os.WriteFile(filepath.Join(root, "var/lib/machines/inner/f"), []byte("x"), 0o644))
	must(t, subvolCreate(root, "top"))
	must(t, os.Mkdir(filepath.Join(root, "top/plain"), 0o755))

	list := testutil.Run(t, "btrfs", "subvolume", "list", "-o", d.subvolumes())
	if n := strings.Count(list, "\n"); n != 2 {
		t.Fatalf("btrfs subvolume list shows %d subvolumes below %s before Remove, want base and ctr:\n%s", n, d.subvolumes(), list)
	}
	must(t, d.Remove("ctr"))
	if d.Exists("ctr") {
		t.Fatal("layer exists after Remove")
	}
	all := testutil.Run(t, "btrfs", "subvolume", "list", fs.Dir)
	for _, gone := range []string{"ctr", "machines", "inner", "top"} {
		if strings.Contains(all, "/"+gone+"\n") || strings.HasSuffix(strings.TrimSpace(all), "/"+gone) {
			t.Errorf("subvolume %s survives Remove:\n%s", gone, all)
		}
	}
	if !d.Exists("base") {
		t.Error("Remove of the child removed the base")
	}
}

func TestStorageOptions(t *testing.T) {
	testutil.RequiresRoot(t)
	home := drivertest.OnFS(t, testutil.Btrfs, 0)
	tests := []struct {
		name, opt, want string
	}{
		{"min_space", "btrfs.min_space=10G", `parse btrfs storage option "btrfs.min_space=10G": it enables btrfs quota groups, which graphprobe does not implement; drop the option to benchmark btrfs`},
		{"unknown", "size=10G", `parse btrfs storage option "size=10G": unknown option size for btrfs (dockerd knows btrfs.min_space)`},
		{"no value", "btrfs.min_space", `parse btrfs storage option "btrfs.min_space": want key=value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Init(home(t), drivers.Options{StorageOpts: []string{tt.opt}})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Init error %v, want %q", err, tt.want)
			}
			if drivers.IsNotSupported(err) {
				t.Error("a bad option is fatal in dockerd, not a reason to try the next driver")
			}
		})
	}
}

func TestLayerErrors(t *testing.T) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Btrfs, 0)
	d := newDriver(t, fs)
	must(t, d.Create("base", ""))
	tests := []struct {
		name string
		run  func() error
		is   error
		want string
	}{
		{name: "create existing", run: func() error { return d.Create("base", "") },
			want: "create layer base: " + d.dir("base") + " already exists"},
		{name: "create on missing parent", run: func() error { return d.Create("x", "nope") },
			is: drivers.ErrLayerNotExist, want: "create layer x: parent nope: layer does not exist"},
		{name: "create id with slash", run: func() error { return d.Create("a/b", "") },
			want: `create layer: invalid layer id "a/b": want one path element`},
		{name: "put never got", run: func() error { return d.Put("base") }, is: drivers.ErrNotMounted},
		{name: "remove missing", run: func() error { return d.Remove("nope") }, is: drivers.ErrLayerNotExist},
		{name: "remove in use", run: func() error {
			if _, err := d.Get("base"); err != nil {
				return nil
			}
			defer d.Put("base")
			return d.Remove("base")
		}, want: "remove layer base: in use (1 references from Get); Put it first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
		})
	}
	if got := d.Status(); got[0] != [2]string{"Backing Filesystem", "btrfs"} || got[1] != [2]string{"Subvolumes", "1"} {
		t.Errorf("Status() = %q", got)
	}
}
