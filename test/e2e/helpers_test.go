package e2e

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/dockertest"
	"github.com/graphprobe/graphprobe/version"
	"golang.org/x/sys/unix"
)

// tarEntry is one entry of the image tarball the tests import, and what
// must be found at its path in any layer or mount that shows the image.
type tarEntry struct {
	Path     string
	Type     byte // tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink
	Mode     fs.FileMode
	UID, GID int
	Content  string // file content
	Target   string // symlink or hard-link target
}

// imageEntries is a small root filesystem with what layer code gets wrong:
// modes beyond 0777 (setuid, sticky), files owned by another user, read-only
// and empty files, a relative and an absolute symlink, a hard link and
// nested directories.
var imageEntries = []tarEntry{
	{Path: "etc", Type: tar.TypeDir, Mode: 0o755},
	{Path: "etc/app.conf", Type: tar.TypeReg, Mode: 0o644, Content: "key=value\n"},
	{Path: "etc/app.link", Type: tar.TypeSymlink, Target: "/etc/app.conf"},
	{Path: "opt", Type: tar.TypeDir, Mode: 0o755},
	{Path: "opt/tool", Type: tar.TypeDir, Mode: 0o750, UID: 1000, GID: 1000},
	{Path: "opt/tool/bin", Type: tar.TypeDir, Mode: 0o711},
	{Path: "opt/tool/bin/run", Type: tar.TypeReg, Mode: 0o755, Content: "#!/bin/sh\necho run\n"},
	{Path: "opt/tool/bin/run-hard", Type: tar.TypeLink, Target: "opt/tool/bin/run"},
	{Path: "opt/tool/bin/suid", Type: tar.TypeReg, Mode: 0o4755, Content: "setuid\n"},
	{Path: "opt/tool/current", Type: tar.TypeSymlink, Target: "bin/run"},
	{Path: "opt/tool/secret", Type: tar.TypeReg, Mode: 0o600, UID: 1000, GID: 1001, Content: "s3cret"},
	{Path: "var", Type: tar.TypeDir, Mode: 0o755},
	{Path: "var/data", Type: tar.TypeDir, Mode: 0o700},
	{Path: "var/data/deep", Type: tar.TypeDir, Mode: 0o755},
	{Path: "var/data/deep/er", Type: tar.TypeDir, Mode: 0o755},
	{Path: "var/data/deep/er/file", Type: tar.TypeReg, Mode: 0o640, Content: strings.Repeat("graphprobe\n", 1000)},
	{Path: "var/data/empty", Type: tar.TypeReg, Mode: 0o444},
	{Path: "var/tmp", Type: tar.TypeDir, Mode: 0o1777},
}

