package reliability

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

// victim is a directory graphprobe must never write to: a file, a subdir
// and a nested file, so that a write through any planted link shows.
func victim(t *testing.T) string {
	t.Helper()
	return victimIn(t, t.TempDir())
}

// victimIn makes the victim directory in parent (for hard links, which
// must stay on one filesystem).
func victimIn(t *testing.T, parent string) string {
	t.Helper()
	dir := filepath.Join(parent, "victim")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "canary"), []byte("do not touch\n"), 0o644)
	writeFile(t, filepath.Join(dir, "sub", "canary"), []byte("nor this\n"), 0o600)
	return dir
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// TestPlantedScratchNames plants, at scratch names in the data-root,
// symlinks to a victim directory (with a dead pid, with a live pid, for
// both scratch kinds), a stale-looking directory of another user, stale
// directories of ours holding symlinks to the victim, and a regular file.
// select must run (exit 0) without writing to the victim: symlinks are
// never followed or removed, another user's directory is left alone, our
// own stale directories are removed without following the links in them.
func TestPlantedScratchNames(t *testing.T) {
	h := newHost(t, testutil.Ext4, 256)
	mkdir(t, h.dataRoot, 0o711)
	v := victim(t)
	dead := deadPID(t)
	name := func(kind string, pid int, rest string) string {
		return filepath.Join(h.dataRoot, fmt.Sprintf(".graphprobe-%s-%d-%s", kind, pid, rest))
	}
	links := map[string]string{
		name("bench", dead, "link"):    v,
		name("probe", dead, "link"):    v,
		name("bench", 1, "live"):       v,
		name("bench", dead, "sublink"): filepath.Join(v, "sub"),
	}
	for l, target := range links {
		symlink(t, target, l)
	}
	foreign := name("bench", dead, "foreign")
	mkdir(t, foreign, 0o755)
	symlink(t, v, filepath.Join(foreign, "escape"))
	writeFile(t, filepath.Join(foreign, "data"), []byte("someone else's\n"), 0o644)
	if err := os.Lchown(filepath.Join(foreign, "escape"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{foreign, filepath.Join(foreign, "data")} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	var ours []string
	for _, kind := range []string{"bench", "probe"} {
		d := name(kind, dead, "stale")
		mkdir(t, filepath.Join(d, "deeper"), 0o700)
		symlink(t, v, filepath.Join(d, "escape"))
		symlink(t, filepath.Join(v, "sub"), filepath.Join(d, "deeper", "escape"))
		ours = append(ours, d)
	}
	plainFile := name("bench", dead, "file")
	writeFile(t, plainFile, []byte("a file\n"), 0o644)

	victimBefore := snapshot(t, v)
	foreignBefore := snapshot(t, foreign)
	mountsBefore := mountsOf(t, h.mountRoots()...)
	r := runGP(t, h.opts(), h.selectArgs("--driver", "overlay2", "--bench", "quick", "--format", "json")...)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	requireUnchanged(t, "the victim directory", victimBefore, snapshot(t, v))
	requireUnchanged(t, "another user's stale-looking directory", foreignBefore, snapshot(t, foreign))
	for l, target := range links {
		if got, err := os.Readlink(l); err != nil || got != target {
			t.Errorf("planted symlink %s: now %q, %v; want it left pointing to %s", l, got, err, target)
		}
	}
	for _, d := range ours {
		if _, err := os.Lstat(d); !os.IsNotExist(err) {
			t.Errorf("our stale scratch dir %s was not removed: %v", d, err)
		}
	}
	if _, err := os.Lstat(plainFile); err != nil {
		t.Errorf("a regular file at a scratch name was removed: %v", err)
	}
	planted := len(links) + 2 // foreign dir and plain file stay
	if left := scratchIn(h.scratchDirs()...); len(left) != planted {
		t.Errorf("scratch entries after the run: %q, want only the %d planted ones that must stay", left, planted)
	}
	if got := mountsOf(t, h.mountRoots()...); !equalStrings(got, mountsBefore) {
		t.Errorf("mount table changed:\nbefore %q\nafter  %q", mountsBefore, got)
	}
}

// TestPlantedMountAtScratchName bind-mounts a victim directory on a
// stale-looking scratch dir of ours. Removing the "stale" dir would delete
// through the mount: select must refuse (exit 1, saying what is mounted),
// leave the mount and the victim alone.
func TestPlantedMountAtScratchName(t *testing.T) {
	h := newHost(t, testutil.Ext4, 256)
	mkdir(t, h.dataRoot, 0o711)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	v := victim(t)
	stale := filepath.Join(h.dataRoot, fmt.Sprintf(".graphprobe-bench-%d-mounted", deadPID(t)))
	mkdir(t, stale, 0o700)
	mustRun(t, "mount", "--bind", v, stale)
	t.Cleanup(func() { unix.Unmount(stale, unix.MNT_DETACH) })
	victimBefore := snapshot(t, v)
	etcBefore := snapshot(t, h.etc)
	mountsBefore := mountsOf(t, h.mountRoots()...)
	r := runGP(t, h.opts(), h.selectArgs("--driver", "overlay2", "--bench", "off")...)
	t.Logf("exit %d: %s", r.code, firstLine(r.stderr))
	if r.code != 1 || !containsAll(r.stderr, stale, "mounted") {
		t.Errorf("want exit 1 and a message naming the mounted stale dir; got %s", r)
	}
	requireUnchanged(t, "the victim directory", victimBefore, snapshot(t, v))
	requireUnchanged(t, "the config dir", etcBefore, snapshot(t, h.etc))
	if got := mountsOf(t, h.mountRoots()...); !equalStrings(got, mountsBefore) {
		t.Errorf("mount table changed:\nbefore %q\nafter  %q", mountsBefore, got)
	}
}

// TestSymlinkedDataRoot: a data-root that is a symlink to a directory on
// another filesystem, and one whose parent is such a symlink. dockerd
// follows the link, so graphprobe must probe and benchmark the filesystem
// the link leads to (xfs here, the link being on ext4), leave the link as
// it is, and leave nothing on either filesystem.
func TestSymlinkedDataRoot(t *testing.T) {
	h := newHost(t, testutil.Ext4, 64)
	other := testutil.NewFS(t, testutil.XFS, 0)
	real := filepath.Join(other.Dir, "real")
	mkdir(t, filepath.Join(real, "docker"), 0o711)
	writeFile(t, filepath.Join(real, "docker", "keep"), []byte("data\n"), 0o644)
	cases := []struct {
		name, link, target, dataRoot, probed string
	}{
		{"data-root is a link", filepath.Join(h.fs.Dir, "docker-link"), filepath.Join(real, "docker"), filepath.Join(h.fs.Dir, "docker-link"), filepath.Join(real, "docker")},
		{"parent is a link", filepath.Join(h.fs.Dir, "parent-link"), real, filepath.Join(h.fs.Dir, "parent-link", "new-docker"), real},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			symlink(t, tc.target, tc.link)
			defer os.Remove(tc.link)
			hereBefore := snapshot(t, h.fs.Dir)
			thereBefore := listing(t, other.Dir)
			mountsBefore := mountsOf(t, append(h.mountRoots(), filepath.Dir(other.Dir))...)
			hh := *h
			hh.dataRoot = tc.dataRoot
			r := runGP(t, h.opts(), hh.selectArgs("--driver", "overlay2", "--bench", "quick", "--format", "json")...)
			if r.code != 0 {
				t.Fatalf("%s", r)
			}
			doc := parseSelect(t, r)
			t.Logf("data-root %s probed at %s (%s)", strings.TrimPrefix(tc.dataRoot, h.fs.Dir), doc.Probe.DataRoot.ProbedPath, doc.Probe.DataRoot.Filesystem)
			if doc.Probe.DataRoot.ProbedPath != tc.probed || doc.Probe.DataRoot.Filesystem != "xfs" {
				t.Errorf("probed %s (%s), want %s (xfs): the filesystem dockerd will use", doc.Probe.DataRoot.ProbedPath, doc.Probe.DataRoot.Filesystem, tc.probed)
			}
			if got, err := os.Readlink(tc.link); err != nil || got != tc.target {
				t.Errorf("the link now points to %q (%v), want %s", got, err, tc.target)
			}
			// The config dir changed (daemon.json was written); nothing
			// else on the link's filesystem may.
			after := snapshot(t, h.fs.Dir)
			for k := range after {
				if k == "etc" || strings.HasPrefix(k, "etc/") {
					delete(after, k)
				}
			}
			for k := range hereBefore {
				if k == "etc" || strings.HasPrefix(k, "etc/") {
					delete(hereBefore, k)
				}
			}
			requireUnchanged(t, "the link's filesystem", hereBefore, after)
			if got := listing(t, other.Dir); !equalStrings(got, thereBefore) {
				t.Errorf("the target filesystem's tree changed:\nbefore %q\nafter  %q", thereBefore, got)
			}
			if got := mountsOf(t, append(h.mountRoots(), filepath.Dir(other.Dir))...); !equalStrings(got, mountsBefore) {
				t.Errorf("mount table changed:\nbefore %q\nafter  %q", mountsBefore, got)
			}
		})
	}
}

