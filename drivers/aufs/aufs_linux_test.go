package aufs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/drivertest"
	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/internal/testutil"
)

// call is one mount(2) or umount2(2) the driver asked for.
type call struct {
	Op     string // "mount" or "unmount"
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
}

func (c call) String() string {
	return fmt.Sprintf("%s(%q, %q, %q, %#x, %q)", c.Op, c.Source, c.Target, c.FSType, c.Flags, c.Data)
}

// recorder is a drivers.Mounter that records every call and mounts
// nothing; fail, when set, decides a call's error.
type recorder struct {
	mu    sync.Mutex
	calls []call
	fail  func(c call, n int) error // n: index of the call
}

func (r *recorder) do(c call) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
	if r.fail != nil {
		return r.fail(c, len(r.calls)-1)
	}
	return nil
}

func (r *recorder) Mount(source, target, fstype string, flags uintptr, data string) error {
	return r.do(call{"mount", source, target, fstype, flags, data})
}

func (r *recorder) Unmount(target string, flags int) error {
	return r.do(call{Op: "unmount", Target: target, Flags: uintptr(flags)})
}

// take returns the calls so far and forgets them.
func (r *recorder) take() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// refuseDirperm1 fails the dirperm1 test mount as aufs before 3.18 does.
func refuseDirperm1(c call, _ int) error {
	if c.Op == "mount" && strings.Contains(c.Data, ",dirperm1,") && strings.HasPrefix(c.Data, "br:") && !strings.Contains(c.Data, "=rw") {
		return unix.EINVAL
	}
	return nil
}

// fakeProc writes a proc directory: filesystems, optionally modules, and
// self/uid_map.
func fakeProc(t testing.TB, filesystems string, modules bool, uidMap string) string {
	t.Helper()
	dir := t.TempDir()
	if filesystems != "" {
		must(t, os.WriteFile(filepath.Join(dir, "filesystems"), []byte(filesystems), 0o644))
	}
	if modules {
		must(t, os.WriteFile(filepath.Join(dir, "modules"), []byte("overlay 151552 0 - Live 0x0\n"), 0o644))
	}
	must(t, os.MkdirAll(filepath.Join(dir, "self"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "self", "uid_map"), []byte(uidMap), 0o644))
	return dir
}

const (
	initUIDMap     = "         0          0 4294967295\n"
	withAufs       = "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\nnodev\taufs\n"
	withoutAufs    = "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n"
	testPageSize   = 4096
	homeLen        = 125
	dirperm1Suffix = ",dirperm1"
)

func fakeStatfs(name string, magic int64) func(string) (string, int64, error) {
	return func(string) (string, int64, error) { return name, magic, nil }
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newTestDriver initialises the driver in home as on a kernel with aufs
// built in and an ext4 data-root, mounting through rec.
func newTestDriver(t testing.TB, home string, rec *recorder) *Driver {
	t.Helper()
	h := host{proc: fakeProc(t, withAufs, false, initUIDMap), statfs: fakeStatfs("extfs", 0xEF53), pageSize: testPageSize}
	d, err := newDriver(home, drivers.Options{Mounter: rec}, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Cleanup() })
	return d
}

// fixedHome returns a home path exactly homeLen bytes long, so that the
// mount data of a stack has a known size.
func fixedHome(t testing.TB) string {
	t.Helper()
	base := t.TempDir()
	if len(base)+2 > homeLen {
		t.Fatalf("temporary directory %s is too long for a %d-byte home", base, homeLen)
	}
	home := base + "/" + strings.Repeat("h", homeLen-len(base)-1)
	if len(home) != homeLen {
		t.Fatalf("home is %d bytes", len(home))
	}
	return home
}

// layerID is a 64-hex-digit id like dockerd's.
func layerID(i int) string {
	s := sha256.Sum256([]byte(fmt.Sprintf("layer-%d", i)))
	return hex.EncodeToString(s[:])
}

// stack creates n layers, each on the one before, and returns their ids,
// the base first.
func stack(t testing.TB, d *Driver, n int) []string {
	t.Helper()
	var ids []string
	parent := ""
	for i := range n {
		id := layerID(i)
		must(t, d.Create(id, parent))
		ids = append(ids, id)
		parent = id
	}
	return ids
}

