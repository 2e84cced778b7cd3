package fuseoverlayfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/drivers"
	dt "github.com/graphprobe/graphprobe/drivers/drivertest"
	"github.com/graphprobe/graphprobe/drivers/internal/ovl"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary a graphprobe stand-in that mounts a
// layer and waits to be killed (see TestKilledRunLeavesNoDaemon).
const helperEnv = "GRAPHPROBE_FUSE_HELPER_HOME"

func TestMain(m *testing.M) {
	if home := os.Getenv(helperEnv); home != "" {
		os.Exit(mountAndWait(home))
	}
	os.Exit(m.Run())
}

func mountAndWait(home string) int {
	fail := func(err error) int { fmt.Println("ERROR", err); return 1 }
	d, err := Init(home, drivers.Options{})
	if err != nil {
		return fail(err)
	}
	b, err := dt.TarBytes(dt.File("f", "x", 0o644))
	if err != nil {
		return fail(err)
	}
	for _, l := range []struct{ id, parent string }{{"base", ""}, {"top", "base"}} {
		if err := d.Create(l.id, l.parent); err != nil {
			return fail(err)
		}
		if _, err := d.ApplyDiff(l.id, l.parent, strings.NewReader(string(b))); err != nil {
			return fail(err)
		}
	}
	root, err := d.Get("top")
	if err != nil {
		return fail(err)
	}
	fmt.Println("MOUNTED", root)
	select {}
}

func requireFuse(t *testing.T) {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.RequiresTool(t, Binary)
}

// hardLinkCopyUp is a limitation of the fuse-overlayfs binary (seen with
// 1.10), not of the driver: it keys its nodes by the lower inode, so a
// file with two names is copied up under whichever name it loaded last
// (readdir order), and a write through one name can land on the other.
const hardLinkCopyUp = "a write to one name of a hard-linked lower file can be copied up under its other name (fuse-overlayfs keys nodes by inode)"

func TestConformance(t *testing.T) {
	requireFuse(t)
	dt.Run(t, Name, dt.OnFS(t, testutil.Ext4, 512), dt.WithMaxDepth(ovl.MaxDepth), dt.Skip("copy-up-hard-link", hardLinkCopyUp))
}

// TestConformanceOnOverlayfs is the driver's reason to exist: a data-root
// that is itself on overlayfs, where overlay2 refuses to run.
func TestConformanceOnOverlayfs(t *testing.T) {
	requireFuse(t)
	dt.Run(t, Name, dt.OnFS(t, testutil.Overlay, 512), dt.WithMaxDepth(ovl.MaxDepth), dt.Skip("copy-up-hard-link", hardLinkCopyUp))
}

func TestInitPrerequisites(t *testing.T) {
	requireFuse(t)
	homes := dt.OnFS(t, testutil.Ext4, 0)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T)
		opts  drivers.Options
		class error
		want  string
	}{
		{"binary missing", func(t *testing.T) { t.Setenv("PATH", t.TempDir()) }, drivers.Options{}, drivers.ErrPrerequisites, "the fuse-overlayfs binary is not on PATH"},
		{"no /dev/fuse", func(t *testing.T) {
			old := devFuse
			devFuse = filepath.Join(t.TempDir(), "fuse")
			t.Cleanup(func() { devFuse = old })
		}, drivers.Options{}, drivers.ErrPrerequisites, "fuse is missing"},
		{"storage option", func(*testing.T) {}, drivers.Options{StorageOpts: []string{"fuse-overlayfs.x=1"}}, nil, "unknown storage option fuse-overlayfs.x"},
		{"mounter", func(*testing.T) {}, drivers.Options{Mounter: nopMounter{}}, nil, "a Mounter cannot stand in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup(t)
			d, err := Init(homes(t), tc.opts)
			if err == nil {
				d.Cleanup()
				t.Fatal("Init succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Init = %v, want it to say %q", err, tc.want)
			}
			if tc.class != nil && !errors.Is(err, tc.class) {
				t.Errorf("Init = %v, want class %v", err, tc.class)
			}
			if tc.class == nil && drivers.IsNotSupported(err) {
				t.Errorf("a configuration error is of the not-supported class: %v", err)
			}
		})
	}
}

