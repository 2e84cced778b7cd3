package archive_test

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/drivers/archive"
	dt "github.com/graphprobe/graphprobe/drivers/drivertest"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

// capV2 is a valid security.capability value (revision 2, effective,
// permitted cap_net_raw): the kernel checks the format.
var capV2 = string([]byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

// richEntries are entries of every kind a layer holds, without whiteouts.
func richEntries() []dt.Entry {
	return []dt.Entry{
		dt.Dir("bin", 0o755),
		dt.File("bin/ping", "ELF", 0o755).WithXattr("security.capability", capV2),
		dt.File("bin/su", "setuid", 0o4755),
		dt.Hardlink("bin/su-link", "bin/su"),
		dt.Symlink("bin/sh", "/bin/busybox"),
		dt.Dir("dev", 0o755),
		dt.Entry{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 3, ModTime: dt.Epoch},
		dt.Entry{Name: "dev/loop9", Type: tar.TypeBlock, Mode: 0o660, Major: 7, Minor: 9, ModTime: dt.Epoch}.Owned(0, 6),
		dt.Entry{Name: "dev/pipe", Type: tar.TypeFifo, Mode: 0o620, ModTime: dt.Epoch},
		dt.Dir("home", 0o755),
		dt.Dir("home/user", 0o700).Owned(1000, 1000).WithXattr("user.note", "home"),
		dt.File("home/user/notes", "hello\n", 0o640).Owned(1000, 1001).WithXattr("user.color", "blue").WithXattr("trusted.tag", "t"),
		dt.Dir("tmp", 0o1777),
		dt.Dir("srv", 0o2775).Owned(0, 50),
		dt.File("srv/empty", "", 0o600),
	}
}

func readAll(t *testing.T, rc io.ReadCloser) []dt.Entry {
	t.Helper()
	defer rc.Close()
	es, err := dt.ReadTar(rc)
	if err != nil {
		t.Fatalf("read exported stream: %v", err)
	}
	return es
}

func TestApplyExportRoundTrip(t *testing.T) {
	testutil.RequiresRoot(t)
	whiteouts := []dt.Entry{
		dt.Dir("gone", 0o755),
		dt.Whiteout("gone/file"),
		dt.Dir("walled", 0o750).Owned(3, 4),
		dt.Opaque("walled"),
		dt.File("walled/inside", "x", 0o644),
	}
	for _, tc := range []struct {
		name    string
		format  archive.WhiteoutFormat
		entries []dt.Entry
	}{
		{"full tree", archive.WhiteoutNone, richEntries()},
		{"aufs layer", archive.WhiteoutAUFS, append(richEntries(), whiteouts...)},
		{"overlay layer", archive.WhiteoutOverlay, append(richEntries(), whiteouts...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			n, err := archive.Apply(dir, dt.Tar(t, tc.entries...), archive.ApplyOptions{Whiteouts: tc.format})
			if err != nil {
				t.Fatal(err)
			}
			var want int64
			for _, e := range tc.entries {
				want += int64(len(e.Body))
			}
			if n != want {
				t.Errorf("Apply returned %d bytes, want %d", n, want)
			}
			rc, err := archive.Export(dir, archive.ExportOptions{Whiteouts: tc.format})
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, rc)
			for _, d := range dt.CompareEntries(tc.entries, got) {
				t.Error(d)
			}
		})
	}
}

func TestApplyOverlayForm(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	_, err := archive.Apply(dir, dt.Tar(t,
		dt.Dir("d", 0o755),
		dt.Whiteout("d/deleted").Owned(5, 6),
		dt.Opaque("d"),
		dt.Whiteout("implicit/parent/x"),
	), archive.ApplyOptions{Whiteouts: archive.WhiteoutOverlay})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"d/deleted", "implicit/parent/x"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, p), &st); err != nil {
			t.Fatalf("whiteout %s: %v", p, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: mode %o rdev %d, want a 0/0 character device", p, st.Mode, st.Rdev)
		}
	}
	var st unix.Stat_t
	unix.Lstat(filepath.Join(dir, "d/deleted"), &st)
	if st.Uid != 5 || st.Gid != 6 {
		t.Errorf("whiteout owner %d:%d, want the stream's 5:6", st.Uid, st.Gid)
	}
	if v := xattr(t, filepath.Join(dir, "d"), archive.OverlayOpaqueXattr); v != "y" {
		t.Errorf("opaque xattr on d = %q, want y", v)
	}
	if _, err := os.Lstat(filepath.Join(dir, "d", archive.WhiteoutOpaqueDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the opaque marker file was written as a file (err %v)", err)
	}
}