// TestMountCalls checks the exact mount(2) calls for stacks of layers.
//
// With a 125-byte home and 64-byte ids, every diff path is 125+6+64 = 195
// bytes, so the rw branch "br:<path>=rw" takes 201 bytes, each ro branch
// ":<path>=ro+wh" 202, and each appended "append:<path>=ro+wh," 209. A page
// of 4096 bytes less dockerd's 54 bytes of room for the options leaves
// 4042 bytes: 201+19*202 = 4039 fits 19 ro branches in the first mount.
// With dirperm1, 9 more bytes are kept (4033), and only 18 fit. Each
// remount takes floor(4042/209) = floor(4033/209) = 19 branches.
func TestMountCalls(t *testing.T) {
	tests := []struct {
		name     string
		layers   int
		dirperm1 bool
		first    int   // ro branches in the first mount
		appends  []int // ro branches appended by each remount
	}{
		{name: "1 layer is not mounted", layers: 1, dirperm1: true},
		{name: "2 layers", layers: 2, dirperm1: true, first: 1},
		{name: "40 layers", layers: 40, dirperm1: true, first: 18, appends: []int{19, 2}},
		{name: "40 layers without dirperm1", layers: 40, first: 19, appends: []int{19, 1}},
		{name: "127 layers", layers: 127, dirperm1: true, first: 18, appends: []int{19, 19, 19, 19, 19, 13}},
		{name: "127 layers without dirperm1", layers: 127, first: 19, appends: []int{19, 19, 19, 19, 19, 12}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			if !tt.dirperm1 {
				rec.fail = refuseDirperm1
			}
			home := fixedHome(t)
			d := newTestDriver(t, home, rec)
			rec.take() // the dirperm1 test mount, checked in TestDirperm1Probe
			ids := stack(t, d, tt.layers)
			top := ids[len(ids)-1]
			diff := func(id string) string { return home + "/diff/" + id }
			if len(diff(top)) != 195 {
				t.Fatalf("diff path is %d bytes, the expectations assume 195", len(diff(top)))
			}

			path, err := d.Get(top)
			must(t, err)

			// The parents, nearest first, as layers/<top> lists them.
			var ro []string
			for i := len(ids) - 2; i >= 0; i-- {
				ro = append(ro, diff(ids[i]))
			}
			var want []call
			if tt.layers > 1 {
				if path != home+"/mnt/"+top {
					t.Errorf("Get returned %s, want the mount point %s/mnt/<id>", path, home)
				}
				data := "br:" + diff(top) + "=rw"
				for _, p := range ro[:tt.first] {
					data += ":" + p + "=ro+wh"
				}
				data += ",dio,xino=/dev/shm/aufs.xino"
				if tt.dirperm1 {
					data += dirperm1Suffix
				}
				want = append(want, call{"mount", "none", path, "aufs", 0, data})
				next := tt.first
				for _, n := range tt.appends {
					data := ""
					for _, p := range ro[next : next+n] {
						data += "append:" + p + "=ro+wh,"
					}
					next += n
					want = append(want, call{"mount", "none", path, "aufs", unix.MS_REMOUNT, data})
				}
				if next != len(ro) {
					t.Fatalf("the test's batches cover %d of %d parents", next, len(ro))
				}
			} else if path != diff(top) {
				t.Errorf("Get of a base layer returned %s, want its diff directory %s", path, diff(top))
			}
			got := rec.take()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("mount calls:\n%s\nwant:\n%s", calls(got), calls(want))
			}
			for _, c := range got {
				if len(c.Data) >= testPageSize {
					t.Errorf("%d bytes of mount data, more than a page less its NUL", len(c.Data))
				}
			}

			// A second Get shares the mount; the last Put unmounts.
			_, err = d.Get(top)
			must(t, err)
			must(t, d.Put(top))
			if c := rec.take(); len(c) != 0 {
				t.Errorf("a second Get and one Put made calls: %s", calls(c))
			}
			must(t, d.Put(top))
			want = nil
			if tt.layers > 1 {
				want = []call{{Op: "unmount", Target: path, Flags: unix.MNT_DETACH}}
			}
			if got := rec.take(); !reflect.DeepEqual(got, want) {
				t.Errorf("last Put: %s, want %s", calls(got), calls(want))
			}
		})
	}
}

