package drivertest

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"github.com/moby/sys/mount"
	"golang.org/x/sys/unix"
)

// HomeFunc returns a fresh driver home for one test: a path that does not
// exist yet, on the filesystem under test, as <data-root>/<driver> is
// before dockerd's first start.
type HomeFunc func(t testing.TB) string

// InitFunc initialises a driver; tests use it to reach into their own
// driver (to force a mount method) before the suite gets it.
type InitFunc func(home string, opts drivers.Options) (drivers.Driver, error)

// NativeDiffer is implemented by drivers that may tar a layer's own
// directory for Diff. When NativeDiff is true the round trip must give
// back the stream exactly; otherwise an opaque directory may come back as
// one whiteout per entry of the parent, which is all a comparison of two
// mounted trees can see (Docker's naive diff does the same).
type NativeDiffer interface {
	NativeDiff() bool
}

type config struct {
	opts       drivers.Options
	init       InitFunc
	realMounts bool
	maxDepth   int
	deep       int
	refusals   []refusal
	skip       map[string]string
}

type refusal struct {
	name   string
	home   HomeFunc
	class  error
	reason string
}

// Option configures Run, Init and Bench.
type Option func(*config)

// WithOptions passes driver options (storage opts, a Mounter) to Init.
func WithOptions(o drivers.Options) Option { return func(c *config) { c.opts = o } }

// WithInit replaces drivers.Init(name, ...) for the driver under test.
func WithInit(fn InitFunc) Option { return func(c *config) { c.init = fn } }

// WithoutRealMounts skips every check that reads or writes through a
// mount or looks at the mount table.
func WithoutRealMounts() Option { return func(c *config) { c.realMounts = false } }

// WithMaxDepth says the driver refuses a layer with more than n lower
// layers with drivers.ErrMaxDepth; the deep-chain test builds a stack of
// exactly n and checks one more is refused.
func WithMaxDepth(n int) Option { return func(c *config) { c.maxDepth, c.deep = n, n } }

// WithDeepChain sets the depth of the deep-chain test (default 128; 0
// skips it).
func WithDeepChain(n int) Option { return func(c *config) { c.deep = n } }

// Skip skips the suite's test name for a known limitation of the driver,
// saying why in the test output.
func Skip(name, why string) Option {
	return func(c *config) {
		if c.skip == nil {
			c.skip = map[string]string{}
		}
		c.skip[name] = why
	}
}

// Refuses adds a host the driver's init must refuse: on homes made by
// home, Init must fail with a not-supported error of class (errors.Is)
// whose message contains reason.
func Refuses(name string, home HomeFunc, class error, reason string) Option {
	return func(c *config) { c.refusals = append(c.refusals, refusal{name, home, class, reason}) }
}

func newConfig(name string, opts []Option) *config {
	c := &config{realMounts: true, deep: 128}
	for _, o := range opts {
		o(c)
	}
	if c.init == nil {
		c.init = func(home string, o drivers.Options) (drivers.Driver, error) { return drivers.Init(name, home, o) }
	}
	return c
}

// OnFS makes one filesystem of kind (testutil.NewFS) for the calling test
// and returns a HomeFunc giving a fresh home on it for each subtest.
func OnFS(t testing.TB, kind string, sizeMiB int) HomeFunc {
	t.Helper()
	fs := testutil.NewFS(t, kind, sizeMiB)
	var mu sync.Mutex
	n := 0
	return func(t testing.TB) string {
		t.Helper()
		mu.Lock()
		n++
		root := filepath.Join(fs.Dir, fmt.Sprintf("data-root-%d", n))
		mu.Unlock()
		if err := os.Mkdir(root, 0o711); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(root, "driver")
	}
}

// Init initialises driver name in home for one test; when the test ends
// the driver is cleaned up and any mount it left below home is reported
// and removed.
func Init(t testing.TB, name, home string, opts ...Option) drivers.Driver {
	t.Helper()
	return newConfig(name, opts).initDriver(t, name, home)
}

