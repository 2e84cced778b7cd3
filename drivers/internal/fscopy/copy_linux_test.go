package fscopy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// node is one entry of the fixture tree. Entries are created in order, so
// a directory precedes its contents and a hard link follows its target.
type node struct {
	path     string
	kind     uint32 // S_IFDIR, S_IFREG, ...
	perm     uint32 // permission bits incl. setuid/setgid/sticky
	uid, gid int
	rdev     uint64
	data     []byte
	sparse   []extent // data written at offsets, size taken from sparseSize
	size     int64
	target   string // symlink target
	linkTo   string // hard link to an earlier path
	xattrs   map[string][]byte
	socket   bool // a real socket made by bind(2), not mknod
}

type extent struct {
	off int64
	n   int
}

// fileCap is a VFS_CAP_REVISION_2 security.capability value granting
// cap_net_bind_service (bit 10) as permitted and effective, as
// `setcap cap_net_bind_service=ep` writes it.
func fileCap() []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000000|0x1) // revision 2, effective
	binary.LittleEndian.PutUint32(b[4:], 1<<10)          // permitted[0]
	return b
}

func fixtureNodes() []node {
	random := make([]byte, 3<<20+123)
	rand.New(rand.NewSource(1)).Read(random)
	return []node{
		{path: "d", kind: unix.S_IFDIR, perm: 0o750, uid: 1000, gid: 2000,
			xattrs: map[string][]byte{"trusted.overlay.opaque": []byte("y"), "user.note": []byte("dir")}},
		{path: "d/sticky", kind: unix.S_IFDIR, perm: 0o1777},
		{path: "d/sticky/deep", kind: unix.S_IFDIR, perm: 0o555, uid: 7, gid: 8},
		{path: "d/sticky/deep/leaf", kind: unix.S_IFREG, perm: 0o400, data: []byte("leaf\n")},
		{path: "empty-dir", kind: unix.S_IFDIR, perm: 0o700},
		{path: "f", kind: unix.S_IFREG, perm: 0o644, uid: 1000, gid: 1000, data: []byte("hello, layers\n"),
			xattrs: map[string][]byte{
				"user.k":           []byte("v"),
				"trusted.k":        []byte("trusted value"),
				"security.gp.test": []byte("security value"),
				"user.binary":      {0, 1, 2, 0, 255},
			}},
		{path: "d/f-link", linkTo: "f"},
		{path: "ping", kind: unix.S_IFREG, perm: 0o755, data: []byte("#!/bin/true\n"),
			xattrs: map[string][]byte{"security.capability": fileCap()}},
		{path: "suid", kind: unix.S_IFREG, perm: 0o4755, data: []byte("suid")},
		{path: "sgid", kind: unix.S_IFREG, perm: 0o2711, gid: 50, data: []byte("sgid")},
		{path: "suid-user", kind: unix.S_IFREG, perm: 0o6755, uid: 1000, gid: 1000, data: []byte("suid and sgid, not root")},
		{path: "no-perms", kind: unix.S_IFREG, perm: 0, data: []byte("mode 0000")},
		{path: "empty", kind: unix.S_IFREG, perm: 0o600},
		{path: "big", kind: unix.S_IFREG, perm: 0o644, data: random},
		{path: "sparse", kind: unix.S_IFREG, perm: 0o644, size: 64 << 20,
			sparse: []extent{{0, 4096}, {32 << 20, 8192}}}, // trailing hole
		{path: "sparse-lead", kind: unix.S_IFREG, perm: 0o644, size: 16<<20 + 100,
			sparse: []extent{{16 << 20, 100}}}, // leading hole, data to EOF
		{path: "tri-1", kind: unix.S_IFREG, perm: 0o640, data: []byte("three names")},
		{path: "d/tri-2", linkTo: "tri-1"},
		{path: "d/sticky/tri-3", linkTo: "tri-1"},
		{path: "ln", kind: unix.S_IFLNK, target: "f", uid: 1000, gid: 1001,
			xattrs: map[string][]byte{"trusted.link": []byte("on the link itself")}},
		{path: "dangling", kind: unix.S_IFLNK, target: "/nonexistent/target"},
		{path: "d/up", kind: unix.S_IFLNK, target: "../d/sticky"},
		{path: "null", kind: unix.S_IFCHR, perm: 0o666, rdev: unix.Mkdev(1, 3)},
		{path: "blk", kind: unix.S_IFBLK, perm: 0o660, gid: 6, rdev: unix.Mkdev(7, 200)},
		{path: "d/whiteout", kind: unix.S_IFCHR, perm: 0, rdev: unix.Mkdev(0, 0),
			xattrs: map[string][]byte{"trusted.on-device": []byte("x")}},
		{path: "fifo", kind: unix.S_IFIFO, perm: 0o640, uid: 3, gid: 4},
		{path: "sock", kind: unix.S_IFSOCK, perm: 0o755, socket: true},
		{path: "mknod-sock", kind: unix.S_IFSOCK, perm: 0o600},
	}
}