// listing is the tree below root: paths, types and modes (not times: a
// scratch dir made and removed in a directory changes its mtime, which is
// allowed on the filesystem graphprobe benchmarks).
func listing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for k, v := range snapshot(t, root) {
		mode, _, _ := strings.Cut(v, " ")
		out = append(out, k+" "+mode)
	}
	sort.Strings(out)
	return out
}

// TestDataRootNotADirectory: a data-root path that exists but is a regular
// file or a FIFO cannot hold Docker's data (dockerd fails to start with
// "not a directory"). select must say so and exit 1 rather than probe and
// benchmark the parent directory and report success; a dangling symlink is
// refused too. Nothing may block on the FIFO.
func TestDataRootNotADirectory(t *testing.T) {
	h := newHost(t, testutil.Ext4, 64)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	file := filepath.Join(h.fs.Dir, "file")
	writeFile(t, file, []byte("not a directory\n"), 0o644)
	fifo := filepath.Join(h.fs.Dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(h.fs.Dir, "dangling")
	symlink(t, filepath.Join(h.fs.Dir, "nowhere"), dangling)
	for _, tc := range []struct{ name, dataRoot string }{
		{"regular file", file},
		{"FIFO", fifo},
		{"dangling symlink", dangling},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, h.fs.Dir)
			hh := *h
			hh.dataRoot = tc.dataRoot
			r := runGP(t, h.opts(), hh.selectArgs("--driver", "overlay2", "--bench", "off")...)
			t.Logf("exit %d: %s", r.code, firstLine(r.stderr))
			if r.code != 1 || !containsAll(r.stderr, tc.dataRoot, "not a directory") {
				t.Errorf("want exit 1 and a message saying the data-root %s is not a directory; got %s", tc.dataRoot, r)
			}
			requireUnchanged(t, "the filesystem", before, snapshot(t, h.fs.Dir))
		})
	}
}