func calls(cs []call) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString("  " + c.String() + "\n")
	}
	return b.String()
}

func TestDirperm1Probe(t *testing.T) {
	tests := []struct {
		name string
		fail func(call, int) error
		want bool
	}{
		{name: "supported", want: true},
		{name: "refused", fail: refuseDirperm1, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{fail: tt.fail}
			home := filepath.Join(t.TempDir(), "aufs")
			d := newTestDriver(t, home, rec)
			got := rec.take()
			if len(got) == 0 {
				t.Fatal("Init made no test mount")
			}
			m := got[0]
			union := m.Target
			base := strings.TrimSuffix(strings.TrimPrefix(m.Data, "br:"), ",dirperm1,xino=/dev/shm/aufs.xino")
			if m.Op != "mount" || m.Source != "none" || m.FSType != "aufs" || m.Flags != 0 ||
				!strings.HasPrefix(filepath.Base(union), ".dirperm1-union-") || !strings.HasPrefix(filepath.Base(base), ".dirperm1-base-") ||
				m.Data != "br:"+base+",dirperm1,xino=/dev/shm/aufs.xino" {
				t.Errorf("test mount %s, want mount(\"none\", <union>, \"aufs\", 0, \"br:<base>,dirperm1,xino=/dev/shm/aufs.xino\")", m)
			}
			var want []call
			if tt.want {
				want = []call{{Op: "unmount", Target: union, Flags: unix.MNT_DETACH}}
			}
			if rest := got[1:]; len(rest) != len(want) || (len(want) > 0 && !reflect.DeepEqual(rest, want)) {
				t.Errorf("after the test mount: %s, want %s", calls(got[1:]), calls(want))
			}
			for _, p := range []string{union, base} {
				if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind after the test mount (%v)", p, err)
				}
			}
			row := [2]string{"Dirperm1 Supported", fmt.Sprint(tt.want)}
			if st := d.Status(); st[3] != row {
				t.Errorf("Status() = %q, want row %q", st, row)
			}
		})
	}
}

func TestInitRefusals(t *testing.T) {
	tests := []struct {
		name        string
		filesystems string
		modules     bool
		uidMap      string
		fs          string
		magic       int64
		opts        []string
		class       error  // nil: not of the not-supported class
		want        string // substring of the error
	}{
		{name: "no aufs, no module support", filesystems: withoutAufs, class: drivers.ErrNotSupported,
			want: "aufs: driver not supported: aufs is not in PROC/filesystems (this kernel has no loadable module support (no PROC/modules), so `modprobe aufs` cannot add it"},
		{name: "no aufs, module not loaded", filesystems: withoutAufs, modules: true, class: drivers.ErrNotSupported,
			want: "aufs is not in PROC/filesystems (load it with `modprobe aufs`"},
		{name: "aufs as a substring of another name only", filesystems: "nodev\tnotaufs2\n", class: drivers.ErrNotSupported,
			want: "aufs is not in PROC/filesystems"},
		{name: "no /proc/filesystems", class: drivers.ErrNotSupported,
			want: "cannot tell whether the kernel has aufs"},
		{name: "user namespace", filesystems: withAufs, uidMap: "0 100000 65536\n", class: drivers.ErrNotSupported,
			want: "aufs cannot be mounted in a user namespace"},
		{name: "on aufs", filesystems: withAufs, fs: "aufs", magic: 0x61756673, class: drivers.ErrIncompatibleFS,
			want: "aufs: backing file system is unsupported for this graph driver: aufs cannot use a aufs data-root"},
		{name: "on btrfs", filesystems: withAufs, fs: "btrfs", magic: 0x9123683E, class: drivers.ErrIncompatibleFS,
			want: "aufs cannot use a btrfs data-root"},
		{name: "on ecryptfs", filesystems: withAufs, fs: "ecryptfs", magic: 0xF15F, class: drivers.ErrIncompatibleFS,
			want: "aufs cannot use a ecryptfs data-root"},
		{name: "storage option", filesystems: withAufs, opts: []string{"aufs.mountopt=x"},
			want: `parse aufs storage option "aufs.mountopt=x": aufs takes no storage options`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.uidMap == "" {
				tt.uidMap = initUIDMap
			}
			if tt.fs == "" {
				tt.fs, tt.magic = "extfs", 0xEF53
			}
			proc := fakeProc(t, tt.filesystems, tt.modules, tt.uidMap)
			home := filepath.Join(t.TempDir(), "aufs")
			h := host{proc: proc, statfs: fakeStatfs(tt.fs, tt.magic), pageSize: testPageSize}
			_, err := newDriver(home, drivers.Options{Mounter: &recorder{}, StorageOpts: tt.opts}, h)
			if err == nil {
				t.Fatal("init succeeded")
			}
			if want := strings.ReplaceAll(tt.want, "PROC", proc); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q\ndoes not contain %q", err, want)
			}
			if tt.class != nil && !errors.Is(err, tt.class) {
				t.Errorf("error %q is not %v", err, tt.class)
			}
			if tt.class == nil && drivers.IsNotSupported(err) {
				t.Errorf("error %q is of the not-supported class; dockerd stops on it", err)
			}
			if _, err := os.Lstat(home); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused init made %s", home)
			}
		})
	}
}