func withMode(e dt.Entry, mode int64) dt.Entry { e.Mode = mode; return e }

func xattr(t *testing.T, p, name string) string {
	t.Helper()
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func TestApplyFullTreeWhiteouts(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	// The parent's tree.
	if _, err := archive.Apply(dir, dt.Tar(t,
		dt.File("keep", "k", 0o644),
		dt.File("drop", "d", 0o644),
		dt.Dir("tree/sub", 0o755),
		dt.File("tree/sub/deep", "x", 0o644),
		dt.Dir("opq/sub", 0o755),
		dt.File("opq/old", "o", 0o644),
		dt.File("opq/sub/older", "o", 0o644),
		dt.File("opq/replaced", "old", 0o644),
	), archive.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// The layer on top, applied to the same tree.
	if _, err := archive.Apply(dir, dt.Tar(t,
		dt.Whiteout("drop"),
		dt.Whiteout("tree"),
		dt.Whiteout("never/existed"),
		dt.Dir("opq", 0o755),
		dt.File("opq/replaced", "new", 0o644),
		dt.Opaque("opq"),
		dt.File("opq/after", "a", 0o644),
	), archive.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	got := tree(t, dir)
	want := "keep opq/ opq/after opq/replaced"
	if got != want {
		t.Errorf("tree = %q, want %q", got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "opq/replaced")); string(b) != "new" {
		t.Errorf("opq/replaced = %q, want the layer's own version", b)
	}
}

// tree lists the paths below dir, directories with a trailing slash.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	return strings.Join(out, " ")
}

func TestApplyNeverWritesThroughHardLinks(t *testing.T) {
	testutil.RequiresRoot(t)
	base := t.TempDir()
	parent, child := filepath.Join(base, "parent"), filepath.Join(base, "child")
	os.Mkdir(parent, 0o755)
	os.Mkdir(child, 0o755)
	if err := os.WriteFile(filepath.Join(parent, "f"), []byte("parent's"), 0o644); err != nil {
		t.Fatal(err)
	}
	// overlay v1 makes an image layer this way: hard links to the parent.
	if err := os.Link(filepath.Join(parent, "f"), filepath.Join(child, "f")); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Apply(child, dt.Tar(t, dt.File("f", "child's", 0o600).Owned(7, 7)), archive.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(parent, "f")); string(b) != "parent's" {
		t.Errorf("parent's file now holds %q", b)
	}
	fi, _ := os.Stat(filepath.Join(parent, "f"))
	if fi.Mode().Perm() != 0o644 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("parent's file metadata changed: %v uid %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
	}
	if b, _ := os.ReadFile(filepath.Join(child, "f")); string(b) != "child's" {
		t.Errorf("child's file holds %q", b)
	}
}

func TestApplyAUFSHardLinkDir(t *testing.T) {
	testutil.RequiresRoot(t)
	stream := []dt.Entry{
		dt.Dir(archive.WhiteoutLinkDir, 0o700),
		dt.File(archive.WhiteoutLinkDir+"/1234.5678", "linked", 0o640).Owned(9, 9),
		dt.Dir("a", 0o755),
		dt.Hardlink("a/one", archive.WhiteoutLinkDir+"/1234.5678"),
		dt.Hardlink("a/two", archive.WhiteoutLinkDir+"/1234.5678"),
	}
	for _, tc := range []struct {
		name   string
		format archive.WhiteoutFormat
		want   string
	}{
		{"full tree", archive.WhiteoutNone, "a/ a/one a/two"},
		{"overlay", archive.WhiteoutOverlay, "a/ a/one a/two"},
		{"aufs keeps it", archive.WhiteoutAUFS, ".wh..wh.plnk/ .wh..wh.plnk/1234.5678 a/ a/one a/two"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := archive.Apply(dir, dt.Tar(t, stream...), archive.ApplyOptions{Whiteouts: tc.format}); err != nil {
				t.Fatal(err)
			}
			if got := tree(t, dir); got != tc.want {
				t.Errorf("tree = %q, want %q", got, tc.want)
			}
			one, err1 := os.Stat(filepath.Join(dir, "a/one"))
			two, err2 := os.Stat(filepath.Join(dir, "a/two"))
			if err1 != nil || err2 != nil || !os.SameFile(one, two) {
				t.Fatalf("a/one and a/two are not one file: %v %v", err1, err2)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "a/one")); string(b) != "linked" || one.Mode().Perm() != 0o640 {
				t.Errorf("a/one = %q mode %v, want the link target's content and mode", b, one.Mode())
			}
		})
	}
}