// TestConfigPathKinds gives select every kind of file as --config and
// checks the defined outcome: a symlink is written through (the link
// stays, the backup goes beside the target); anything that is not a
// regular file of at most daemonjson.MaxSize (2 MiB) is refused with exit 1 and a message naming
// what it is, without creating, writing or blocking on anything.
func TestConfigPathKinds(t *testing.T) {
	h := newHost(t, testutil.Ext4, 256)
	dir := h.etc
	elsewhere := filepath.Join(h.fs.Dir, "elsewhere")
	mkdir(t, elsewhere, 0o755)
	target := filepath.Join(elsewhere, "daemon.json")
	writeFile(t, target, []byte(vfsConfig), 0o640)

	p := func(n string) string { return filepath.Join(dir, n) }
	symlink(t, target, p("abs-link.json"))
	symlink(t, "../elsewhere/daemon.json", p("rel-link.json"))
	symlink(t, "rel-link.json", p("chain.json"))
	symlink(t, filepath.Join(elsewhere, "missing.json"), p("dangling.json"))
	symlink(t, "loop-b.json", p("loop-a.json"))
	symlink(t, "loop-a.json", p("loop-b.json"))
	symlink(t, "/dev/null", p("devnull.json"))
	mkdir(t, p("dir.json"), 0o755)
	if err := unix.Mkfifo(p("fifo.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", p("socket.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	big, err := os.Create(p("big.json"))
	if err != nil {
		t.Fatal(err)
	}
	big.WriteString("{\"storage-driver\": \"vfs\", \"x\": \"")
	big.Truncate(100 << 20)
	big.Close()
	open := filepath.Join(h.fs.Dir, "world-writable")
	mkdir(t, open, 0o777)
	writeFile(t, filepath.Join(open, "daemon.json"), []byte(vfsConfig), 0o644)

	for _, tc := range []struct {
		name, config string
		code         int
		want         []string
	}{
		{"absolute symlink to a file", p("abs-link.json"), 0, nil},
		{"relative symlink to a file", p("rel-link.json"), 0, nil},
		{"chain of symlinks", p("chain.json"), 0, nil},
		{"dangling symlink", p("dangling.json"), 1, []string{"dangling symlink", "missing.json"}},
		{"symlink loop", p("loop-a.json"), 1, []string{"levels of symbolic links"}},
		{"symlink to /dev/null", p("devnull.json"), 1, []string{"character device", "not a regular file"}},
		{"directory", p("dir.json"), 1, []string{"a directory", "not a regular file"}},
		{"FIFO", p("fifo.json"), 1, []string{"a FIFO", "not a regular file"}},
		{"socket", p("socket.json"), 1, []string{"a socket", "not a regular file"}},
		{"100 MiB file", p("big.json"), 1, []string{"100 MiB", "over graphprobe's 2 MiB limit", "EMPTY.json"}},
		{"in a world-writable directory", filepath.Join(open, "daemon.json"), 1, []string{"writable by every user"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hh := *h
			hh.config = tc.config
			dirBefore := snapshot(t, dir)
			elsewhereBefore := snapshot(t, elsewhere)
			openBefore := snapshot(t, open)
			r := runGP(t, h.opts(), hh.selectArgs("--driver", "overlay2", "--bench", "off", "--format", "json")...)
			t.Logf("exit %d: %s", r.code, firstLine(r.stderr))
			if r.code != tc.code || !containsAll(r.stderr, tc.want...) {
				t.Fatalf("want exit %d and a message with %q; got %s", tc.code, tc.want, r)
			}
			requireUnchanged(t, "the directory holding --config", dirBefore, snapshot(t, dir))
			requireUnchanged(t, "the world-writable directory", openBefore, snapshot(t, open))
			if tc.code != 0 {
				requireUnchanged(t, "the link target's directory", elsewhereBefore, snapshot(t, elsewhere))
				return
			}
			doc := parseSelect(t, r)
			if doc.DaemonJSON.Path != target {
				t.Errorf("wrote %s, want the link's target %s", doc.DaemonJSON.Path, target)
			}
			if got := string(readFile(t, target)); !strings.Contains(got, `"storage-driver": "overlay2"`) {
				t.Errorf("target = %q", got)
			}
			if st, err := os.Stat(target); err != nil || st.Mode().Perm() != 0o640 {
				t.Errorf("target mode %v (%v), want 0640 kept", st.Mode(), err)
			}
			if got := string(readFile(t, target+".graphprobe-backup")); got != vfsConfig {
				t.Errorf("backup beside the target = %q", got)
			}
			writeFile(t, target, []byte(vfsConfig), 0o640) // for the next case
		})
	}
	if st, err := os.Lstat(p("fifo.json")); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO is gone or replaced: %v %v", st, err)
	}
	if st, err := os.Stat(p("big.json")); err != nil || st.Size() != 100<<20 {
		t.Errorf("the big file changed: %v %v", st, err)
	}
}

// TestLockFileCannotBeRedirected: the lock file is truncated and written
// by whoever holds it, so a lock path that is a symlink, a hard link, a
// FIFO, a directory or another user's file must be refused (exit 1, saying
// why), with its target untouched and nothing blocking.
func TestLockFileCannotBeRedirected(t *testing.T) {
	h := newHost(t, testutil.Ext4, 64)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	v := victim(t)
	canary := filepath.Join(v, "canary")
	locks := t.TempDir()
	p := func(n string) string { return filepath.Join(locks, n) }
	symlink(t, canary, p("symlink.lock"))
	symlink(t, filepath.Join(v, "new-file"), p("dangling.lock"))
	if err := os.Link(canary, p("hardlink.lock")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(p("fifo.lock"), 0o644); err != nil {
		t.Fatal(err)
	}
	mkdir(t, p("dir.lock"), 0o755)
	writeFile(t, p("foreign.lock"), []byte("4242\n"), 0o644)
	if err := os.Chown(p("foreign.lock"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, lock string
		want       []string
	}{
		{"symlink", p("symlink.lock"), []string{"symlink"}},
		{"dangling symlink", p("dangling.lock"), []string{"symlink"}},
		{"hard link", p("hardlink.lock"), []string{"2 hard links"}},
		{"FIFO", p("fifo.lock"), []string{"not a regular file"}},
		{"directory", p("dir.lock"), []string{"dir.lock"}},
		{"another user's file", p("foreign.lock"), []string{"owned by uid 65534"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			victimBefore, locksBefore, etcBefore := snapshot(t, v), snapshot(t, locks), snapshot(t, h.etc)
			hh := *h
			hh.lock = tc.lock
			r := runGP(t, h.opts(), hh.selectArgs("--driver", "overlay2", "--bench", "off")...)
			t.Logf("exit %d: %s", r.code, firstLine(r.stderr))
			if r.code != 1 || !containsAll(r.stderr, tc.want...) {
				t.Errorf("want exit 1 and a message with %q; got %s", tc.want, r)
			}
			requireUnchanged(t, "the victim directory", victimBefore, snapshot(t, v))
			requireUnchanged(t, "the lock directory", locksBefore, snapshot(t, locks))
			requireUnchanged(t, "the config dir", etcBefore, snapshot(t, h.etc))
		})
	}
}

// TestPlantedCompanionFiles plants symlinks to victim files at the names
// graphprobe writes beside daemon.json (the backup, the report) and at a
// dead run's temporary-file name, and a hard link to a victim file at
// another. The write must replace the planted links, not write through
// them: the victims keep their content.
func TestPlantedCompanionFiles(t *testing.T) {
	h := newHost(t, testutil.Ext4, 64)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	v := victimIn(t, h.fs.Dir)
	dead := deadPID(t)
	symlink(t, filepath.Join(v, "canary"), h.config+".graphprobe-backup")
	symlink(t, filepath.Join(v, "sub", "canary"), h.config+".graphprobe-report.json")
	tempLink := filepath.Join(h.etc, fmt.Sprintf(".daemon.json.graphprobe-%d.0123456789abcdef.tmp", dead))
	symlink(t, filepath.Join(v, "canary"), tempLink)
	hard := filepath.Join(h.etc, fmt.Sprintf(".daemon.json.graphprobe-%d.fedcba9876543210.tmp", dead))
	if err := os.Link(filepath.Join(v, "sub", "canary"), hard); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, v)
	r := runGP(t, h.opts(), h.selectArgs("--driver", "overlay2", "--bench", "off")...)
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	after := snapshot(t, v)
	// The hard link's removal changes the victim's link count, not its
	// content; the snapshot does not record link counts.
	requireUnchanged(t, "the victim directory", before, after)
	for _, n := range []string{".graphprobe-backup", ".graphprobe-report.json"} {
		st, err := os.Lstat(h.config + n)
		if err != nil || !st.Mode().IsRegular() {
			t.Errorf("%s is %v (%v), want a regular file replacing the planted link", n, st, err)
		}
	}
	if got := string(readFile(t, h.config+".graphprobe-backup")); got != vfsConfig {
		t.Errorf("backup = %q", got)
	}
}

// TestStaleTempRemovedByNextRun: a run killed between writing its
// temporary file and renaming it leaves ".daemon.json.graphprobe-<pid>.<random>.tmp"
// beside daemon.json. The next run removes it, also when it finds nothing
// to change in daemon.json (the common case at the next boot).
func TestStaleTempRemovedByNextRun(t *testing.T) {
	h := newHost(t, testutil.Ext4, 64)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	dead := deadPID(t)
	for _, tc := range []struct {
		name, driver string
	}{
		{"run that changes daemon.json", "overlay2"},
		{"run that changes nothing", "overlay2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stale := filepath.Join(h.etc, fmt.Sprintf(".daemon.json.graphprobe-%d.00112233aabbccdd.tmp", dead))
			writeFile(t, stale, []byte("{\"storage-driver\": \"half-writ"), 0o600)
			r := runGP(t, h.opts(), h.selectArgs("--driver", tc.driver, "--bench", "off", "--format", "json")...)
			if r.code != 0 {
				t.Fatalf("%s", r)
			}
			t.Logf("daemon.json changed: %v", parseSelect(t, r).DaemonJSON.Changed)
			if left := tempsIn(h.etc); len(left) > 0 {
				t.Errorf("a dead run's temporary file is still beside daemon.json after the next run: %q", left)
				os.Remove(stale)
			}
		})
	}
}

// TestStaleProbeScratchInTMPDIR: when the data-root is not writable, the
// probe makes its scratch dir in TMPDIR instead. A probe killed there
// leaves ".graphprobe-probe-<pid>-<random>" in TMPDIR; the next run must
// remove it, as it does in the data-root.
func TestStaleProbeScratchInTMPDIR(t *testing.T) {
	h := newHost(t, testutil.Ext4, 64)
	mkdir(t, h.dataRoot, 0o711)
	mustRun(t, "mount", "-o", "remount,ro", h.fs.Dir)
	stale := filepath.Join(h.tmp, fmt.Sprintf(".graphprobe-probe-%d-1234", deadPID(t)))
	mkdir(t, filepath.Join(stale, "tmpfs-5678"), 0o700)
	r := runGP(t, h.opts(), "probe", "--data-root", h.dataRoot, "--format", "json")
	if r.code != 0 {
		t.Fatalf("%s", r)
	}
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Errorf("a dead probe's scratch dir in TMPDIR is still there after the next probe: %s (%v)", stale, err)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestScratchSwapInUserOwnedDataRoot: a data-root directory owned by an
// unprivileged user (uid 65534 here), who can therefore rename anything in
// it. While select runs, that user moves every scratch dir graphprobe makes
// there aside and puts a symlink to a root-owned victim directory in its
// place (a helper process running as uid 65534, woken by inotify). Whatever
// the outcome of the run, nothing may be written to, chmodded in or
// removed from the victim.
func TestScratchSwapInUserOwnedDataRoot(t *testing.T) {
	h := newHost(t, testutil.Ext4, 256)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	shared := filepath.Join(h.fs.Dir, "user-owned")
	mkdir(t, shared, 0o755)
	if err := os.Chown(shared, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	// The attacker must reach the directory it owns.
	for d := filepath.Dir(h.fs.Dir); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	v := victimIn(t, h.fs.Dir)
	binaries(t)
	attacker := startProg(t, testBin, runOpts{env: []string{helperRoleEnv + "=swap-scratch"},
		cred: &syscall.Credential{Uid: 65534, Gid: 65534}}, shared, v)
	t.Cleanup(func() {
		syscall.Kill(attacker.pid(), syscall.SIGKILL)
		attacker.wait()
	})
	attacker.waitLine("ready")
	hh := *h
	hh.dataRoot = shared
	attempts := 5
	if testing.Short() {
		attempts = 2
	}
	redirected := 0
	for i := 0; i < attempts; i++ {
		before := snapshot(t, v)
		r := runGP(t, h.opts(), hh.selectArgs("--driver", "overlay2", "--bench", "quick")...)
		t.Logf("attempt %d: exit %d: %s", i+1, r.code, firstLine(r.stderr))
		if d := diffSnapshots(before, snapshot(t, v)); len(d) > 0 {
			redirected++
			t.Errorf("attempt %d: the victim directory changed through a swapped scratch dir:\n  %s", i+1, strings.Join(d, "\n  "))
		}
	}
	syscall.Kill(attacker.pid(), syscall.SIGKILL)
	ar := attacker.wait()
	t.Logf("the attacker swapped %d scratch dirs; %d of %d runs wrote to the victim", strings.Count(ar.stderr, "swapped "), redirected, attempts)
}

// TestPolicyPathKinds gives select every kind of file as --policy. A
// symlink to a policy is read; a FIFO, a directory, a device, a dangling
// link and a 100 MiB file are refused with exit 1 and a message, at once:
// a FIFO with no writer must not block the run (at boot nothing would ever
// write to it, and the run could not be stopped by SIGTERM either). A run
// still going after 20 s (a normal one takes well under a second) is
// reported as hung.
func TestPolicyPathKinds(t *testing.T) {
	h := newHost(t, testutil.Ext4, 64)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	writeFile(t, p("policy.yaml"), []byte("exclude: [vfs]\n"), 0o644)
	symlink(t, "policy.yaml", p("link.yaml"))
	symlink(t, "missing.yaml", p("dangling.yaml"))
	symlink(t, "/dev/zero", p("zero.yaml"))
	mkdir(t, p("dir.yaml"), 0o755)
	if err := unix.Mkfifo(p("fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(p("big.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	big.Truncate(100 << 20)
	big.Close()
	for _, tc := range []struct {
		name, policy string
		code         int
		want         []string
	}{
		{"symlink to a policy", p("link.yaml"), 0, nil},
		{"dangling symlink", p("dangling.yaml"), 1, []string{"dangling.yaml", "no such file"}},
		{"character device", p("zero.yaml"), 1, []string{"not a regular file"}},
		{"directory", p("dir.yaml"), 1, []string{"not a regular file"}},
		{"100 MiB file", p("big.yaml"), 1, []string{"over 64 KiB"}},
		{"FIFO", p("fifo.yaml"), 1, []string{"not a regular file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, h.etc)
			o := h.opts()
			o.guard = 20 * time.Second
			r := runGP(t, o, h.selectArgs("--policy", tc.policy, "--driver", "overlay2", "--bench", "off")...)
			t.Logf("exit %d after %v: %s", r.code, r.dur.Round(time.Millisecond), firstLine(r.stderr))
			if r.code != tc.code || !containsAll(r.stderr, tc.want...) {
				t.Errorf("want exit %d and a message with %q; got %s", tc.code, tc.want, r)
			}
			if tc.code != 0 {
				requireUnchanged(t, "the config dir", before, snapshot(t, h.etc))
			}
		})
	}
}