// makeFixture builds the tree under root and gives every entry distinct
// old timestamps, deepest first so that creating children does not move
// a directory's times afterwards. It returns every path ("" is the root).
func makeFixture(t *testing.T, root string, skip func(node) bool) []string {
	t.Helper()
	nodes := fixtureNodes()
	paths := []string{""}
	for _, n := range nodes {
		if skip != nil && skip(n) {
			continue
		}
		p := filepath.Join(root, n.path)
		paths = append(paths, n.path)
		if n.linkTo != "" {
			must(t, unix.Link(filepath.Join(root, n.linkTo), p))
			continue
		}
		switch n.kind {
		case unix.S_IFDIR:
			must(t, unix.Mkdir(p, 0o700))
		case unix.S_IFREG:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			must(t, err)
			_, err = f.Write(n.data)
			must(t, err)
			for _, e := range n.sparse {
				_, err = f.WriteAt(bytes.Repeat([]byte{0xab}, e.n), e.off)
				must(t, err)
			}
			if n.size > 0 {
				must(t, f.Truncate(n.size))
			}
			must(t, f.Close())
		case unix.S_IFLNK:
			must(t, unix.Symlink(n.target, p))
		case unix.S_IFSOCK:
			if n.socket {
				fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
				must(t, err)
				must(t, unix.Bind(fd, &unix.SockaddrUnix{Name: p}))
				must(t, unix.Close(fd))
			} else {
				must(t, unix.Mknod(p, n.kind|0o600, 0))
			}
		default:
			must(t, unix.Mknod(p, n.kind|0o600, int(n.rdev)))
		}
		must(t, unix.Lchown(p, n.uid, n.gid))
		for k, v := range n.xattrs {
			if err := unix.Lsetxattr(p, k, v, 0); err != nil {
				t.Fatalf("lsetxattr %s on %s: %v", k, p, err)
			}
		}
		if n.kind != unix.S_IFLNK {
			must(t, unix.Chmod(p, n.perm))
		}
	}
	must(t, unix.Chmod(root, 0o711))
	must(t, unix.Lchown(root, 0, 10))
	must(t, unix.Lsetxattr(root, "trusted.root", []byte("root xattr"), 0))
	base := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for i := len(paths) - 1; i >= 0; i-- {
		at := base.Add(time.Duration(i)*time.Hour + 123456789)
		mt := at.Add(-time.Duration(i+1) * 97 * time.Minute)
		ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, paths[i]), ts, unix.AT_SYMLINK_NOFOLLOW))
	}
	return paths
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type entry struct {
	st     unix.Stat_t
	xattrs map[string]string
}

// snapshot lstats the given paths without listing any directory or
// reading any symlink, so that taking it changes no atime.
func snapshot(t *testing.T, root string, paths []string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	for _, p := range paths {
		full := filepath.Join(root, p)
		var e entry
		if err := unix.Lstat(full, &e.st); err != nil {
			t.Fatalf("lstat %s: %v", full, err)
		}
		names, err := listXattrs(full)
		if err != nil {
			t.Fatalf("list xattrs of %s: %v", full, err)
		}
		e.xattrs = map[string]string{}
		for _, n := range names {
			v, err := getXattr(full, n)
			if err != nil {
				t.Fatal(err)
			}
			e.xattrs[n] = string(v)
		}
		out[p] = e
	}
	return out
}