func TestApplyRefusesUnsafePaths(t *testing.T) {
	testutil.RequiresRoot(t)
	cases := []struct {
		name    string
		entries []dt.Entry
		reason  string
	}{
		{"dot-dot", []dt.Entry{dt.File("../escaped", "x", 0o644)}, `climbs out`},
		{"dot-dot inside", []dt.Entry{dt.File("a/../../escaped", "x", 0o644)}, `climbs out`},
		{"absolute", []dt.Entry{dt.File("/escaped", "x", 0o644)}, "absolute path"},
		{"absolute symlink parent", []dt.Entry{dt.Symlink("out", "/"), dt.File("out/escaped", "x", 0o644)}, "symlink"},
		{"relative symlink parent", []dt.Entry{dt.Symlink("out", ".."), dt.File("out/escaped", "x", 0o644)}, "symlink"},
		{"chained symlinks", []dt.Entry{dt.Dir("d", 0o755), dt.Symlink("d/up", ".."), dt.Symlink("top", "d/up/.."), dt.File("top/escaped", "x", 0o644)}, "symlink"},
		{"hard link out", []dt.Entry{dt.Hardlink("l", "../outside")}, "hard link target"},
		{"hard link absolute", []dt.Entry{dt.Hardlink("l", "/outside")}, "hard link target"},
		{"hard link through symlink", []dt.Entry{dt.Symlink("out", ".."), dt.Hardlink("l", "out/outside")}, "symlink"},
		{"whiteout through symlink", []dt.Entry{dt.Symlink("out", ".."), dt.Whiteout("out/outside")}, "symlink"},
	}
	resolvers := []struct {
		name  string
		setup func(testing.TB)
	}{
		{"openat2", func(testing.TB) {}},
		{"component walk", archive.WithoutOpenat2},
	}
	for _, tc := range cases {
		for _, format := range []archive.WhiteoutFormat{archive.WhiteoutNone, archive.WhiteoutOverlay} {
			for _, res := range resolvers {
				t.Run(tc.name+"/"+format.String()+"/"+res.name, func(t *testing.T) {
					res.setup(t)
					base := t.TempDir()
					dest := filepath.Join(base, "layer")
					os.Mkdir(dest, 0o755)
					outside := filepath.Join(base, "outside")
					os.WriteFile(outside, []byte("precious"), 0o644)
					_, err := archive.Apply(dest, dt.Tar(t, tc.entries...), archive.ApplyOptions{Whiteouts: format})
					if !errors.Is(err, archive.ErrUnsafePath) {
						t.Fatalf("Apply = %v, want an error wrapping ErrUnsafePath", err)
					}
					if !strings.Contains(err.Error(), tc.reason) {
						t.Errorf("error %q does not say %q", err, tc.reason)
					}
					if b, err := os.ReadFile(outside); err != nil || string(b) != "precious" {
						t.Errorf("file outside the layer: %q, %v", b, err)
					}
					if _, err := os.Lstat(filepath.Join(base, "escaped")); err == nil {
						t.Errorf("an entry was written outside the layer")
					}
					for _, p := range []string{"/escaped", filepath.Join(filepath.Dir(base), "escaped")} {
						if _, err := os.Lstat(p); err == nil {
							t.Errorf("an entry was written at %s", p)
						}
					}
				})
			}
		}
	}
}