func TestKernelRule(t *testing.T) {
	for _, tc := range []struct {
		release string
		refused bool
	}{
		{"4.15.0-20-generic", true},
		{"4.17.19", true},
		{"3.10.0-1160.el7.x86_64", true},
		{"4.18.0-80.el8.x86_64", false},
		{"4.18.0-rc1", false},
		{"5.15.153.1-microsoft-standard-WSL2", false},
		{"6.8.0-45-generic", false},
		{"not-a-release", false},
	} {
		t.Run(tc.release, func(t *testing.T) {
			err := checkKernel(tc.release)
			if (err != nil) != tc.refused {
				t.Fatalf("checkKernel(%q) = %v, want refused %v", tc.release, err, tc.refused)
			}
			if err != nil && (!errors.Is(err, drivers.ErrNotSupported) || !strings.Contains(err.Error(), "older than 4.18")) {
				t.Errorf("refusal %q lacks the class or the reason", err)
			}
		})
	}
}

type nopMounter struct{}

func (nopMounter) Mount(string, string, string, uintptr, string) error { return nil }
func (nopMounter) Unmount(string, int) error                           { return nil }

// daemons lists the fuse-overlayfs processes whose parent is ppid.
func daemons(t *testing.T, ppid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if s[open+1:close] == Binary && len(fields) > 1 && fields[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}

// TestOneDaemonPerMount: Get starts one process per mounted layer, shared
// by every reference; the last Put stops it, and no process outlives it.
func TestOneDaemonPerMount(t *testing.T) {
	requireFuse(t)
	d := dt.Init(t, Name, dt.OnFS(t, testutil.Ext4, 0)(t))
	ids := dt.Stack(t, d, "layer", 2)
	if n := len(daemons(t, os.Getpid())); n != 0 {
		t.Fatalf("%d daemons before any Get", n)
	}
	for range 3 {
		if _, err := d.Get(ids[2]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Get(ids[1]); err != nil {
		t.Fatal(err)
	}
	if n := len(daemons(t, os.Getpid())); n != 2 {
		t.Errorf("%d daemons for two mounted layers, want 2", n)
	}
	for range 3 {
		if err := d.Put(ids[2]); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Put(ids[1]); err != nil {
		t.Fatal(err)
	}
	if left := daemons(t, os.Getpid()); len(left) != 0 {
		t.Errorf("daemons left after the last Put: %v", left)
	}
}

// TestKilledRunLeavesNoDaemon kills a process that holds a mount, as a
// user's ^C or the OOM killer would: its fuse-overlayfs must go with it,
// and take its mount along.
func TestKilledRunLeavesNoDaemon(t *testing.T) {
	requireFuse(t)
	home := dt.OnFS(t, testutil.Ext4, 0)(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+home)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	root, ok := strings.CutPrefix(strings.TrimSpace(line), "MOUNTED ")
	if !ok {
		t.Fatalf("helper: %s", line)
	}
	pids := daemons(t, cmd.Process.Pid)
	if len(pids) != 1 {
		t.Fatalf("the helper runs %d fuse-overlayfs processes, want 1", len(pids))
	}
	t.Cleanup(func() {
		syscall.Kill(pids[0], syscall.SIGKILL)
		unix.Unmount(root, unix.MNT_DETACH)
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// The daemon gets its parent-death signal at once; give it the
	// time a loaded machine may need to exit.
	deadline := time.Now().Add(mountTimeout)
	for syscall.Kill(pids[0], 0) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(pids[0], 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("fuse-overlayfs (pid %d) still runs after the process that started it was killed", pids[0])
	}
	for _, m := range testutil.MountTable(t) {
		if m == root {
			t.Errorf("the mount at %s outlived its daemon", root)
		}
	}
}

func BenchmarkFuseOverlayfs(b *testing.B) {
	testutil.RequiresTool(b, Binary)
	dt.Bench(b, Name, dt.OnFS(b, testutil.Ext4, 512), dt.WithMaxDepth(ovl.MaxDepth))
}