func (c *config) initDriver(t testing.TB, name, home string) drivers.Driver {
	t.Helper()
	d, err := c.init(home, c.opts)
	if err != nil {
		t.Fatalf("init %s in %s: %v", name, home, err)
	}
	t.Cleanup(func() {
		if err := d.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
		if left := testutil.MountsUnder(home); len(left) > 0 {
			t.Errorf("mounts left below %s after Cleanup: %v", home, left)
			for _, m := range left {
				_ = mount.Unmount(m)
			}
		}
	})
	return d
}

// Run runs the conformance suite against driver name, each test in a
// fresh home from newHome.
func Run(t *testing.T, name string, newHome HomeFunc, opts ...Option) {
	testutil.RequiresRoot(t)
	c := newConfig(name, opts)
	s := &suite{c: c, name: name, newHome: newHome}
	tests := []struct {
		name     string
		fn       func(*testing.T, drivers.Driver, string)
		needsFS  bool // reads or writes through mounts
		skipWhen bool
	}{
		{"layers", s.testLayers, false, false},
		{"three-layer-chain", s.testChain, true, false},
		{"copy-up", s.testCopyUp, true, false},
		{"copy-up-hard-link", s.testHardLinkCopyUp, true, false},
		{"delete-and-rename", s.testDeleteRename, true, false},
		{"remove-frees-everything", s.testRemove, false, false},
		{"deep-chain", s.testDeep, true, c.deep == 0},
		{"double-put", s.testDoublePut, false, false},
		{"concurrent-get", s.testConcurrentGet, false, false},
		{"cleanup", s.testCleanup, false, false},
		{"diff-round-trip", s.testRoundTrip, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skipWhen {
				t.Skip("not configured for this driver")
			}
			if why, ok := c.skip[tc.name]; ok {
				t.Skipf("known limitation of %s: %s", name, why)
			}
			if tc.needsFS && !c.realMounts {
				t.Skip("needs real mounts, and the driver runs without them")
			}
			home := newHome(t)
			tc.fn(t, c.initDriver(t, name, home), home)
		})
	}
	for _, r := range c.refusals {
		t.Run("refuses/"+r.name, func(t *testing.T) { s.testRefusal(t, r) })
	}
}

type suite struct {
	c       *config
	name    string
	newHome HomeFunc
}

// apply makes layer id on parent from entries.
func apply(t testing.TB, d drivers.Driver, id, parent string, entries ...Entry) {
	t.Helper()
	if err := d.Create(id, parent); err != nil {
		t.Fatalf("Create(%q, %q): %v", id, parent, err)
	}
	if _, err := d.ApplyDiff(id, parent, Tar(t, entries...)); err != nil {
		t.Fatalf("ApplyDiff(%q, %q): %v", id, parent, err)
	}
}