// writeImageTarball writes imageEntries as an uncompressed tar stream, the
// input of docker import.
func writeImageTarball(t testing.TB) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range imageEntries {
		h := &tar.Header{Name: e.Path, Typeflag: e.Type, Uid: e.UID, Gid: e.GID, ModTime: mtime, Format: tar.FormatPAX}
		switch e.Type {
		case tar.TypeDir:
			h.Name += "/"
			h.Mode = int64(tarMode(e.Mode))
		case tar.TypeReg:
			h.Mode = int64(tarMode(e.Mode))
			h.Size = int64(len(e.Content))
		case tar.TypeSymlink:
			h.Mode = 0o777
			h.Linkname = e.Target
		case tar.TypeLink:
			// As tar(1) writes it: the target's mode, which an extractor
			// applies to the one inode both names share.
			h.Mode = int64(tarMode(entryAt(e.Target).Mode))
			h.Linkname = e.Target
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.Type == tar.TypeReg {
			if _, err := tw.Write([]byte(e.Content)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// entryAt returns the entry of imageEntries at path.
func entryAt(path string) tarEntry {
	for _, e := range imageEntries {
		if e.Path == path {
			return e
		}
	}
	panic("no image entry " + path)
}

// tarMode turns Go's mode bits into the tar header's (c_ISUID, ...).
func tarMode(m fs.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 || m&0o4000 != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 || m&0o2000 != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 || m&0o1000 != 0 {
		v |= 0o1000
	}
	return v
}

// checkImageTree checks that every entry of imageEntries is under root with
// its type, mode (special bits included), owner, content and link target.
// root may be a layer's diff directory or a mounted layer.
func checkImageTree(t testing.TB, root string) {
	t.Helper()
	for _, e := range imageEntries {
		p := filepath.Join(root, e.Path)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Errorf("%s: %v", e.Path, err)
			continue
		}
		typ := st.Mode & unix.S_IFMT
		mode := st.Mode & 0o7777
		switch e.Type {
		case tar.TypeDir:
			if typ != unix.S_IFDIR {
				t.Errorf("%s: type %o, want a directory", e.Path, typ)
			}
		case tar.TypeReg:
			if typ != unix.S_IFREG {
				t.Errorf("%s: type %o, want a regular file", e.Path, typ)
				continue
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Errorf("%s: %v", e.Path, err)
			} else if string(got) != e.Content {
				t.Errorf("%s: content %.40q, want %.40q", e.Path, got, e.Content)
			}
		case tar.TypeSymlink:
			if typ != unix.S_IFLNK {
				t.Errorf("%s: type %o, want a symlink", e.Path, typ)
				continue
			}
			if got, err := os.Readlink(p); err != nil || got != e.Target {
				t.Errorf("%s: link target %q (%v), want %q", e.Path, got, err, e.Target)
			}
		case tar.TypeLink:
			var tst unix.Stat_t
			if err := unix.Lstat(filepath.Join(root, e.Target), &tst); err != nil {
				t.Errorf("%s: target: %v", e.Path, err)
				continue
			}
			if st.Ino != tst.Ino || st.Dev != tst.Dev {
				t.Errorf("%s: inode %d:%d, want the hard-linked %s's %d:%d", e.Path, st.Dev, st.Ino, e.Target, tst.Dev, tst.Ino)
			}
			continue
		}
		if e.Type != tar.TypeSymlink && mode != tarMode(e.Mode) {
			t.Errorf("%s: mode %04o, want %04o", e.Path, mode, tarMode(e.Mode))
		}
		if int(st.Uid) != e.UID || int(st.Gid) != e.GID {
			t.Errorf("%s: owner %d:%d, want %d:%d", e.Path, st.Uid, st.Gid, e.UID, e.GID)
		}
	}
}

// dockerdPath is what a daemon of the test sees on PATH after the engine's
// own directories: the test's PATH, or one with fuse-overlayfs hidden.
func dockerdPath(t testing.TB, hideFuse bool) []string {
	if hideFuse {
		return dockertest.PathWithout(t, "fuse-overlayfs")
	}
	return filepath.SplitList(os.Getenv("PATH"))
}

// lookPathIn finds a program the way dockerd will, in dirs.
func lookPathIn(dirs []string, name string) bool {
	for _, d := range dirs {
		if st, err := os.Stat(filepath.Join(d, name)); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// kernelAtLeast reports whether the running kernel is at least major.minor.
func kernelAtLeast(t testing.TB, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	kv, err := version.ParseKernel(unix.ByteSliceToString(u.Release[:]))
	if err != nil {
		t.Fatal(err)
	}
	return kv.AtLeast(version.K(major, minor))
}

// overlayRedirectDir reports whether the overlay module creates redirects
// by default: then a rename in a merged directory succeeds and Docker's
// native-diff check says no.
func overlayRedirectDir() bool {
	b, err := os.ReadFile("/sys/module/overlay/parameters/redirect_dir")
	return err == nil && strings.TrimSpace(string(b)) == "Y"
}

// filesystemsHas reports whether /proc/filesystems lists fstype.
func filesystemsHas(t testing.TB, fstype string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == fstype {
			return true
		}
	}
	return false
}

// aufsLoadable reports whether dockerd's `modprobe aufs` could succeed.
func aufsLoadable(t testing.TB) bool {
	if filesystemsHas(t, "aufs") {
		return true
	}
	if _, err := exec.LookPath("modinfo"); err != nil {
		return false
	}
	return exec.Command("modinfo", "aufs").Run() == nil
}

func mustStat(t testing.TB, p string) os.FileInfo {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mustRead(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
