package overlay2

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/graphprobe/graphprobe/drivers"
	dt "github.com/graphprobe/graphprobe/drivers/drivertest"
	"github.com/graphprobe/graphprobe/drivers/internal/ovl"
	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"github.com/graphprobe/graphprobe/version"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

func onFS(kind string) dt.HomeFunc {
	return func(t testing.TB) string { return dt.OnFS(t, kind, 0)(t) }
}

func TestConformance(t *testing.T) {
	testutil.RequiresRoot(t)
	dt.Run(t, Name, dt.OnFS(t, testutil.Ext4, 512),
		dt.WithMaxDepth(ovl.MaxDepth),
		dt.Refuses("data-root on overlayfs", onFS(testutil.Overlay), drivers.ErrIncompatibleFS, "is on overlayfs, which overlay2 does not support"),
		dt.Refuses("ext4 without d_type", onFS(testutil.Ext4NoDType), drivers.ErrNotSupported, "formatted without d_type support"),
		dt.Refuses("ext4 without d_type: remedy", onFS(testutil.Ext4NoDType), drivers.ErrNotSupported, "tune2fs -O filetype"),
	)
}

// TestConformanceNaiveDiff runs the suite with the naive diff forced, as
// on kernels where native diff is not safe (redirect_dir or metacopy on).
func TestConformanceNaiveDiff(t *testing.T) {
	testutil.RequiresRoot(t)
	dt.Run(t, Name, dt.OnFS(t, testutil.Ext4, 512),
		dt.WithMaxDepth(ovl.MaxDepth),
		dt.WithInit(func(home string, o drivers.Options) (drivers.Driver, error) {
			d, err := Init(home, o)
			if err == nil {
				d.(*Driver).forceNaive = true
			}
			return d, err
		}),
	)
}

func overlayParam(name string) string {
	b, _ := os.ReadFile("/sys/module/overlay/parameters/" + name)
	return strings.TrimSpace(string(b))
}

// TestNativeDiffDecision checks the driver's verdict against the kernel
// parameters that decide it on a current kernel.
func TestNativeDiffDecision(t *testing.T) {
	testutil.RequiresRoot(t)
	d := dt.Init(t, Name, dt.OnFS(t, testutil.Ext4, 0)(t)).(*Driver)
	want := overlayParam("redirect_dir") != "Y" && overlayParam("metacopy") != "Y"
	if got := d.NativeDiff(); got != want {
		t.Errorf("NativeDiff() = %v (%s), want %v for redirect_dir=%s metacopy=%s", got, d.naiveReason, want, overlayParam("redirect_dir"), overlayParam("metacopy"))
	}
	status := map[string]string{}
	for _, row := range d.Status() {
		status[row[0]] = row[1]
	}
	if status["Backing Filesystem"] != "extfs" || status["Supports d_type"] != "true" || status["Native Overlay Diff"] != fmt.Sprint(want) {
		t.Errorf("Status() = %v", d.Status())
	}
}

func kernelAtLeast(t *testing.T, v version.Kernel) bool {
	var u unix.Utsname
	unix.Uname(&u)
	kv, err := version.ParseKernel(unix.ByteSliceToString(u.Release[:]))
	if err != nil {
		t.Fatal(err)
	}
	return kv.AtLeast(v)
}