func get(t testing.TB, d drivers.Driver, id string) string {
	t.Helper()
	p, err := d.Get(id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return p
}

func put(t testing.TB, d drivers.Driver, id string) {
	t.Helper()
	if err := d.Put(id); err != nil {
		t.Fatalf("Put(%q): %v", id, err)
	}
}

func (s *suite) testLayers(t *testing.T, d drivers.Driver, home string) {
	if d.Name() != s.name || d.Home() != home {
		t.Errorf("Name, Home = %q, %q; want %q, %q", d.Name(), d.Home(), s.name, home)
	}
	if d.Exists("base") {
		t.Fatal("Exists(base) before Create")
	}
	apply(t, d, "base", "", File("f", "x", 0o644))
	apply(t, d, "child", "base")
	for _, id := range []string{"base", "child"} {
		if !d.Exists(id) {
			t.Errorf("Exists(%q) = false after Create", id)
		}
	}
	if err := d.Create("base", ""); err == nil {
		t.Error("Create of an existing layer succeeded")
	}
	if err := d.Create("orphan", "no-such-parent"); !errors.Is(err, drivers.ErrLayerNotExist) {
		t.Errorf("Create on a missing parent = %v, want ErrLayerNotExist", err)
	}
	if d.Exists("orphan") {
		t.Error("a failed Create left the layer behind")
	}
	if _, err := d.Get("no-such-layer"); !errors.Is(err, drivers.ErrLayerNotExist) {
		t.Errorf("Get of a missing layer = %v, want ErrLayerNotExist", err)
	}
	for _, id := range []string{"child", "base"} {
		if err := d.Remove(id); err != nil {
			t.Fatalf("Remove(%q): %v", id, err)
		}
		if d.Exists(id) {
			t.Errorf("Exists(%q) after Remove", id)
		}
	}
}

// The three-layer chain: every layer's files, deletes and opaque
// directories as the top mount must show them.
var (
	layer1 = []Entry{
		Dir("etc", 0o755),
		File("etc/hostname", "l1-host", 0o644).WithXattr("user.origin", "l1"),
		File("etc/shadow", "secret", 0o640).Owned(0, 42),
		Dir("bin", 0o755),
		File("bin/tool", "tool-v1", 0o755),
		Hardlink("bin/tool2", "bin/tool"),
		Symlink("bin/sh", "tool"),
		Dir("data", 0o755),
		File("data/keep", "keep", 0o644),
		File("data/old", "old", 0o644),
		Dir("data/sub", 0o755),
		File("data/sub/deep", "deep", 0o644),
		Dir("home", 0o755),
		Dir("home/user", 0o700).Owned(1000, 1000),
		File("home/user/file", "u", 0o600).Owned(1000, 1000),
	}
	layer2 = []Entry{
		Dir("etc", 0o755),
		File("etc/hostname", "l2-host", 0o644),
		File("etc/l2", "from l2", 0o644),
		Dir("data", 0o755),
		Whiteout("data/old"),
	}
	layer3 = []Entry{
		Dir("data", 0o755),
		Dir("data/sub", 0o755),
		Opaque("data/sub"),
		File("data/sub/new", "new", 0o644),
		File("l3.txt", "l3", 0o644),
	}
	// chainView is what the top of the chain shows: path, then what is
	// there ("" for a directory, "-> target" for a symlink, or content).
	chainView = map[string]string{
		"bin": "", "bin/tool": "tool-v1", "bin/tool2": "tool-v1", "bin/sh": "-> tool",
		"data": "", "data/keep": "keep", "data/sub": "", "data/sub/new": "new",
		"etc": "", "etc/hostname": "l2-host", "etc/l2": "from l2", "etc/shadow": "secret",
		"home": "", "home/user": "", "home/user/file": "u", "l3.txt": "l3",
	}
)

func chain(t testing.TB, d drivers.Driver) {
	t.Helper()
	apply(t, d, "l1", "", layer1...)
	apply(t, d, "l2", "l1", layer2...)
	apply(t, d, "l3", "l2", layer3...)
}

// view reads the tree at root as path -> content ("" for directories,
// "-> target" for symlinks).
func view(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case fi.IsDir():
			out[rel] = ""
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "-> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(b)
		default:
			out[rel] = fi.Mode().Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", root, err)
	}
	return out
}

func diffViews(want, got map[string]string) []string {
	var d []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			d = append(d, "missing "+k)
		} else if g != v {
			d = append(d, fmt.Sprintf("%s = %q, want %q", k, g, v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, "unexpected "+k)
		}
	}
	sort.Strings(d)
	return d
}

