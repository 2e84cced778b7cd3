package overlay2

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	dt "github.com/graphprobe/graphprobe/drivers/drivertest"
	"github.com/graphprobe/graphprobe/drivers/internal/ovl"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

// BenchmarkOverlay2 is the standard set, comparable with the other
// drivers' (create, get-put, layer-inodes).
func BenchmarkOverlay2(b *testing.B) {
	dt.Bench(b, Name, dt.OnFS(b, testutil.Ext4, 512), dt.WithMaxDepth(ovl.MaxDepth))
}

// BenchmarkMount sets the driver's Get+Put of the top of a 1-deep and a
// 128-deep stack beside a bare mount(2)+umount(2) loop of the same stack,
// with each way of mounting a deep stack.
func BenchmarkMount(b *testing.B) {
	testutil.RequiresRoot(b)
	homes := dt.OnFS(b, testutil.Ext4, 512)
	for _, depth := range []int{1, ovl.MaxDepth} {
		home := homes(b)
		d := dt.Init(b, Name, home).(*Driver)
		ids := dt.Stack(b, d, "s", depth)
		top := ids[depth]
		spec := mountSpec(b, d, top)
		methods := []ovl.Method{ovl.Auto}
		if depth > 1 {
			methods = append(methods, ovl.FSConfig, ovl.Relative)
		}
		for _, m := range methods {
			name := "get-put"
			if m != ovl.Auto {
				name += "-" + m.String()
			}
			b.Run(fmt.Sprintf("depth=%d/%s", depth, name), func(b *testing.B) {
				d.kernel.Method = m
				defer func() { d.kernel.Method = ovl.Auto }()
				dt.BenchGetPut(b, d, top)
			})
		}
		b.Run(fmt.Sprintf("depth=%d/bare-mount-umount", depth), func(b *testing.B) {
			benchBare(b, spec)
		})
	}
}

// benchBare mounts and unmounts spec with the smallest syscall sequence:
// one mount(2) with absolute paths when they fit in a page, else with
// paths relative to the home from a thread whose working directory it is,
// and one umount2(2) with the driver's flags.
func benchBare(b *testing.B, spec ovl.Spec) {
	target := filepath.Join(spec.Home, spec.Target)
	if err := os.MkdirAll(target, 0o700); err != nil {
		b.Fatal(err)
	}
	data, mountTarget := spec.Data(true), target
	if len(data) > os.Getpagesize()-1 {
		// The benchmark goroutine ends with the benchmark; its thread,
		// never unlocked, ends with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			b.Fatal(err)
		}
		if err := unix.Chdir(spec.Home); err != nil {
			b.Fatal(err)
		}
		data, mountTarget = spec.Data(false), spec.Target
	}
	for b.Loop() {
		if err := unix.Mount("overlay", mountTarget, "overlay", 0, data); err != nil {
			b.Fatalf("mount (%d bytes of data): %v", len(data), err)
		}
		if err := unix.Unmount(mountTarget, unix.MNT_DETACH); err != nil {
			b.Fatal(err)
		}
	}
}
