package vfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/internal/testutil"
)

func newDriver(t testing.TB, home string, opts ...string) *Driver {
	t.Helper()
	d, err := Init(home, drivers.Options{StorageOpts: opts})
	if err != nil {
		t.Fatalf("Init(%s): %v", home, err)
	}
	t.Cleanup(func() { _ = d.Cleanup() })
	return d.(*Driver)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRegistered(t *testing.T) {
	info, ok := drivers.Lookup(Name)
	if !ok || !info.Implemented {
		t.Fatalf("drivers.Lookup(%q) = %+v, %v; want an implemented driver", Name, info, ok)
	}
	d, err := drivers.Init(Name, filepath.Join(t.TempDir(), "vfs"), drivers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "vfs" {
		t.Errorf("Name() = %q", d.Name())
	}
}

func TestInitLayout(t *testing.T) {
	home := filepath.Join(t.TempDir(), "vfs")
	d := newDriver(t, home)
	for _, p := range []string{home, filepath.Join(home, "dir")} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o710 || !st.IsDir() {
			t.Errorf("%s: mode %v, want drwx--x---", p, st.Mode())
		}
	}
	must(t, d.Create("base", ""))
	must(t, d.Create("child", "base"))
	if st, err := os.Stat(filepath.Join(home, "dir", "child")); err != nil || !st.IsDir() {
		t.Errorf("layer child is not at <home>/dir/child")
	}
	want := [][2]string{{"Backing Filesystem", fsName(t, home)}, {"Dirs", "2"}}
	if got := d.Status(); !reflect.DeepEqual(got, want) {
		t.Errorf("Status() = %q, want %q", got, want)
	}
}

func fsName(t *testing.T, p string) string {
	var st unix.Statfs_t
	must(t, unix.Statfs(p, &st))
	switch uint32(st.Type) {
	case 0xEF53:
		return "extfs"
	case 0x01021994:
		return "tmpfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794C7630:
		return "overlayfs"
	}
	t.Skipf("statfs type %#x not named by this test", st.Type)
	return ""
}

func TestStorageOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []string
		wantErr string
		status  [2]string
	}{
		{name: "none"},
		{name: "best-effort xattrs", opts: []string{"vfs.xattrs=i_want_broken_containers"},
			status: [2]string{"Extended file attributes", "best-effort"}},
		{name: "key case and spaces", opts: []string{" VFS.Xattrs = i_want_broken_containers"},
			status: [2]string{"Extended file attributes", "best-effort"}},
		{name: "xattrs other value", opts: []string{"vfs.xattrs=true"},
			wantErr: `parse vfs storage option "vfs.xattrs=true": do not set vfs.xattrs unless you accept containers whose file capabilities are dropped (the only value is i_want_broken_containers)`},
		{name: "size", opts: []string{"size=10G"},
			wantErr: `parse vfs storage option "size=10G": vfs sizes need xfs project quotas, which graphprobe does not implement; drop the option to benchmark vfs`},
		{name: "unknown", opts: []string{"overlay2.size=10G"},
			wantErr: `parse vfs storage option "overlay2.size=10G": unknown option overlay2.size for vfs (dockerd knows size and vfs.xattrs)`},
		{name: "no value", opts: []string{"vfs.xattrs"},
			wantErr: `parse vfs storage option "vfs.xattrs": want key=value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Init(filepath.Join(t.TempDir(), "vfs"), drivers.Options{StorageOpts: tt.opts})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Init error %v, want %q", err, tt.wantErr)
				}
				if drivers.IsNotSupported(err) {
					t.Errorf("a bad option is fatal in dockerd, not a reason to try the next driver")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rows := d.Status()
			found := false
			for _, r := range rows {
				found = found || r == tt.status
			}
			if tt.status != ([2]string{}) && !found {
				t.Errorf("Status() = %q, want row %q", rows, tt.status)
			}
			if tt.status == ([2]string{}) && len(rows) != 2 {
				t.Errorf("Status() = %q, want only the two default rows", rows)
			}
		})
	}
}

func TestLayerErrors(t *testing.T) {
	d := newDriver(t, filepath.Join(t.TempDir(), "vfs"))
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
		{name: "create dot-dot", run: func() error { return d.Create("..", "") },
			want: `create layer: invalid layer id "..": want one path element`},
		{name: "create empty id", run: func() error { return d.Create("", "") },
			want: `create layer: invalid layer id "": want one path element`},
		{name: "get missing", run: func() error { _, err := d.Get("nope"); return err },
			is: drivers.ErrLayerNotExist, want: "get layer nope: layer does not exist"},
		{name: "put never got", run: func() error { return d.Put("base") },
			is: drivers.ErrNotMounted, want: "put layer base: layer is not mounted"},
		{name: "put missing", run: func() error { return d.Put("nope") },
			is: drivers.ErrNotMounted},
		{name: "remove missing", run: func() error { return d.Remove("nope") },
			is: drivers.ErrLayerNotExist, want: "remove layer nope: layer does not exist"},
		{name: "apply to missing", run: func() error { _, err := d.ApplyDiff("nope", "", strings.NewReader("")); return err },
			is: drivers.ErrLayerNotExist},
		{name: "diff missing", run: func() error { _, err := d.Diff("nope", ""); return err },
			is: drivers.ErrLayerNotExist},
		{name: "diff missing parent", run: func() error { _, err := d.Diff("base", "nope"); return err },
			is: drivers.ErrLayerNotExist, want: "diff layer base: parent nope: layer does not exist"},
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
	if d.Exists("x") || d.Exists("a") || d.Exists("..") {
		t.Errorf("a failed Create left a layer behind")
	}
}

func TestReferences(t *testing.T) {
	d := newDriver(t, filepath.Join(t.TempDir(), "vfs"))
	must(t, d.Create("l", ""))
	p1, err := d.Get("l")
	must(t, err)
	p2, err := d.Get("l")
	must(t, err)
	if p1 != p2 || p1 != d.dir("l") {
		t.Errorf("Get returned %s then %s, want %s both times", p1, p2, d.dir("l"))
	}
	if err := d.Remove("l"); err == nil || !strings.Contains(err.Error(), "in use (2 references from Get)") {
		t.Errorf("Remove of a layer in use: %v", err)
	}
	must(t, d.Put("l"))
	must(t, d.Put("l"))
	if err := d.Put("l"); !errors.Is(err, drivers.ErrNotMounted) {
		t.Errorf("third Put after two Gets: %v, want ErrNotMounted", err)
	}
	_, err = d.Get("l")
	must(t, err)
	must(t, d.Cleanup())
	if err := d.Put("l"); !errors.Is(err, drivers.ErrNotMounted) {
		t.Errorf("Put after Cleanup: %v, want ErrNotMounted", err)
	}
	must(t, d.Remove("l"))
	if d.Exists("l") {
		t.Errorf("layer exists after Remove")
	}
}

// TestCreateCopiesEverything checks that a child layer is a faithful,
// independent copy of its parent on a real ext4 filesystem.
func TestCreateCopiesEverything(t *testing.T) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Ext4, 0)
	d := newDriver(t, filepath.Join(fs.Dir, "vfs"))
	must(t, d.Create("base", ""))
	root, err := d.Get("base")
	must(t, err)
	t.Cleanup(func() { _ = d.Put("base") })

	p := func(rel string) string { return filepath.Join(root, rel) }
	must(t, os.MkdirAll(p("usr/bin"), 0o755))
	must(t, os.WriteFile(p("usr/bin/ping"), []byte("#!/bin/true\n"), 0o755))
	capV2 := []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // cap_net_raw=ep
	must(t, unix.Lsetxattr(p("usr/bin/ping"), "security.capability", capV2, 0))
	must(t, os.WriteFile(p("usr/bin/su"), []byte("su"), 0o755))
	must(t, os.Chmod(p("usr/bin/su"), 0o4755))
	must(t, os.WriteFile(p("usr/bin/owned"), []byte("o"), 0o640))
	must(t, os.Lchown(p("usr/bin/owned"), 33, 44))
	must(t, os.Link(p("usr/bin/su"), p("usr/bin/su-link")))
	must(t, os.Symlink("ping", p("usr/bin/ping6")))
	must(t, os.Lchown(p("usr/bin/ping6"), 5, 6))
	must(t, os.MkdirAll(p("dev"), 0o755))
	must(t, unix.Mknod(p("dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(p("dev/fifo"), unix.S_IFIFO|0o600, 0))
	must(t, os.Mkdir(p("tmp"), 0o777))
	must(t, os.Chmod(p("tmp"), 0o1777))
	f, err := os.Create(p("sparse"))
	must(t, err)
	_, err = f.WriteAt([]byte("end"), 100<<20)
	must(t, err)
	must(t, f.Close())

	must(t, d.Create("child", "base"))
	child, err := d.Get("child")
	must(t, err)
	t.Cleanup(func() { _ = d.Put("child") })
	c := func(rel string) string { return filepath.Join(child, rel) }

	lst := func(path string) unix.Stat_t {
		var st unix.Stat_t
		must(t, unix.Lstat(path, &st))
		return st
	}
	for _, rel := range []string{"usr/bin/ping", "usr/bin/su", "usr/bin/owned", "usr/bin/ping6", "dev/null", "dev/fifo", "tmp", "sparse"} {
		a, b := lst(p(rel)), lst(c(rel))
		if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev || a.Size != b.Size || a.Mtim != b.Mtim {
			t.Errorf("%s: child mode %#o owner %d:%d rdev %#x size %d mtime %v; parent %#o %d:%d %#x %d %v",
				rel, b.Mode, b.Uid, b.Gid, b.Rdev, b.Size, b.Mtim, a.Mode, a.Uid, a.Gid, a.Rdev, a.Size, a.Mtim)
		}
		if a.Ino == b.Ino {
			t.Errorf("%s: child shares the parent's inode; vfs layers are full copies", rel)
		}
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(c("usr/bin/ping"), "security.capability", buf)
	if err != nil || string(buf[:n]) != string(capV2) {
		t.Errorf("file capability of ping in the child: %x, %v; want %x", buf[:n], err, capV2)
	}
	if lst(c("usr/bin/su")).Ino != lst(c("usr/bin/su-link")).Ino {
		t.Errorf("su and su-link are hard links in the parent, not in the child")
	}
	if target, _ := os.Readlink(c("usr/bin/ping6")); target != "ping" {
		t.Errorf("symlink target %q, want ping", target)
	}
	if b := lst(c("sparse")).Blocks; b*512 > 1<<20 {
		t.Errorf("a 100 MiB sparse file with 3 bytes allocates %d KiB in the child", b/2)
	}

	// The child is independent: changing it leaves the parent alone.
	must(t, os.WriteFile(c("usr/bin/owned"), []byte("changed"), 0o640))
	must(t, os.Remove(c("usr/bin/su")))
	if b, _ := os.ReadFile(p("usr/bin/owned")); string(b) != "o" {
		t.Errorf("writing the child changed the parent: %q", b)
	}
	if _, err := os.Lstat(p("usr/bin/su")); err != nil {
		t.Errorf("removing from the child removed from the parent: %v", err)
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func freeInodes(t testing.TB, dir string) uint64 {
	t.Helper()
	var st unix.Statfs_t
	must(t, unix.Statfs(dir, &st))
	return st.Ffree
}