// TestMountMethods mounts a 1-deep and a 128-deep stack with each method
// forced, writable and read-only (a committed layer), and checks what Auto
// picks: absolute paths when they fit in a page, else fsconfig lowerdir+
// where the kernel has it.
func TestMountMethods(t *testing.T) {
	testutil.RequiresRoot(t)
	homes := dt.OnFS(t, testutil.Ext4, 512)
	for _, depth := range []int{1, ovl.MaxDepth} {
		home := homes(t)
		d := dt.Init(t, Name, home).(*Driver)
		ids := dt.Stack(t, d, "s", depth)
		top, mid := ids[depth], ids[depth-1]
		spec := mountSpec(t, d, top)
		fits := len(spec.Data(true)) <= os.Getpagesize()-1
		if depth == 1 && !fits {
			t.Fatalf("1-deep mount data does not fit a page: %q", spec.Data(true))
		}
		if depth == ovl.MaxDepth && fits {
			t.Fatalf("%d-deep mount data fits a page (%d bytes): the test does not exercise the other methods", depth, len(spec.Data(true)))
		}
		auto := spec.Choose(ovl.Auto, nil)
		switch {
		case fits && auto != ovl.Absolute:
			t.Errorf("depth %d: Auto chose %v, want absolute", depth, auto)
		case !fits && kernelAtLeast(t, version.K(6, 8)) && auto != ovl.FSConfig:
			t.Errorf("depth %d: Auto chose %v on a 6.8+ kernel, want fsconfig", depth, auto)
		case !fits && auto == ovl.Absolute:
			t.Errorf("depth %d: Auto chose absolute for %d bytes of data", depth, len(spec.Data(true)))
		}
		for _, m := range []ovl.Method{ovl.Auto, ovl.Absolute, ovl.FSConfig, ovl.Relative} {
			t.Run(fmt.Sprintf("depth=%d/%v", depth, m), func(t *testing.T) {
				d.kernel.Method = m
				defer func() { d.kernel.Method = ovl.Auto }()
				if m == ovl.Absolute && !fits {
					_, err := d.Get(top)
					if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "more than a page") {
						t.Fatalf("Get with absolute paths over a page = %v, want EINVAL saying why", err)
					}
					if testutil.MountsUnder(home) != nil {
						t.Fatal("a failed Get left a mount")
					}
					return
				}
				root := get(t, d, top)
				for i := 0; i <= depth; i++ {
					name := filepath.Join(root, fmt.Sprintf("layers/%03d", i))
					if b, err := os.ReadFile(name); err != nil || string(b) != ids[i] {
						t.Fatalf("%s = %q, %v; want %q", name, b, err, ids[i])
					}
				}
				if err := os.WriteFile(filepath.Join(root, "written"), nil, 0o644); err != nil {
					t.Errorf("write to the top layer: %v", err)
				}
				if depth > 1 {
					ro := get(t, d, mid)
					if err := os.WriteFile(filepath.Join(ro, "written"), nil, 0o644); !errors.Is(err, unix.EROFS) {
						t.Errorf("write to a committed layer = %v, want EROFS", err)
					}
					if _, err := os.Stat(filepath.Join(ro, fmt.Sprintf("layers/%03d", depth-1))); err != nil {
						t.Errorf("committed layer misses its own file: %v", err)
					}
					put(t, d, mid)
				}
				if n := len(testutil.MountsUnder(home)); n != 1 {
					t.Errorf("%d mounts under the home, want 1", n)
				}
				put(t, d, top)
				if left := testutil.MountsUnder(home); len(left) > 0 {
					t.Errorf("mounts left after Put: %v", left)
				}
				os.Remove(filepath.Join(home, top, ovl.DiffDir, "written"))
			})
		}
	}
}

// mountSpec is the mount Get makes of layer id.
func mountSpec(tb testing.TB, d *Driver, id string) ovl.Spec {
	tb.Helper()
	layout := ovl.Layout{Home: d.Home()}
	lowers, err := layout.Lowers(id)
	if err != nil {
		tb.Fatal(err)
	}
	return layout.Spec(id, lowers, d.options)
}

