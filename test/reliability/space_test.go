package reliability

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

const vfsConfig = "{\n  \"debug\": true,\n  \"storage-driver\": \"vfs\"\n}\n"

// TestTinyDataRoot runs the benchmark on a 16 MiB ext4 data-root: the full
// suite skips what does not fit and says so (exit 0, daemon.json written),
// and once less than the benchmark's minimum is free the run stops with a
// clear error, exit 1, daemon.json untouched. Nothing is left behind either
// way.
func TestTinyDataRoot(t *testing.T) {
	h := newHost(t, testutil.Ext4, 16)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	mountsBefore := mountsOf(t, h.mountRoots()...)

	t.Run("adapts", func(t *testing.T) {
		r := runGP(t, h.opts(), h.selectArgs("--driver", "overlay2", "--bench", "full", "--format", "json")...)
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		doc := parseSelect(t, r)
		var notes []string
		for _, c := range doc.Candidates {
			if c.Driver == "overlay2" && c.Benchmark != nil {
				notes = c.Benchmark.Notes
				if c.Benchmark.Error != "" {
					t.Errorf("benchmark error: %s", c.Benchmark.Error)
				}
			}
		}
		t.Logf("benchmark notes on 16 MiB: %q", notes)
		if !slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, "skipped: it needs") }) {
			t.Errorf("no benchmark item says it was skipped for lack of space: %q", notes)
		}
		if got := string(readFile(t, h.config)); !strings.Contains(got, `"storage-driver": "overlay2"`) {
			t.Errorf("daemon.json = %q", got)
		}
		checkNothingLeft(t, h, mountsBefore)
	})

	t.Run("stops", func(t *testing.T) {
		fillBytes(t, h.fs.Dir, 4<<20)
		before := snapshot(t, h.etc)
		r := runGP(t, h.opts(), h.selectArgs("--driver", "vfs", "--bench", "quick")...)
		t.Logf("with 4 MiB free: %s", firstLine(r.stderr))
		if r.code != 1 || !containsAll(r.stderr, "not enough free space for the benchmark", "--bench off") {
			t.Errorf("want exit 1 and a message saying there is not enough free space, and what to do; got %s", r)
		}
		requireUnchanged(t, "the config dir", before, snapshot(t, h.etc))
		checkNothingLeft(t, h, mountsBefore)
	})
}

// TestDataRootOutOfInodes runs select on an ext4 data-root made with 64
// inodes: with every inode used, and with a handful free. Either way the run
// stops with a clear error, exit 1, daemon.json untouched, nothing left.
func TestDataRootOutOfInodes(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := loopFS(t, 64, "mkfs.ext4", "-q", "-F", "-N", "64")
	h := &host{fs: &testutil.FS{Kind: "ext4", Dir: dir}, dataRoot: filepath.Join(dir, "docker"), etc: t.TempDir(), lock: filepath.Join(t.TempDir(), "lock"), tmp: t.TempDir()}
	h.config = filepath.Join(h.etc, "daemon.json")
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	mountsBefore := mountsOf(t, h.mountRoots()...)
	fillers := fillInodes(t, dir)
	for _, tc := range []struct {
		name string
		free int
		want []string
	}{
		{"none free", 0, []string{"no space left on device"}},
		{"20 free", 20, []string{"inodes free", "--bench off"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i < tc.free && len(fillers) > 0; i++ {
				if err := os.Remove(fillers[len(fillers)-1]); err != nil {
					t.Fatal(err)
				}
				fillers = fillers[:len(fillers)-1]
			}
			var st unix.Statfs_t
			unix.Statfs(dir, &st)
			before := snapshot(t, h.etc)
			r := runGP(t, h.opts(), h.selectArgs("--driver", "overlay2", "--bench", "quick")...)
			t.Logf("%d inodes free: exit %d: %s", st.Ffree, r.code, firstLine(r.stderr))
			if r.code != 1 || !containsAll(r.stderr, tc.want...) {
				t.Errorf("want exit 1 and a message with %q; got %s", tc.want, r)
			}
			requireUnchanged(t, "the config dir", before, snapshot(t, h.etc))
			checkNothingLeft(t, h, mountsBefore)
		})
	}
}

