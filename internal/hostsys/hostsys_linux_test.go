package hostsys_test

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestFileKind names real files, through os.Lstat and through a raw
// fstatat, the way the readers of host files meet them.
func TestFileKind(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	if err := os.WriteFile(p("file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(p("dir"), 0o755)
	if err := unix.Mkfifo(p("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", p("sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Symlink("file", p("link"))
	for _, tt := range []struct{ name, path, want string }{
		{"regular", p("file"), "a regular file"},
		{"directory", p("dir"), "a directory"},
		{"fifo", p("fifo"), "a FIFO"},
		{"socket", p("sock"), "a socket"},
		{"symlink", p("link"), "a symlink"},
		{"character device", "/dev/null", "a character device"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fi, err := os.Lstat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := hostsys.FileKind(fi.Mode()); got != tt.want {
				t.Errorf("FileKind(Lstat) = %q, want %q", got, tt.want)
			}
			var st unix.Stat_t
			if err := unix.Fstatat(unix.AT_FDCWD, tt.path, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				t.Fatal(err)
			}
			if got := hostsys.FileKind(hostsys.StatMode(&st)); got != tt.want {
				t.Errorf("FileKind(StatMode) = %q, want %q", got, tt.want)
			}
		})
	}
	if got := hostsys.FileKind(fs.ModeDevice); got != "a block device" {
		t.Errorf("FileKind(block device) = %q", got)
	}
	if got := hostsys.FileKind(fs.ModeIrregular); got != "an irregular file" {
		t.Errorf("FileKind(irregular) = %q", got)
	}
}

func TestMountError(t *testing.T) {
	long := strings.Repeat("x", 600)
	for _, tt := range []struct {
		name string
		err  *hostsys.MountError
		want string
	}{
		{"full", &hostsys.MountError{Op: "mount", Source: "overlay", Target: "/m", FSType: "overlay", Data: "lowerdir=/l", Err: unix.EINVAL},
			"mount overlay on /m (data: lowerdir=/l): invalid argument"},
		{"unmount", &hostsys.MountError{Op: "unmount", Target: "/m", Err: unix.EBUSY}, "unmount on /m: device or resource busy"},
		{"fsopen", &hostsys.MountError{Op: "fsopen", FSType: "overlay", Err: unix.ENOSYS}, "fsopen overlay: function not implemented"},
		{"long data", &hostsys.MountError{Op: "mount", FSType: "overlay", Data: long, Err: unix.EINVAL},
			"mount overlay (data: " + long[:512] + "...): invalid argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !errors.Is(tt.err, tt.err.Err) {
				t.Error("errors.Is does not reach the errno")
			}
		})
	}
}

func TestFilesystemName(t *testing.T) {
	for _, tt := range []struct {
		magic int64
		want  string
	}{
		{0xEF53, "extfs"}, {0x58465342, "xfs"}, {0x794C7630, "overlayfs"}, {0x12345678, "0x12345678"}, {0xABC, "0xABC"},
	} {
		if got := hostsys.FilesystemName(tt.magic); got != tt.want {
			t.Errorf("FilesystemName(%#x) = %q, want %q", tt.magic, got, tt.want)
		}
	}
	for in, want := range map[string]string{"ext4": "extfs", "overlay": "overlayfs", "fuse.sshfs": "fuse", "nfs4": "nfs", "9p": "v9fs", "": "unknown", "xfs": "xfs"} {
		if got := hostsys.MountTypeName(in); got != want {
			t.Errorf("MountTypeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStatfsAndDType checks statfs and the two d_type checks on real
// filesystems, one of them formatted without d_type.
func TestStatfsAndDType(t *testing.T) {
	for _, tt := range []struct {
		kind, name string
		dtype      bool
	}{
		{testutil.Tmpfs, "tmpfs", true},
		{testutil.Ext4, "extfs", true},
		{testutil.Ext4NoDType, "extfs", false},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			f := testutil.NewFS(t, tt.kind, 0)
			got, err := hostsys.Statfs(f.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tt.name || hostsys.FilesystemName(got.Magic) != tt.name || got.BlockSize == 0 || got.Blocks == 0 || len(got.ID) != 16 {
				t.Errorf("Statfs = %+v, want %s", got, tt.name)
			}
			ok, err := hostsys.SupportsDType(f.Dir)
			if err != nil || ok != tt.dtype {
				t.Errorf("SupportsDType = %v, %v; want %v", ok, err, tt.dtype)
			}
			if err := os.WriteFile(filepath.Join(f.Dir, "entry"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			known, unknown, err := hostsys.CountDTypes(f.Dir)
			if err != nil || (known > 0) != tt.dtype || (unknown > 0) == tt.dtype {
				t.Errorf("CountDTypes = %d known, %d unknown, %v; want d_type %v", known, unknown, err, tt.dtype)
			}
		})
	}
	if _, err := hostsys.Statfs(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Statfs of a missing path: %v", err)
	}
}

func TestDTypeHint(t *testing.T) {
	for fs, want := range map[string]string{"xfs": "ftype=1", "extfs": "tune2fs -O filetype", "zfs": "d_type support"} {
		if got := hostsys.DTypeHint(fs); !strings.Contains(got, want) {
			t.Errorf("DTypeHint(%s) = %q, want it to mention %q", fs, got, want)
		}
	}
}

func TestHaveFilesystem(t *testing.T) {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"proc", "sysfs", "tmpfs"} {
		ok, err := hostsys.HaveFilesystem(name)
		if want := strings.Contains(string(data), "\t"+name+"\n"); err != nil || ok != want {
			t.Errorf("HaveFilesystem(%s) = %v, %v; /proc/filesystems says %v", name, ok, err, want)
		}
	}
	if ok, err := hostsys.HaveFilesystem("no-such-fs"); ok || err != nil {
		t.Errorf("HaveFilesystem(no-such-fs) = %v, %v", ok, err)
	}
}

// TestMountNS mounts an overlay fixture on the namespace's thread: it is
// seen there and never in the host's mount table, and Do fails once the
// namespace is closed.
func TestMountNS(t *testing.T) {
	testutil.RequiresRoot(t)
	if ok, _ := hostsys.HaveFilesystem("overlay"); !ok {
		t.Skip("overlay not loaded")
	}
	scratch, err := hostsys.MakeScratch(t.TempDir(), "test")
	if err != nil {
		t.Fatal(err)
	}
	f, err := hostsys.NewOverlayFixture(scratch, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(scratch, "lower2"), filepath.Join(scratch, "lower1")}; strings.Join(f.Lowers, ":") != strings.Join(want, ":") {
		t.Errorf("lowers %v, want %v (nearest first)", f.Lowers, want)
	}
	if want := "lowerdir=" + strings.Join(f.Lowers, ":") + ",upperdir=" + f.Upper + ",workdir=" + f.Work + ",index=off"; f.Data("index=off") != want {
		t.Errorf("Data = %q, want %q", f.Data("index=off"), want)
	}
	os.WriteFile(filepath.Join(f.Lowers[1], "bottom"), nil, 0o644)
	ns, err := hostsys.NewMountNS()
	if err != nil {
		t.Fatal(err)
	}
	err = ns.Do(func() error {
		if err := f.Mount(); err != nil {
			return err
		}
		mounts, err := hostsys.Mounts()
		if err != nil {
			return err
		}
		for _, m := range mounts {
			if m.Mountpoint == f.Merged {
				_, err := os.Stat(filepath.Join(f.Merged, "bottom"))
				return err
			}
		}
		return errors.New("the overlay is not in the namespace's mount table")
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range testutil.MountTable(t) {
		if m == f.Merged {
			t.Error("the namespace's mount reached the host's mount table")
		}
	}
	ns.Close()
	if err := ns.Do(func() error { return nil }); !errors.Is(err, hostsys.ErrNSClosed) {
		t.Errorf("Do after Close: %v", err)
	}
	var me *hostsys.MountError
	if err := (&hostsys.OverlayFixture{Merged: filepath.Join(scratch, "missing")}).Mount(); !errors.As(err, &me) || me.Target != filepath.Join(scratch, "missing") {
		t.Errorf("a failed mount: %v, want a *MountError naming its target", err)
	}
}