func get(t testing.TB, d *Driver, id string) string {
	t.Helper()
	p, err := d.Get(id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return p
}

func put(t testing.TB, d *Driver, id string) {
	t.Helper()
	if err := d.Put(id); err != nil {
		t.Fatalf("Put(%s): %v", id, err)
	}
}

// TestLayout checks the on-disk layout against Docker's.
func TestLayout(t *testing.T) {
	testutil.RequiresRoot(t)
	home := dt.OnFS(t, testutil.Ext4, 0)(t)
	d := dt.Init(t, Name, home).(*Driver)
	ids := dt.Stack(t, d, "layer", 2)
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(home, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	links := map[string]string{}
	for _, id := range ids {
		link := read(id + "/link")
		if len(link) != ovl.IDLength || strings.Trim(link, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
			t.Errorf("%s/link = %q, want %d chars of [A-Z0-9]", id, link, ovl.IDLength)
		}
		target, err := os.Readlink(filepath.Join(home, "l", link))
		if err != nil || target != "../"+id+"/diff" {
			t.Errorf("l/%s -> %q (%v), want ../%s/diff", link, target, err, id)
		}
		links[id] = link
	}
	if _, err := os.Stat(filepath.Join(home, ids[0], "lower")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the base layer has a lower file (err %v)", err)
	}
	if got, want := read(ids[2]+"/lower"), "l/"+links[ids[1]]+":l/"+links[ids[0]]; got != want {
		t.Errorf("lower of the top layer = %q, want %q (nearest parent first)", got, want)
	}
	for i, id := range ids {
		committed := i < len(ids)-1
		if _, err := os.Stat(filepath.Join(home, id, "committed")); (err == nil) != committed {
			t.Errorf("%s/committed exists = %v, want %v", id, err == nil, committed)
		}
		_, err := os.Stat(filepath.Join(home, id, "work"))
		if (err == nil) != (i > 0) {
			t.Errorf("%s/work exists = %v, want %v", id, err == nil, i > 0)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(home, ids[0], "committed")); len(b) != 0 {
		t.Errorf("committed is not empty: %q", b)
	}
	for _, bad := range []string{"", "l", ".", "..", "a/b"} {
		if err := d.Create(bad, ""); err == nil {
			t.Errorf("Create(%q) succeeded", bad)
		}
	}
}

// recorder passes mounts to the kernel and keeps their data.
type recorder struct {
	mu   sync.Mutex
	data []string
}

func (r *recorder) Mount(source, target, fstype string, flags uintptr, data string) error {
	r.mu.Lock()
	r.data = append(r.data, data)
	r.mu.Unlock()
	return unix.Mount(source, target, fstype, flags, data)
}

func (r *recorder) Unmount(target string, flags int) error { return unix.Unmount(target, flags) }

// TestMountData checks the exact mount data, index=off included wherever
// the kernel has the index feature (mountinfo does not show it when it is
// the kernel's default).
func TestMountData(t *testing.T) {
	testutil.RequiresRoot(t)
	home := dt.OnFS(t, testutil.Ext4, 0)(t)
	rec := &recorder{}
	d := dt.Init(t, Name, home, dt.WithOptions(drivers.Options{Mounter: rec})).(*Driver)
	ids := dt.Stack(t, d, "layer", 2)
	link := func(id string) string { return "l/" + strings.TrimSpace(readFile(t, filepath.Join(home, id, "link"))) }
	prefix := ""
	if _, err := os.Stat("/sys/module/overlay/parameters/index"); err == nil {
		prefix = "index=off,"
	}
	for _, tc := range []struct {
		name   string
		method ovl.Method
		id     string
		want   string
	}{
		{"writable, absolute", ovl.Auto, ids[2], prefix + "lowerdir=" + filepath.Join(home, link(ids[1])) + ":" + filepath.Join(home, link(ids[0])) +
			",upperdir=" + filepath.Join(home, ids[2], "diff") + ",workdir=" + filepath.Join(home, ids[2], "work")},
		{"committed, absolute", ovl.Auto, ids[1], prefix + "lowerdir=" + filepath.Join(home, ids[1], "diff") + ":" + filepath.Join(home, link(ids[0]))},
		{"writable, relative", ovl.Relative, ids[2], prefix + "lowerdir=" + link(ids[1]) + ":" + link(ids[0]) +
			",upperdir=" + ids[2] + "/diff,workdir=" + ids[2] + "/work"},
		{"committed, relative", ovl.Relative, ids[1], prefix + "lowerdir=" + ids[1] + "/diff:" + link(ids[0])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.kernel.Method = tc.method
			rec.data = nil
			get(t, d, tc.id)
			put(t, d, tc.id)
			if len(rec.data) != 1 || rec.data[0] != tc.want {
				t.Errorf("mount data = %q, want [%q]", rec.data, tc.want)
			}
		})
	}
	d.kernel.Method = ovl.FSConfig
	if _, err := d.Get(ids[2]); err == nil || !strings.Contains(err.Error(), "Mounter") {
		t.Errorf("Get with fsconfig through a Mounter = %v, want a refusal", err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRemoveRefusesMountedLayer: removing a mounted layer would pull its
// files from under a running container.
func TestRemoveRefusesMountedLayer(t *testing.T) {
	testutil.RequiresRoot(t)
	d := dt.Init(t, Name, dt.OnFS(t, testutil.Ext4, 0)(t)).(*Driver)
	ids := dt.Stack(t, d, "layer", 1)
	get(t, d, ids[1])
	if err := d.Remove(ids[1]); err == nil || !strings.Contains(err.Error(), "mounted") {
		t.Errorf("Remove of a mounted layer = %v, want a refusal", err)
	}
	put(t, d, ids[1])
	if err := d.Remove(ids[1]); err != nil {
		t.Errorf("Remove after Put: %v", err)
	}
}

func TestStorageOptions(t *testing.T) {
	testutil.RequiresRoot(t)
	ext4 := dt.OnFS(t, testutil.Ext4, 0)
	xfs := dt.OnFS(t, testutil.XFS, 0)
	for _, tc := range []struct {
		name    string
		homes   func(testing.TB) string
		opts    []string
		wantErr string
	}{
		{"none", ext4, nil, ""},
		{"override_kernel_check is ignored", ext4, []string{"overlay2.override_kernel_check=true"}, ""},
		{"unknown option", ext4, []string{"overlay2.nope=1"}, "unknown storage option overlay2.nope"},
		{"size needs xfs", ext4, []string{"overlay2.size=10G"}, "xfs project quotas, and"},
		{"size needs pquota", xfs, []string{"overlay2.size=10G"}, "mounted without project quotas"},
		{"bad size", xfs, []string{"overlay2.size=ten"}, "want a number"},
		{"mountopt", ext4, []string{"overlay2.mountopt=nodev"}, ""},
		{"not key=value", ext4, []string{"overlay2.size"}, "want key=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Init(tc.homes(t), drivers.Options{StorageOpts: tc.opts})
			if err == nil {
				d.Cleanup()
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Init = %v, want error %q", err, tc.wantErr)
			}
			if drivers.IsNotSupported(err) {
				t.Errorf("a bad option is a not-supported error (%v): dockerd would skip to the next driver instead of stopping", err)
			}
		})
	}
}

// TestInsidePrivateMountNamespace runs the driver the way graphprobe does,
// on a hostsys.MountNS thread: mounts with relative paths (made on a thread
// of their own) and tar streams (produced on another thread) must see the
// namespace's mounts, and nothing may show in the test's own mount table.
func TestInsidePrivateMountNamespace(t *testing.T) {
	testutil.RequiresRoot(t)
	home := dt.OnFS(t, testutil.Ext4, 256)(t)
	ns, err := hostsys.NewMountNS()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	for _, m := range []ovl.Method{ovl.Relative, ovl.FSConfig, ovl.Absolute} {
		t.Run(m.String(), func(t *testing.T) {
			var d *Driver
			var root string
			depth := 3
			if m != ovl.Absolute {
				depth = ovl.MaxDepth
			}
			top := fmt.Sprintf("%v-%d", m, depth)
			err := ns.Do(func() error {
				drv, err := Init(home, drivers.Options{})
				if err != nil {
					return err
				}
				d = drv.(*Driver)
				d.kernel.Method, d.forceNaive = m, true
				var parent string
				for i := 0; i <= depth; i++ {
					id := fmt.Sprintf("%v-%d", m, i)
					if err := d.Create(id, parent); err != nil {
						return err
					}
					b, err := dt.TarBytes(dt.File(fmt.Sprintf("f%03d", i), id, 0o644))
					if err != nil {
						return err
					}
					if _, err := d.ApplyDiff(id, parent, strings.NewReader(string(b))); err != nil {
						return fmt.Errorf("naive ApplyDiff in the namespace: %w", err)
					}
					parent = id
				}
				if root, err = d.Get(top); err != nil {
					return err
				}
				if b, err := os.ReadFile(filepath.Join(root, "f000")); err != nil || string(b) != fmt.Sprintf("%v-0", m) {
					return fmt.Errorf("read the bottom layer's file through the mount: %q, %v", b, err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ns.Do(d.Cleanup)
			if threadMounts(t)[root] {
				t.Errorf("a mount made in the private namespace shows in the test's mount table: %s", root)
			}
			err = ns.Do(func() error {
				if err := d.Put(top); err != nil {
					return err
				}
				rc, err := d.Diff(top, fmt.Sprintf("%v-%d", m, depth-1))
				if err != nil {
					return err
				}
				entries, err := dt.ReadTar(rc)
				rc.Close()
				if err != nil {
					return fmt.Errorf("read a naive diff made in the namespace: %w", err)
				}
				if len(entries) != 1 || entries[0].Name != fmt.Sprintf("f%03d", depth) {
					return fmt.Errorf("naive diff in the namespace = %v, want the top layer's one file", entries)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// threadMounts reads the mount table of the calling thread's namespace.
func threadMounts(t *testing.T) map[string]bool {
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range mounts {
		out[m.Mountpoint] = true
	}
	return out
}