func TestCopyFidelity(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, fsKind := range []string{testutil.Ext4, testutil.XFS, testutil.Btrfs, testutil.Tmpfs, testutil.Overlay} {
		for _, mode := range []Mode{Content, Hardlink} {
			t.Run(fsKind+"/"+mode.String(), func(t *testing.T) {
				fs := testutil.NewFS(t, fsKind, 0)
				src := filepath.Join(fs.Dir, "src")
				dst := filepath.Join(fs.Dir, "dst")
				must(t, os.Mkdir(src, 0o755))
				var skip func(node) bool
				if fsKind == testutil.Overlay {
					// overlayfs refuses to create its own whiteout
					// (mknod c 0 0) through the mount: EPERM.
					skip = func(n node) bool { return n.kind == unix.S_IFCHR && n.rdev == 0 }
				}
				paths := makeFixture(t, src, skip)
				before := snapshot(t, src, paths)

				if err := Copy(src, dst, mode); err != nil {
					t.Fatalf("Copy: %v", err)
				}

				got := snapshot(t, dst, paths)
				after := snapshot(t, src, paths)
				for _, p := range paths {
					if before[p].st.Mode&unix.S_IFMT == unix.S_IFLNK {
						// readlink(2) moves a symlink's atime and has
						// no O_NOATIME; nothing else may move.
						continue
					}
					if a, b := before[p].st.Atim, after[p].st.Atim; a != b {
						t.Errorf("%q: copying changed the source's atime from %v to %v", p, a, b)
					}
				}
				checkTree(t, mode, before, got)
				checkContents(t, src, dst, paths)
				checkSameNames(t, src, dst, paths)
			})
		}
	}
}

func checkTree(t *testing.T, mode Mode, src, dst map[string]entry) {
	t.Helper()
	for p, s := range src {
		d := dst[p]
		ss, ds := s.st, d.st
		name := p
		if name == "" {
			name = "(root)"
		}
		if ss.Mode != ds.Mode {
			t.Errorf("%s: mode %#o, want %#o", name, ds.Mode, ss.Mode)
		}
		if ss.Uid != ds.Uid || ss.Gid != ds.Gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", name, ds.Uid, ds.Gid, ss.Uid, ss.Gid)
		}
		if ss.Rdev != ds.Rdev {
			t.Errorf("%s: rdev %d:%d, want %d:%d", name, unix.Major(uint64(ds.Rdev)), unix.Minor(uint64(ds.Rdev)), unix.Major(uint64(ss.Rdev)), unix.Minor(uint64(ss.Rdev)))
		}
		if ss.Mtim != ds.Mtim {
			t.Errorf("%s: mtime %v, want %v", name, time.Unix(ds.Mtim.Unix()), time.Unix(ss.Mtim.Unix()))
		}
		if ss.Atim != ds.Atim {
			t.Errorf("%s: atime %v, want %v", name, time.Unix(ds.Atim.Unix()), time.Unix(ss.Atim.Unix()))
		}
		isReg := ss.Mode&unix.S_IFMT == unix.S_IFREG
		if isReg && ss.Size != ds.Size {
			t.Errorf("%s: size %d, want %d", name, ds.Size, ss.Size)
		}
		if !reflect.DeepEqual(s.xattrs, d.xattrs) {
			t.Errorf("%s: xattrs %q, want %q", name, d.xattrs, s.xattrs)
		}
		sameInode := ss.Ino == ds.Ino && ss.Dev == ds.Dev
		switch {
		case isReg && mode == Hardlink:
			if !sameInode {
				t.Errorf("%s: hardlink mode made a new inode for a regular file", name)
			}
			if uint64(ds.Nlink) != 2*uint64(ss.Nlink) {
				t.Errorf("%s: %d links after a hard-link copy, want %d", name, ds.Nlink, 2*ss.Nlink)
			}
		case sameInode:
			t.Errorf("%s: shares the source's inode; only regular files in hardlink mode may", name)
		case isReg && ds.Nlink != ss.Nlink:
			t.Errorf("%s: %d links, want %d as in the source", name, ds.Nlink, ss.Nlink)
		}
		if isReg && mode == Content && ss.Blocks*512 < ss.Size {
			// A sparse source: the copy may not allocate more than it.
			if ds.Blocks > ss.Blocks+8 {
				t.Errorf("%s: copy of a sparse file allocates %d blocks, the source %d", name, ds.Blocks, ss.Blocks)
			}
		}
	}
	for _, group := range [][]string{{"f", "d/f-link"}, {"tri-1", "d/tri-2", "d/sticky/tri-3"}} {
		for _, p := range group[1:] {
			if dst[p].st.Ino != dst[group[0]].st.Ino {
				t.Errorf("%s and %s are hard links in the source but not in the copy", group[0], p)
			}
		}
	}
	if dst["f"].st.Ino == dst["ping"].st.Ino {
		t.Errorf("f and ping are distinct files but share an inode in the copy")
	}
}