func (s *suite) testChain(t *testing.T, d drivers.Driver, home string) {
	chain(t, d)
	top := get(t, d, "l3")
	defer put(t, d, "l3")
	for _, diff := range diffViews(chainView, view(t, top)) {
		t.Error(diff)
	}
	checks := []struct {
		path     string
		mode     os.FileMode
		uid, gid uint32
	}{
		{"etc/shadow", 0o640, 0, 42},
		{"home/user", os.ModeDir | 0o700, 1000, 1000},
		{"home/user/file", 0o600, 1000, 1000},
		{"bin/tool", 0o755, 0, 0},
	}
	for _, c := range checks {
		fi, err := os.Lstat(filepath.Join(top, c.path))
		if err != nil {
			t.Error(err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != c.mode || st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", c.path, fi.Mode(), st.Uid, st.Gid, c.mode, c.uid, c.gid)
		}
	}
	if v := getXattr(filepath.Join(top, "etc/shadow"), "user.origin"); v != "" {
		t.Errorf("etc/shadow has layer 1's xattr of another file: %q", v)
	}
	tool, err1 := os.Stat(filepath.Join(top, "bin/tool"))
	tool2, err2 := os.Stat(filepath.Join(top, "bin/tool2"))
	if err1 != nil || err2 != nil || !os.SameFile(tool, tool2) {
		t.Errorf("bin/tool2 is not a hard link of bin/tool (%v, %v)", err1, err2)
	}
	// Each layer below shows only itself and what is below it.
	mid := get(t, d, "l2")
	defer put(t, d, "l2")
	if _, err := os.Lstat(filepath.Join(mid, "l3.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("layer 2 shows layer 3's l3.txt (err %v)", err)
	}
	if b, err := os.ReadFile(filepath.Join(mid, "data/sub/deep")); err != nil || string(b) != "deep" {
		t.Errorf("layer 2's data/sub/deep = %q, %v; want layer 1's file, hidden only from layer 3 up", b, err)
	}
}

func getXattr(p, name string) string {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// snapshot describes a tree byte for byte: every path's type, mode,
// owner, size, content hash, link target and xattrs.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d %d", fi.Mode(), st.Uid, st.Gid, fi.Size())
		switch {
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x", h.Sum(nil))
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		}
		if x := getXattr(p, "user.origin"); x != "" {
			desc += " user.origin=" + x
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return out
}

// lowerSnapshots reads every layer of the chain through Get.
func lowerSnapshots(t testing.TB, d drivers.Driver) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, id := range []string{"l1", "l2", "l3"} {
		out[id] = snapshot(t, get(t, d, id))
		put(t, d, id)
	}
	return out
}

func compareSnapshots(t testing.TB, before, after map[string]map[string]string) {
	t.Helper()
	for id, b := range before {
		for _, diff := range diffViews(b, after[id]) {
			t.Errorf("layer %s changed: %s", id, diff)
		}
	}
}

func (s *suite) testCopyUp(t *testing.T, d drivers.Driver, home string) {
	chain(t, d)
	before := lowerSnapshots(t, d)
	if err := d.Create("ctr", "l3"); err != nil {
		t.Fatal(err)
	}
	root := get(t, d, "ctr")
	appendTo(t, filepath.Join(root, "home/user/file"), "+patched")
	if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("container"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "data/keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(root, "etc/shadow"), 7, 7); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"home/user/file": "u+patched", "etc/hostname": "container", "data/keep": "keep"}
	for p, w := range want {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != w {
			t.Errorf("%s through the container layer = %q, %v; want %q", p, b, err, w)
		}
	}
	put(t, d, "ctr")
	// The writes survive an unmount, and the layers below are untouched.
	root = get(t, d, "ctr")
	if b, _ := os.ReadFile(filepath.Join(root, "home/user/file")); string(b) != "u+patched" {
		t.Errorf("home/user/file after remount = %q", b)
	}
	if fi, err := os.Stat(filepath.Join(root, "data/keep")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("data/keep after remount: %v %v, want mode 0600", fi, err)
	}
	put(t, d, "ctr")
	compareSnapshots(t, before, lowerSnapshots(t, d))
}

func appendTo(t testing.TB, p, data string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// testHardLinkCopyUp writes to one name of a file that has two in a lower
// layer, after the other name was looked up: the write must land on the
// name written to. (The other name may keep the old content: overlay
// without its index breaks hard links on copy-up.)
func (s *suite) testHardLinkCopyUp(t *testing.T, d drivers.Driver, home string) {
	chain(t, d)
	before := lowerSnapshots(t, d)
	if err := d.Create("ctr", "l3"); err != nil {
		t.Fatal(err)
	}
	root := get(t, d, "ctr")
	for _, name := range []string{"bin/tool", "bin/tool2"} {
		if _, err := os.Stat(filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	appendTo(t, filepath.Join(root, "bin/tool"), "+patched")
	put(t, d, "ctr")
	root = get(t, d, "ctr")
	if b, err := os.ReadFile(filepath.Join(root, "bin/tool")); err != nil || string(b) != "tool-v1+patched" {
		t.Errorf("bin/tool after a write through it and a remount = %q, %v; want %q", b, err, "tool-v1+patched")
	}
	put(t, d, "ctr")
	compareSnapshots(t, before, lowerSnapshots(t, d))
}

func (s *suite) testDeleteRename(t *testing.T, d drivers.Driver, home string) {
	chain(t, d)
	before := lowerSnapshots(t, d)
	if err := d.Create("ctr", "l3"); err != nil {
		t.Fatal(err)
	}
	root := get(t, d, "ctr")
	p := func(rel string) string { return filepath.Join(root, rel) }
	steps := []struct {
		name string
		do   func() error
	}{
		{"delete a file layer 2 changed", func() error { return os.Remove(p("etc/hostname")) }},
		{"delete a directory of layer 1", func() error { return os.RemoveAll(p("bin")) }},
		{"rename a file of layer 1", func() error { return os.Rename(p("data/keep"), p("data/kept")) }},
		{"move a file of layer 2 to another directory", func() error { return os.Rename(p("etc/l2"), p("l2-moved")) }},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	// Renaming a lower directory needs overlay's redirect_dir; without it
	// the kernel says EXDEV and mv copies instead. Either is correct.
	dirRenamed := true
	if err := os.Rename(p("home/user"), p("home/moved")); err != nil {
		if !errors.Is(err, unix.EXDEV) {
			t.Fatalf("rename a directory of layer 1: %v", err)
		}
		dirRenamed = false
	}
	put(t, d, "ctr")

	want := map[string]string{}
	for k, v := range chainView {
		want[k] = v
	}
	for _, gone := range []string{"etc/hostname", "bin", "bin/tool", "bin/tool2", "bin/sh", "data/keep", "etc/l2"} {
		delete(want, gone)
	}
	want["data/kept"] = "keep"
	want["l2-moved"] = "from l2"
	if dirRenamed {
		delete(want, "home/user")
		delete(want, "home/user/file")
		want["home/moved"] = ""
		want["home/moved/file"] = "u"
	}
	root = get(t, d, "ctr")
	for _, diff := range diffViews(want, view(t, root)) {
		t.Errorf("after remount: %s", diff)
	}
	put(t, d, "ctr")
	compareSnapshots(t, before, lowerSnapshots(t, d))

	rc, err := d.Diff("ctr", "l3")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ReadTar(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		names[normName(e.Name)] = true
	}
	for _, n := range []string{"etc/.wh.hostname", ".wh.bin", "data/.wh.keep", "etc/.wh.l2", "data/kept", "l2-moved"} {
		if !names[n] {
			t.Errorf("Diff of the container layer lacks %s; it has %v", n, sortedKeys(names))
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// listTree lists every path below dir, for before/after comparisons.
func listTree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	return out
}

func (s *suite) testRemove(t *testing.T, d drivers.Driver, home string) {
	initial := listTree(t, home)
	chain(t, d)
	if err := d.Create("ctr", "l3"); err != nil {
		t.Fatal(err)
	}
	root := get(t, d, "ctr")
	if s.c.realMounts {
		if err := os.WriteFile(filepath.Join(root, "written"), []byte("w"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	get(t, d, "l3")
	put(t, d, "l3")
	put(t, d, "ctr")
	for _, id := range []string{"ctr", "l3", "l2", "l1"} {
		if err := d.Remove(id); err != nil {
			t.Fatalf("Remove(%q): %v", id, err)
		}
	}
	if got := listTree(t, home); strings.Join(got, "\n") != strings.Join(initial, "\n") {
		t.Errorf("home after removing every layer:\n%s\nwant what Init left:\n%s", strings.Join(got, "\n"), strings.Join(initial, "\n"))
	}
	if left := testutil.MountsUnder(home); len(left) > 0 {
		t.Errorf("mounts left after removing every layer: %v", left)
	}
}

func (s *suite) testDeep(t *testing.T, d drivers.Driver, home string) {
	n := s.c.deep
	var want = map[string]string{"layers": ""}
	prev := ""
	for i := 0; i <= n; i++ {
		id := fmt.Sprintf("deep-%d", i)
		name := fmt.Sprintf("layers/%03d", i)
		apply(t, d, id, prev, Dir("layers", 0o755), File(name, id, 0o644))
		want[name] = id
		prev = id
	}
	top := get(t, d, prev)
	for _, diff := range diffViews(want, view(t, top)) {
		t.Errorf("top of a %d-deep stack: %s", n, diff)
	}
	put(t, d, prev)
	if s.c.maxDepth > 0 {
		err := d.Create("too-deep", prev)
		if !errors.Is(err, drivers.ErrMaxDepth) {
			t.Errorf("Create on a layer with %d lowers = %v, want ErrMaxDepth", n, err)
		}
		if d.Exists("too-deep") {
			t.Error("a refused Create left the layer behind")
		}
	}
}

func (s *suite) testDoublePut(t *testing.T, d drivers.Driver, home string) {
	apply(t, d, "base", "", File("f", "x", 0o644))
	apply(t, d, "child", "base", File("g", "y", 0o644))
	for _, id := range []string{"base", "child"} {
		if err := d.Put(id); !errors.Is(err, drivers.ErrNotMounted) {
			t.Errorf("Put(%q) before any Get = %v, want ErrNotMounted", id, err)
		}
		get(t, d, id)
		put(t, d, id)
		if err := d.Put(id); !errors.Is(err, drivers.ErrNotMounted) {
			t.Errorf("second Put(%q) = %v, want ErrNotMounted", id, err)
		}
		// The layer still works after the refused Put.
		get(t, d, id)
		put(t, d, id)
	}
}

// mountsAt counts the mount table's entries at dir.
func mountsAt(t testing.TB, dir string) int {
	n := 0
	for _, m := range testutil.MountTable(t) {
		if m == dir {
			n++
		}
	}
	return n
}

func (s *suite) testConcurrentGet(t *testing.T, d drivers.Driver, home string) {
	apply(t, d, "base", "", File("f", "x", 0o644))
	apply(t, d, "child", "base", File("g", "y", 0o644))
	const n = 8
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = d.Get("child")
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Get %d: %v", i, errs[i])
		}
		if paths[i] != paths[0] {
			t.Errorf("Get %d returned %q, Get 0 %q", i, paths[i], paths[0])
		}
	}
	if s.c.realMounts {
		// One mount at most: drivers that never mount (vfs, btrfs) have
		// none, and a btrfs subvolume's own st_dev makes the device
		// number no sign of a mount. A driver that should have mounted
		// and did not fails the read below.
		if got := mountsAt(t, paths[0]); got > 1 {
			t.Errorf("%d mounts at %s while %d Gets hold it, want at most 1", got, paths[0], n)
		}
		if b, err := os.ReadFile(filepath.Join(paths[0], "f")); err != nil || string(b) != "x" {
			t.Errorf("read through the shared mount: %q, %v", b, err)
		}
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Put("child")
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Put %d: %v", i, errs[i])
		}
	}
	if got := mountsAt(t, paths[0]); got != 0 {
		t.Errorf("%d mounts at %s after the last Put", got, paths[0])
	}
	if err := d.Put("child"); !errors.Is(err, drivers.ErrNotMounted) {
		t.Errorf("Put after the last reference = %v, want ErrNotMounted", err)
	}
}

func (s *suite) testCleanup(t *testing.T, d drivers.Driver, home string) {
	chain(t, d)
	get(t, d, "l2")
	get(t, d, "l3")
	get(t, d, "l3")
	if err := d.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if left := testutil.MountsUnder(home); len(left) > 0 {
		t.Errorf("mounts left after Cleanup: %v", left)
	}
	for _, id := range []string{"l1", "l2", "l3"} {
		if !d.Exists(id) {
			t.Errorf("Cleanup removed layer %s", id)
		}
	}
	if s.c.realMounts {
		top := get(t, d, "l3")
		if b, err := os.ReadFile(filepath.Join(top, "l3.txt")); err != nil || string(b) != "l3" {
			t.Errorf("l3.txt after Cleanup and a new Get: %q, %v", b, err)
		}
		put(t, d, "l3")
	}
}

// capV2 is a valid security.capability value (revision 2, effective,
// cap_net_raw permitted); the kernel checks the format.
var capV2 = string([]byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

func (s *suite) testRoundTrip(t *testing.T, d drivers.Driver, home string) {
	parent := []Entry{
		Dir("d", 0o755),
		File("d/gone", "g", 0o644),
		File("d/keep", "k", 0o644),
		Dir("o", 0o755),
		File("o/a", "a", 0o644),
		File("o/b", "b", 0o644),
	}
	opaque := Opaque("o")
	opaque.Mode = 0o755
	stream := []Entry{
		Dir("d", 0o755),
		Whiteout("d/gone"),
		File("d/new", "new", 0o640).Owned(1000, 1001).WithXattr("user.color", "blue"),
		Dir("n", 0o700).Owned(1, 1).WithXattr("user.dir", "1"),
		File("n/cap", "ping", 0o755).WithXattr("security.capability", capV2),
		Entry{Name: "n/fifo", Type: tar.TypeFifo, Mode: 0o600, ModTime: Epoch},
		Hardlink("n/hard", "d/new"),
		Symlink("n/link", "../d/new"),
		Entry{Name: "n/null", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 3, ModTime: Epoch},
		File("n/suid", "su", 0o4755),
		Dir("o", 0o755),
		opaque,
		File("o/c", "c", 0o644),
	}
	apply(t, d, "parent", "", parent...)
	apply(t, d, "layer", "parent", stream...)
	rc, err := d.Diff("layer", "parent")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadTar(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	native := false
	if nd, ok := d.(NativeDiffer); ok {
		native = nd.NativeDiff()
	}
	if !native {
		got = foldOpaque(got, "o", []string{"a", "b"})
	}
	for _, diff := range CompareEntries(stream, got) {
		t.Error(diff)
	}
	if t.Failed() {
		for _, e := range got {
			t.Logf("got %s", describe(e))
		}
	}
	// And back: the stream applied to a new layer on the same parent
	// gives a layer whose Diff is the same again.
	b, err := TarBytes(got...)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Create("again", "parent"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ApplyDiff("again", "parent", strings.NewReader(string(b))); err != nil {
		t.Fatal(err)
	}
	rc, err = d.Diff("again", "parent")
	if err != nil {
		t.Fatal(err)
	}
	again, err := ReadTar(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !native {
		again = foldOpaque(again, "o", []string{"a", "b"})
	}
	for _, diff := range CompareEntries(stream, again) {
		t.Errorf("second round: %s", diff)
	}
}

// foldOpaque turns the naive diff's form of an opaque directory (one
// whiteout per entry the parent has there) back into the marker, when
// exactly those whiteouts are present.
func foldOpaque(es []Entry, dir string, parentEntries []string) []Entry {
	wh := map[string]bool{}
	for _, n := range parentEntries {
		wh[normName(dir+"/.wh."+n)] = true
	}
	var out []Entry
	found := 0
	for _, e := range es {
		if normName(e.Name) == normName(dir+"/.wh..wh..opq") {
			return es // the marker itself is there
		}
		if wh[normName(e.Name)] {
			found++
			continue
		}
		out = append(out, e)
	}
	if found != len(parentEntries) {
		return es
	}
	return append(out, Opaque(dir))
}

func (s *suite) testRefusal(t *testing.T, r refusal) {
	home := r.home(t)
	parent := filepath.Dir(home)
	before := listTree(t, parent)
	d, err := s.c.init(home, s.c.opts)
	if err == nil {
		d.Cleanup()
		t.Fatalf("init %s in %s succeeded, want a %v error saying %q", s.name, home, r.class, r.reason)
	}
	if !drivers.IsNotSupported(err) || !errors.Is(err, r.class) {
		t.Errorf("init error %q is not of the not-supported class %v", err, r.class)
	}
	if !strings.Contains(err.Error(), r.reason) {
		t.Errorf("init error %q does not say %q", err, r.reason)
	}
	if after := listTree(t, parent); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("a refused init left files behind: %v (before: %v)", after, before)
	}
}