func TestApplySymlinksStayingInside(t *testing.T) {
	testutil.RequiresRoot(t)
	base := t.TempDir()
	dest := filepath.Join(base, "layer")
	os.Mkdir(dest, 0o755)
	outside := filepath.Join(base, "outside")
	os.WriteFile(outside, []byte("precious"), 0o644)
	_, err := archive.Apply(dest, dt.Tar(t,
		dt.Dir("real", 0o755),
		dt.Symlink("alias", "real"),
		dt.File("alias/through", "ok", 0o644),
		// A final component that is a symlink is replaced, not followed.
		dt.Symlink("trap", outside),
		dt.File("trap", "replaced", 0o644),
	), archive.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "real/through")); string(b) != "ok" {
		t.Errorf("real/through = %q, want the entry written through the inside symlink", b)
	}
	if b, _ := os.ReadFile(outside); string(b) != "precious" {
		t.Errorf("the file a symlink pointed at was written: %q", b)
	}
	if fi, err := os.Lstat(filepath.Join(dest, "trap")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("trap was not replaced by a regular file: %v %v", fi, err)
	}
}

func TestConvertWhiteouts(t *testing.T) {
	testutil.RequiresRoot(t)
	aufsForm := []dt.Entry{
		dt.Dir("etc", 0o755),
		dt.File("etc/kept", "k", 0o644),
		dt.Whiteout("etc/passwd").Owned(2, 3),
		dt.Dir("var/cache", 0o700).Owned(4, 4),
		// The overlay form keeps no metadata of the marker itself: an
		// export gives it the directory's, as this one has.
		withMode(dt.Opaque("var/cache").Owned(4, 4), 0o700),
		dt.File("var/cache/fresh", "f", 0o600),
		dt.Whiteout("gone-dir"),
	}
	layer := t.TempDir()
	if _, err := archive.Apply(layer, dt.Tar(t, aufsForm...), archive.ApplyOptions{Whiteouts: archive.WhiteoutAUFS}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, layer)

	if err := archive.ConvertWhiteouts(layer, archive.WhiteoutAUFS, archive.WhiteoutOverlay); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/passwd", "gone-dir"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(layer, p), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s is not an overlay whiteout after conversion (%v)", p, err)
		}
	}
	if v := xattr(t, filepath.Join(layer, "var/cache"), archive.OverlayOpaqueXattr); v != "y" {
		t.Errorf("var/cache opaque xattr = %q, want y", v)
	}
	if got := tree(t, layer); strings.Contains(got, ".wh.") {
		t.Errorf("aufs markers left after conversion: %s", got)
	}

	// The kernel must read the converted layer as the aufs layer meant.
	lower := t.TempDir()
	if _, err := archive.Apply(lower, dt.Tar(t,
		dt.File("etc/passwd", "root", 0o644), dt.File("etc/group", "g", 0o644),
		dt.File("var/cache/stale", "s", 0o644), dt.Dir("gone-dir/sub", 0o755),
	), archive.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	merged := mountOverlay(t, lower, layer)
	if got, want := tree(t, merged), "etc/ etc/group etc/kept var/ var/cache/ var/cache/fresh"; got != want {
		t.Errorf("merged view = %q, want %q", got, want)
	}
	unix.Unmount(merged, 0)

	// And back: the same layer as before, owners and times included.
	if err := archive.ConvertWhiteouts(layer, archive.WhiteoutOverlay, archive.WhiteoutAUFS); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, layer); after != before {
		t.Errorf("aufs -> overlay -> aufs changed the layer:\nbefore %s\nafter  %s", before, after)
	}
}

// snapshot describes every entry's name, type, mode, owner, mtime and
// xattrs.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	rc, err := archive.Export(dir, archive.ExportOptions{Whiteouts: archive.WhiteoutAUFS})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range readAll(t, rc) {
		fmt.Fprintf(&b, "%s %c %o %d:%d %s %v; ", e.Name, e.Type, e.Mode, e.UID, e.GID, e.ModTime.UTC().Format(time.RFC3339Nano), e.Xattrs)
	}
	return b.String()
}

// mountOverlay mounts upper over lower read-only (two lowers) and returns
// the mount point; it is unmounted when the test ends.
func mountOverlay(t *testing.T, lower, upper string) string {
	t.Helper()
	merged := t.TempDir()
	data := "lowerdir=" + upper + ":" + lower
	if err := unix.Mount("overlay", merged, "overlay", 0, data); err != nil {
		t.Fatalf("mount overlay (%s): %v", data, err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	return merged
}