// checkContents compares file data and symlink targets, after the
// snapshots because reading moves atimes.
func checkContents(t *testing.T, src, dst string, paths []string) {
	t.Helper()
	for _, p := range paths {
		var st unix.Stat_t
		must(t, unix.Lstat(filepath.Join(src, p), &st))
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			a, err := os.Readlink(filepath.Join(src, p))
			must(t, err)
			b, err := os.Readlink(filepath.Join(dst, p))
			must(t, err)
			if a != b {
				t.Errorf("%s: symlink target %q, want %q", p, b, a)
			}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		a, err := os.ReadFile(filepath.Join(src, p))
		must(t, err)
		b, err := os.ReadFile(filepath.Join(dst, p))
		must(t, err)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: contents differ (%d bytes, want %d)", p, len(b), len(a))
		}
	}
}

// checkSameNames lists both trees (after the snapshots, since listing
// moves directory atimes) and finds nothing missing or extra.
func checkSameNames(t *testing.T, src, dst string, paths []string) {
	t.Helper()
	list := func(root string) []string {
		var out []string
		err := filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
			return nil
		})
		must(t, err)
		sort.Strings(out)
		return out
	}
	a, b := list(src), list(dst)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("copy has names %q, source %q", b, a)
	}
	if len(a) != len(paths) {
		t.Errorf("fixture lists %d paths, the tree has %d", len(paths), len(a))
	}
}

// TestCopyIntoEmptyDir is how vfs uses Copy: the layer directory exists
// already, and must end up with the parent root's metadata.
func TestCopyIntoEmptyDir(t *testing.T) {
	testutil.RequiresRoot(t)
	base := t.TempDir()
	src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
	must(t, os.Mkdir(src, 0o755))
	must(t, os.Mkdir(dst, 0o700))
	must(t, os.WriteFile(filepath.Join(src, "a"), []byte("a"), 0o644))
	must(t, unix.Chmod(src, 0o1751))
	must(t, unix.Chown(src, 5, 6))
	must(t, unix.Lsetxattr(src, "trusted.root", []byte("r"), 0))
	ts := []unix.Timespec{unix.NsecToTimespec(1e18), unix.NsecToTimespec(2e18)}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, src, ts, 0))
	want := snapshot(t, src, []string{""})[""]

	must(t, Copy(src, dst, Content))

	got := snapshot(t, dst, []string{""})[""]
	if got.st.Mode != want.st.Mode || got.st.Uid != 5 || got.st.Gid != 6 || got.st.Mtim != want.st.Mtim || got.xattrs["trusted.root"] != "r" {
		t.Errorf("root of the copy: mode %#o owner %d:%d mtime %v xattrs %q; want mode %#o owner 5:6 mtime %v trusted.root=r",
			got.st.Mode, got.st.Uid, got.st.Gid, got.st.Mtim, got.xattrs, want.st.Mode, want.st.Mtim)
	}
}

func TestCopyErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, base string) (src, dst string)
		mode  Mode
		want  string
		is    error
	}{
		{
			name: "source missing",
			setup: func(t *testing.T, base string) (string, string) {
				return filepath.Join(base, "none"), filepath.Join(base, "dst")
			},
			want: "lstat", is: os.ErrNotExist,
		},
		{
			name: "source is a file",
			setup: func(t *testing.T, base string) (string, string) {
				must(t, os.WriteFile(filepath.Join(base, "file"), nil, 0o644))
				return filepath.Join(base, "file"), filepath.Join(base, "dst")
			},
			want: "not a directory", is: unix.ENOTDIR,
		},
		{
			name: "destination not empty",
			setup: func(t *testing.T, base string) (string, string) {
				must(t, os.MkdirAll(filepath.Join(base, "src"), 0o755))
				must(t, os.MkdirAll(filepath.Join(base, "dst", "old"), 0o755))
				return filepath.Join(base, "src"), filepath.Join(base, "dst")
			},
			want: `is not empty (found "old")`,
		},
		{
			name: "destination is a file",
			setup: func(t *testing.T, base string) (string, string) {
				must(t, os.MkdirAll(filepath.Join(base, "src"), 0o755))
				must(t, os.WriteFile(filepath.Join(base, "dst"), nil, 0o644))
				return filepath.Join(base, "src"), filepath.Join(base, "dst")
			},
			want: "exists and is not a directory",
		},
		{
			name: "destination parent missing",
			setup: func(t *testing.T, base string) (string, string) {
				must(t, os.MkdirAll(filepath.Join(base, "src"), 0o755))
				return filepath.Join(base, "src"), filepath.Join(base, "no", "dst")
			},
			want: "mkdir", is: os.ErrNotExist,
		},
		{
			name: "destination inside source",
			setup: func(t *testing.T, base string) (string, string) {
				must(t, os.MkdirAll(filepath.Join(base, "src", "sub"), 0o755))
				return filepath.Join(base, "src"), filepath.Join(base, "src", "sub", "dst")
			},
			want: "destination is inside the source",
		},
		{
			name: "unknown mode",
			setup: func(t *testing.T, base string) (string, string) {
				must(t, os.MkdirAll(filepath.Join(base, "src"), 0o755))
				return filepath.Join(base, "src"), filepath.Join(base, "dst")
			},
			mode: Mode(7), want: "unknown mode 7",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			src, dst := tt.setup(t, base)
			err := Copy(src, dst, tt.mode)
			if err == nil {
				t.Fatalf("Copy(%s, %s) succeeded", src, dst)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "copy "+src+" to "+dst+": ") {
				t.Errorf("error %q, want it to start with the op and contain %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
		})
	}
}

func TestHardlinkAcrossFilesystems(t *testing.T) {
	testutil.RequiresRoot(t)
	other := testutil.NewFS(t, testutil.Tmpfs, 16)
	src := filepath.Join(other.Dir, "src")
	must(t, os.Mkdir(src, 0o755))
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	dst := filepath.Join(t.TempDir(), "dst")
	err := Copy(src, dst, Hardlink)
	if !errors.Is(err, unix.EXDEV) || !strings.Contains(err.Error(), "on one filesystem") {
		t.Fatalf("hard-link copy across filesystems: %v, want EXDEV with the remedy", err)
	}
	// Content mode works across filesystems (copy_file_range falls back).
	dst2 := filepath.Join(t.TempDir(), "dst2")
	must(t, Copy(src, dst2, Content))
	if b, err := os.ReadFile(filepath.Join(dst2, "f")); err != nil || string(b) != "x" {
		t.Errorf("content copy across filesystems: %q, %v", b, err)
	}
}

// TestXattrsRefused copies onto ramfs, which has no xattr support: by
// default that is an error naming the attribute, and with
// BestEffortXattrs the attribute is dropped and the rest copied.
func TestXattrsRefused(t *testing.T) {
	testutil.RequiresRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.Mkdir(src, 0o755))
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	must(t, unix.Lsetxattr(filepath.Join(src, "f"), "trusted.k", []byte("v"), 0))
	ram := t.TempDir()
	must(t, unix.Mount("ramfs", ram, "ramfs", 0, ""))
	t.Cleanup(func() { _ = unix.Unmount(ram, unix.MNT_DETACH) })

	tests := []struct {
		name    string
		best    bool
		wantErr string
	}{
		{name: "strict", wantErr: "lsetxattr trusted.k " + filepath.Join(ram, "strict", "f")},
		{name: "best-effort", best: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(ram, tt.name)
			err := CopyWith(src, dst, Options{Mode: Content, BestEffortXattrs: tt.best})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || string(b) != "x" {
				t.Errorf("best-effort copy: %q, %v", b, err)
			}
		})
	}
}