// TestReadOnlyDataRoot: a data-root on a filesystem mounted read-only. The
// run stops with a clear error, exit 1, daemon.json untouched, and the
// probe's fallback scratch dir in TMPDIR is removed.
func TestReadOnlyDataRoot(t *testing.T) {
	h := newHost(t, testutil.Ext4, 64)
	if err := os.Mkdir(h.dataRoot, 0o711); err != nil {
		t.Fatal(err)
	}
	h.etc = t.TempDir()
	h.config = filepath.Join(h.etc, "daemon.json")
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	mustRun(t, "mount", "-o", "remount,ro", h.fs.Dir)
	mountsBefore := mountsOf(t, h.mountRoots()...)
	fsBefore := snapshot(t, h.fs.Dir)
	etcBefore := snapshot(t, h.etc)
	for _, bench := range []string{"quick", "off"} {
		r := runGP(t, h.opts(), h.selectArgs("--driver", "overlay2", "--bench", bench)...)
		t.Logf("bench %s: exit %d: %s", bench, r.code, firstLine(r.stderr))
		if r.code != 1 || !containsAll(r.stderr, h.dataRoot, "read-only file system") {
			t.Errorf("bench %s: want exit 1 and a message naming the data-root and the read-only filesystem; got %s", bench, r)
		}
	}
	requireUnchanged(t, "the config dir", etcBefore, snapshot(t, h.etc))
	requireUnchanged(t, "the read-only data-root", fsBefore, snapshot(t, h.fs.Dir))
	checkNothingLeft(t, h, mountsBefore)
}

// TestReadOnlyConfigDir: daemon.json's directory is a read-only bind mount.
// The run stops with a clear error, exit 1, the file untouched, and the
// benchmark's scratch dirs are removed.
func TestReadOnlyConfigDir(t *testing.T) {
	h := newHost(t, testutil.Ext4, 64)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	mustRun(t, "mount", "--bind", h.etc, h.etc)
	t.Cleanup(func() { unix.Unmount(h.etc, unix.MNT_DETACH) })
	mustRun(t, "mount", "-o", "remount,bind,ro", h.etc)
	mountsBefore := mountsOf(t, h.mountRoots()...)
	before := snapshot(t, h.etc)
	for _, bench := range []string{"off", "quick"} {
		r := runGP(t, h.opts(), h.selectArgs("--driver", "overlay2", "--bench", bench)...)
		t.Logf("bench %s: exit %d: %s", bench, r.code, firstLine(r.stderr))
		if r.code != 1 || !containsAll(r.stderr, h.config, "read-only file system") {
			t.Errorf("bench %s: want exit 1 and a message naming daemon.json and the read-only filesystem; got %s", bench, r)
		}
	}
	requireUnchanged(t, "the read-only config dir", before, snapshot(t, h.etc))
	checkNothingLeft(t, h, mountsBefore)
}

// checkNothingLeft: no scratch dir, no temporary file beside daemon.json,
// and the test's mount table as it was.
func checkNothingLeft(t *testing.T, h *host, mountsBefore []string) {
	t.Helper()
	if left := scratchIn(h.scratchDirs()...); len(left) > 0 {
		t.Errorf("scratch dirs left: %q", left)
	}
	if left := tempsIn(h.etc); len(left) > 0 {
		t.Errorf("temporary files left beside daemon.json: %q", left)
	}
	if got := mountsOf(t, h.mountRoots()...); !slices.Equal(got, mountsBefore) {
		t.Errorf("mount table changed:\nbefore %q\nafter  %q", mountsBefore, got)
	}
}

// loopFS makes a loop filesystem with the given mkfs command (the image is
// its last argument) and mounts it for the test.
func loopFS(t *testing.T, sizeMiB int, mkfs ...string) string {
	t.Helper()
	testutil.RequiresTool(t, mkfs[0])
	base := t.TempDir()
	img, dir := filepath.Join(base, "image"), filepath.Join(base, "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(sizeMiB) << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command(mkfs[0], append(mkfs[1:], img)...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(mkfs, " "), err, out)
	}
	mustRun(t, "mount", "-o", "loop", img, dir)
	t.Cleanup(func() {
		for _, m := range testutil.MountsUnder(dir) {
			unix.Unmount(m, unix.MNT_DETACH)
		}
	})
	return dir
}

// fillBytes leaves about free bytes available on dir's filesystem.
func fillBytes(t *testing.T, dir string, free uint64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	avail := st.Bavail * uint64(st.Bsize)
	if avail <= free {
		return
	}
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(avail-free)); err != nil {
		t.Fatal(err)
	}
}

// fillInodes creates empty files in dir until the filesystem has no inode
// left, and returns them.
func fillInodes(t *testing.T, dir string) []string {
	t.Helper()
	var made []string
	for i := 0; ; i++ {
		p := filepath.Join(dir, fmt.Sprintf("inode-%05d", i))
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, unix.ENOSPC) {
			return made
		}
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		made = append(made, p)
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