// TestInitLiveHost initialises the driver against this machine's kernel:
// it must succeed exactly when aufs is in /proc/filesystems, and say why
// not otherwise.
func TestInitLiveHost(t *testing.T) {
	fsList, err := os.ReadFile("/proc/filesystems")
	must(t, err)
	hasAufs := false
	for _, line := range strings.Split(string(fsList), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == "aufs" {
			hasAufs = true
		}
	}
	home := filepath.Join(t.TempDir(), "aufs")
	d, err := Init(home, drivers.Options{Mounter: &recorder{}})
	if hasAufs {
		if err != nil {
			t.Fatalf("aufs is in /proc/filesystems, but Init failed: %v", err)
		}
		d.Cleanup()
		return
	}
	if !errors.Is(err, drivers.ErrNotSupported) || !strings.Contains(err.Error(), "aufs is not in /proc/filesystems") {
		t.Fatalf("Init on a kernel without aufs: %v, want driver not supported, naming /proc/filesystems", err)
	}
	if _, serr := os.Stat("/proc/modules"); errors.Is(serr, os.ErrNotExist) && !strings.Contains(err.Error(), "no loadable module support") {
		t.Errorf("the kernel has no /proc/modules, and the error does not say modprobe cannot help: %v", err)
	}
}

func TestLayout(t *testing.T) {
	rec := &recorder{}
	home := filepath.Join(t.TempDir(), "aufs")
	d := newTestDriver(t, home, rec)
	for _, sub := range []string{"", "mnt", "diff", "layers"} {
		st, err := os.Stat(filepath.Join(home, sub))
		must(t, err)
		if st.Mode().Perm() != 0o710 {
			t.Errorf("%s/%s: mode %v, want 0710", home, sub, st.Mode().Perm())
		}
	}
	must(t, d.Create("a", ""))
	must(t, d.Create("b", "a"))
	must(t, d.Create("c", "b"))
	for id, want := range map[string]string{"a": "", "b": "a\n", "c": "b\na\n"} {
		got, err := os.ReadFile(filepath.Join(home, "layers", id))
		must(t, err)
		if string(got) != want {
			t.Errorf("layers/%s = %q, want %q", id, got, want)
		}
		for _, sub := range []string{"diff", "mnt"} {
			if st, err := os.Stat(filepath.Join(home, sub, id)); err != nil || !st.IsDir() {
				t.Errorf("%s/%s: %v", sub, id, err)
			}
		}
	}
	wantStatus := [][2]string{{"Root Dir", home}, {"Backing Filesystem", "extfs"}, {"Dirs", "3"}, {"Dirperm1 Supported", "true"}}
	if got := d.Status(); !reflect.DeepEqual(got, wantStatus) {
		t.Errorf("Status() = %q, want %q", got, wantStatus)
	}
	must(t, d.Remove("c"))
	for _, p := range []string{"layers/c", "diff/c", "mnt/c", "diff/c-removing", "mnt/c-removing"} {
		if _, err := os.Lstat(filepath.Join(home, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after Remove (%v)", p, err)
		}
	}

	// A crash during a removal leaves <id>-removing; the next Init
	// finishes the job.
	must(t, os.MkdirAll(filepath.Join(home, "diff", "x-removing", "sub"), 0o755))
	newTestDriver(t, home, rec)
	if _, err := os.Lstat(filepath.Join(home, "diff", "x-removing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Init left a stale diff/x-removing (%v)", err)
	}
}

func TestMaxBranches(t *testing.T) {
	d := newTestDriver(t, filepath.Join(t.TempDir(), "aufs"), &recorder{})
	ids := stack(t, d, maxBranches)
	err := d.Create("one-too-many", ids[len(ids)-1])
	if !errors.Is(err, drivers.ErrMaxDepth) || !strings.Contains(err.Error(), "aufs mounts at most 127 branches, and the layer would need 128") {
		t.Fatalf("Create of a 128th layer: %v, want ErrMaxDepth naming the limit", err)
	}
	if d.Exists("one-too-many") {
		t.Error("the refused layer exists")
	}
	for _, sub := range []string{"diff", "mnt"} {
		if _, err := os.Lstat(filepath.Join(d.home, sub, "one-too-many")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the refused layer left %s/one-too-many", sub)
		}
	}
}

func TestMountFailure(t *testing.T) {
	boom := errors.New("injected failure")
	tests := []struct {
		name    string
		failAt  int // index of the failing call after Init
		wantOp  string
		wantOps []string // calls made, in order
	}{
		{name: "first mount", failAt: 0, wantOp: "mount", wantOps: []string{"mount"}},
		{name: "second remount", failAt: 2, wantOp: "remount", wantOps: []string{"mount", "mount", "mount", "unmount"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			d := newTestDriver(t, fixedHome(t), rec)
			rec.take()
			ids := stack(t, d, 127)
			top := ids[len(ids)-1]
			rec.fail = func(c call, n int) error {
				if n == tt.failAt {
					return boom
				}
				return nil
			}
			_, err := d.Get(top)
			var me *hostsys.MountError
			if !errors.As(err, &me) || me.Op != tt.wantOp || !errors.Is(err, boom) || me.Target != d.mntDir(top) {
				t.Fatalf("Get with a failing %s: %v, want a mount error of op %q on %s", tt.name, err, tt.wantOp, d.mntDir(top))
			}
			var ops []string
			for _, c := range rec.take() {
				ops = append(ops, c.Op)
			}
			if !reflect.DeepEqual(ops, tt.wantOps) {
				t.Errorf("calls %v, want %v", ops, tt.wantOps)
			}
			if err := d.Put(top); !errors.Is(err, drivers.ErrNotMounted) {
				t.Errorf("Put after a failed Get: %v, want ErrNotMounted", err)
			}
			must(t, d.Cleanup())
			if c := rec.take(); len(c) != 0 {
				t.Errorf("Cleanup after a failed Get made calls: %s", calls(c))
			}
		})
	}
}

func TestConcurrentGetMountsOnce(t *testing.T) {
	rec := &recorder{}
	d := newTestDriver(t, filepath.Join(t.TempDir(), "aufs"), rec)
	ids := stack(t, d, 3)
	rec.take()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := d.Get(ids[2]); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := rec.take(); len(got) != 1 || got[0].Op != "mount" {
		t.Errorf("8 concurrent Gets made %s, want one mount", calls(got))
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.Put(ids[2]); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := rec.take(); len(got) != 1 || got[0].Op != "unmount" {
		t.Errorf("8 Puts made %s, want one unmount", calls(got))
	}
}

func TestCleanupUnmountsAll(t *testing.T) {
	rec := &recorder{}
	d := newTestDriver(t, filepath.Join(t.TempDir(), "aufs"), rec)
	ids := stack(t, d, 3)
	for _, id := range ids {
		_, err := d.Get(id)
		must(t, err)
	}
	_, err := d.Get(ids[2])
	must(t, err)
	rec.take()
	must(t, d.Cleanup())
	var got []string
	for _, c := range rec.take() {
		if c.Op != "unmount" || c.Flags != unix.MNT_DETACH {
			t.Errorf("Cleanup made %s", c)
		}
		got = append(got, c.Target)
	}
	sort.Strings(got)
	want := []string{d.mntDir(ids[1]), d.mntDir(ids[2])}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Cleanup unmounted %v, want the two mounted layers %v (the base is never mounted)", got, want)
	}
	if err := d.Put(ids[2]); !errors.Is(err, drivers.ErrNotMounted) {
		t.Errorf("Put after Cleanup: %v, want ErrNotMounted", err)
	}
}

// TestWhiteoutsStayOnDisk checks that a layer's diff keeps the stream's
// aufs whiteouts as files: that is aufs's own form.
func TestWhiteoutsStayOnDisk(t *testing.T) {
	testutil.RequiresRoot(t) // applying a layer chowns its files
	d := newTestDriver(t, filepath.Join(t.TempDir(), "aufs"), &recorder{})
	must(t, d.Create("base", ""))
	_, err := d.ApplyDiff("base", "", drivertest.Tar(t, drivertest.Dir("d", 0o755), drivertest.File("d/f", "x", 0o644), drivertest.File("g", "y", 0o644)))
	must(t, err)
	must(t, d.Create("top", "base"))
	_, err = d.ApplyDiff("top", "base", drivertest.Tar(t, drivertest.Dir("d", 0o755), drivertest.Opaque("d"), drivertest.Whiteout("g")))
	must(t, err)
	for _, p := range []string{".wh.g", "d/.wh..wh..opq"} {
		st, err := os.Lstat(filepath.Join(d.diffDir("top"), p))
		if err != nil || !st.Mode().IsRegular() {
			t.Errorf("diff/top/%s: %v, %v; want the whiteout kept as a file", p, st, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(d.diffDir("base"), "g")); err != nil {
		t.Errorf("the whiteout deleted the parent's file: %v", err)
	}
}

func TestConformance(t *testing.T) {
	testutil.RequiresRoot(t)
	proc := fakeProc(t, withAufs, false, initUIDMap)
	initFake := func(home string, opts drivers.Options) (drivers.Driver, error) {
		h := liveHost()
		h.proc = proc
		return newDriver(home, drivers.Options{Mounter: &recorder{}, StorageOpts: opts.StorageOpts}, h)
	}
	drivertest.Run(t, Name, drivertest.OnFS(t, testutil.Ext4, 0),
		drivertest.WithInit(initFake),
		drivertest.WithoutRealMounts(),
		drivertest.WithMaxDepth(maxBranches-1),
		drivertest.Refuses("btrfs", drivertest.OnFS(t, testutil.Btrfs, 0), drivers.ErrIncompatibleFS, "aufs cannot use a btrfs data-root"),
	)
}

// TestConformanceRealKernel runs the whole suite with real mounts on a
// kernel that has aufs.
func TestConformanceRealKernel(t *testing.T) {
	testutil.RequiresRoot(t)
	if err := checkKernel("/proc"); err != nil {
		t.Skipf("no real aufs mounts on this kernel: %v", err)
	}
	// Docker's usual branch filesystems (aufs refuses btrfs).
	for _, kind := range []string{testutil.Ext4, testutil.XFS} {
		t.Run(kind, func(t *testing.T) {
			drivertest.Run(t, Name, drivertest.OnFS(t, kind, 0), drivertest.WithMaxDepth(maxBranches-1))
		})
	}
}

// TestRealKernelMountOptions checks, on a kernel with aufs, that a layer
// deeper than a page of branch options is mounted as dockerd mounts it:
// br: with the first page, then MS_REMOUNT append: for the rest, with dio,
// the xino file on /dev/shm and dirperm1 where aufs takes it.
func TestRealKernelMountOptions(t *testing.T) {
	testutil.RequiresRoot(t)
	if err := checkKernel("/proc"); err != nil {
		t.Skipf("no real aufs mounts on this kernel: %v", err)
	}
	for _, kind := range []string{testutil.Ext4, testutil.XFS} {
		t.Run(kind, func(t *testing.T) {
			home := drivertest.OnFS(t, kind, 0)(t)
			dd, err := Init(home, drivers.Options{})
			if err != nil {
				t.Fatal(err)
			}
			d := dd.(*Driver)
			t.Cleanup(func() { d.Cleanup() })
			// Docker's 64-hex layer ids: about 100 bytes of options per
			// branch, so 60 layers take more than one 4 KiB page.
			const depth = 60
			parent := ""
			var ids []string
			for i := 0; i < depth; i++ {
				id := fmt.Sprintf("%064x", i+1)
				must(t, d.Create(id, parent))
				must(t, os.WriteFile(filepath.Join(d.diffDir(id), fmt.Sprintf("f%d", i)), []byte(id), 0o644))
				ids = append(ids, id)
				parent = id
			}
			var ro []string
			for i := depth - 2; i >= 0; i-- {
				ro = append(ro, d.diffDir(ids[i]))
			}
			_, appends, err := mountData(d.diffDir(parent), ro, d.dirperm1, os.Getpagesize())
			if err != nil {
				t.Fatal(err)
			}
			mnt, err := d.Get(parent)
			must(t, err)
			defer d.Put(parent)
			// The last aufs mount on mnt: it shadows any earlier one.
			mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
				return m.Mountpoint != mnt || m.FSType != "aufs", false
			})
			must(t, err)
			if len(mounts) == 0 {
				t.Fatalf("no aufs mount on %s in mountinfo", mnt)
			}
			// aufs's own options are the superblock's.
			opts := mounts[len(mounts)-1].VFSOptions
			want := []string{"dio"}
			if d.dirperm1 {
				want = append(want, "dirperm1")
			}
			for _, w := range want {
				if !slices.Contains(strings.Split(opts, ","), w) {
					t.Errorf("aufs mount options lack %s: %s", w, opts)
				}
			}
			// Every layer is a branch: files of the bottom and top layers
			// show through, so the append: remounts took effect.
			for _, i := range []int{0, depth / 2, depth - 1} {
				data, err := os.ReadFile(filepath.Join(mnt, fmt.Sprintf("f%d", i)))
				if err != nil || string(data) != ids[i] {
					t.Errorf("layer %d through the union: %q, %v", i, data, err)
				}
			}
			si := ""
			for _, o := range strings.Split(opts, ",") {
				if v, ok := strings.CutPrefix(o, "si="); ok {
					si = v
				}
			}
			if si == "" {
				t.Fatalf("no si= in the aufs mount options: %s", opts)
			}
			brs, _ := filepath.Glob("/sys/fs/aufs/si_" + si + "/br[0-9]*")
			if len(brs) != depth {
				t.Errorf("aufs si_%s has %d branches, want %d", si, len(brs), depth)
			}
			// mountinfo does not show the xino file; aufs's sysfs does.
			xi, err := os.ReadFile("/sys/fs/aufs/si_" + si + "/xi_path")
			if err != nil || strings.TrimSpace(string(xi)) != "/dev/shm/aufs.xino" {
				t.Errorf("aufs xino file %q (%v), want /dev/shm/aufs.xino", strings.TrimSpace(string(xi)), err)
			}
			t.Logf("%d branches through %d append: remount(s); options: %s", depth, len(appends), opts)
			if len(appends) == 0 {
				t.Errorf("%d branches fit one page: the test does not reach the append: path", depth)
			}
		})
	}
}

// TestOpenDockerLayers opens, with graphprobe's driver, the layers a real
// dockerd 20.10 made with storage-driver aufs: every layer mounts, and the
// imported image's file shows through the container's layer. It runs where
// GRAPHPROBE_AUFS_DOCKER_HOME names such a home (the aufs kernel's VM).
func TestOpenDockerLayers(t *testing.T) {
	home := os.Getenv("GRAPHPROBE_AUFS_DOCKER_HOME")
	if home == "" {
		t.Skip("GRAPHPROBE_AUFS_DOCKER_HOME not set: no layers of a real dockerd here")
	}
	testutil.RequiresRoot(t)
	dd, err := Init(home, drivers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := dd.(*Driver)
	defer d.Cleanup()
	entries, err := os.ReadDir(filepath.Join(home, "layers"))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, e := range entries {
		id := e.Name()
		if !d.Exists(id) {
			t.Errorf("layer %s listed in layers/ but not found by the driver", id)
			continue
		}
		mnt, err := d.Get(id)
		if err != nil {
			t.Errorf("Get(%s): %v", id, err)
			continue
		}
		if _, err := os.Stat(filepath.Join(mnt, "bin", "busybox")); err == nil {
			found++
		}
		must(t, d.Put(id))
	}
	t.Logf("%d dockerd layers opened, %d show the imported bin/busybox", len(entries), found)
	if len(entries) < 2 || found < 2 {
		t.Errorf("want the image layer and the container's layers with bin/busybox; got %d layers, %d with it", len(entries), found)
	}
}
