package reliability

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

// dockerVersion is the release every run targets: a graph-driver release,
// so that storage-driver is the driver's own name (vfs, overlay2).
const dockerVersion = "20.10.24"

// helperRoleEnv makes the test binary act as a helper process (see
// TestMain) instead of running tests.
const helperRoleEnv = "GRAPHPROBE_RELIABILITY_HELPER"

// hangGuard bounds every process a test starts. It is not an assertion on
// speed: a run that reaches it has hung, and the test says so.
const hangGuard = 3 * time.Minute

var (
	// binDir is a world-readable directory holding the graphprobe binary
	// and a copy of this test binary, so that an unprivileged uid can run
	// them. They are built on first use (fuzz workers and parser-only
	// runs need neither).
	binDir string
	gpBin  string
	// testBin is the copy of this test binary (for helper roles).
	testBin   string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	if role := os.Getenv(helperRoleEnv); role != "" {
		os.Exit(runHelper(role, os.Args[1:]))
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds graphprobe (once per test run) and copies this test
// binary beside it.
func binaries(t testing.TB) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "graphprobe-reliability-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		if err := os.Chmod(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		gpBin, testBin = filepath.Join(dir, "graphprobe"), filepath.Join(dir, "reliability.test")
		build := exec.Command(goTool(), "build", "-o", gpBin, "github.com/graphprobe/graphprobe/cmd/graphprobe")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build graphprobe: %v\n%s", err, out)
			return
		}
		self, err := os.Executable()
		if err != nil {
			buildErr = err
			return
		}
		buildErr = testutil.CopyFile(self, testBin, 0o755)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// goTool finds the go command: on PATH, else in the toolchain that built
// this test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// ---------------------------------------------------------------------------
// Running graphprobe.

// runOpts are how a graphprobe process is started.
type runOpts struct {
	// env is added to the test's environment.
	env []string
	// cred runs the process as another user.
	cred *syscall.Credential
	// dir is the working directory ("" inherits).
	dir string
	// guard replaces hangGuard, for a run expected to end at once.
	guard time.Duration
}

// proc is a started graphprobe process.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	start  time.Time
	stdout *lockedBuffer
	stderr *lockedBuffer
	// lines receives stderr line by line, for tests that wait for a
	// message; closed at EOF.
	lines chan string
	done  chan struct{}
	res   result
	guard time.Duration
}

// result is how a process ended.
type result struct {
	// code is the exit status, -1 when a signal ended the process.
	code int
	// signal is the signal that ended the process, 0 if none.
	signal         syscall.Signal
	stdout, stderr string
	dur            time.Duration
	pid            int
}

func (r result) String() string {
	end := fmt.Sprintf("exit %d", r.code)
	if r.signal != 0 {
		end = "ended by signal " + strconv.Itoa(int(r.signal)) + " (" + r.signal.String() + ")"
	}
	return fmt.Sprintf("%s after %v\nstderr: %s\nstdout: %.1500s", end, r.dur.Round(time.Millisecond), r.stderr, r.stdout)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startGP starts the graphprobe binary in its own process group.
func startGP(t testing.TB, o runOpts, args ...string) *proc {
	t.Helper()
	binaries(t)
	return startProg(t, gpBin, o, args...)
}

// startProg starts prog (gpBin or testBin; call binaries first).
func startProg(t testing.TB, prog string, o runOpts, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), o.env...)
	cmd.Dir = o.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: o.cred}
	p := &proc{t: t, cmd: cmd, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, lines: make(chan string, 64), done: make(chan struct{})}
	cmd.Stdout = p.stdout
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", prog, err)
	}
	var copied sync.WaitGroup
	copied.Add(1)
	go func() {
		defer copied.Done()
		defer close(p.lines)
		r := bufio.NewReader(errPipe)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				p.stderr.Write([]byte(line))
				select {
				case p.lines <- strings.TrimRight(line, "\n"):
				default: // nobody listens: the buffer keeps it
				}
			}
			if err != nil {
				return
			}
		}
	}()
	p.guard = hangGuard
	if o.guard > 0 {
		p.guard = o.guard
	}
	guard := time.AfterFunc(p.guard, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	go func() {
		copied.Wait()
		err := cmd.Wait()
		guard.Stop()
		p.res = result{code: cmd.ProcessState.ExitCode(), dur: time.Since(p.start), pid: cmd.Process.Pid,
			stdout: p.stdout.String(), stderr: p.stderr.String()}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.res.signal = ws.Signal()
		}
		if err != nil && p.res.code == 0 && p.res.signal == 0 {
			p.res.code = -2
			p.res.stderr += "\n(wait: " + err.Error() + ")"
		}
		close(p.done)
	}()
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// wait waits for the process to end; a run that hits hangGuard fails the
// test.
func (p *proc) wait() result {
	p.t.Helper()
	<-p.done
	if p.res.signal == syscall.SIGKILL && p.res.dur >= p.guard {
		p.t.Fatalf("graphprobe %s hung: killed after %v\n%s", strings.Join(p.cmd.Args[1:], " "), p.guard, p.res)
	}
	return p.res
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process (not its group).
func (p *proc) signal(sig syscall.Signal) {
	_ = syscall.Kill(p.pid(), sig)
}

// waitLine returns the first stderr line containing substr; it fails the
// test if the process ends first.
func (p *proc) waitLine(substr string) string {
	p.t.Helper()
	for line := range p.lines {
		if strings.Contains(line, substr) {
			return line
		}
	}
	p.t.Fatalf("graphprobe ended without printing %q\n%s", substr, p.wait())
	return ""
}

// runGP runs graphprobe to the end.
func runGP(t testing.TB, o runOpts, args ...string) result {
	t.Helper()
	return startGP(t, o, args...).wait()
}

// host is one test's setup: a data-root on a real filesystem, a config
// file and a lock file, all in directories the test made.
type host struct {
	fs       *testutil.FS
	dataRoot string // not created: its nearest existing parent is fs.Dir
	etc      string
	config   string
	lock     string
	// state is the --state-dir, where select keeps the record of its proof.
	state string
	// tmp is graphprobe's TMPDIR, so that a scratch dir it makes there
	// (when the data-root is not writable) is the test's to check.
	tmp string
}

func newHost(t testing.TB, kind string, sizeMiB int) *host {
	t.Helper()
	testutil.RequiresRoot(t)
	f := testutil.NewFS(t, kind, sizeMiB)
	h := &host{fs: f, dataRoot: filepath.Join(f.Dir, "docker"), etc: filepath.Join(f.Dir, "etc")}
	if err := os.Mkdir(h.etc, 0o755); err != nil {
		t.Fatal(err)
	}
	h.config = filepath.Join(h.etc, "daemon.json")
	h.lock = filepath.Join(t.TempDir(), "graphprobe.lock")
	h.state = filepath.Join(t.TempDir(), "state")
	h.tmp = t.TempDir()
	return h
}

// opts runs graphprobe with the host's TMPDIR.
func (h *host) opts() runOpts { return runOpts{env: []string{"TMPDIR=" + h.tmp}} }

// mountRoots are the directories whose mounts a leak check compares: the
// test's directory holding the loop mount, and graphprobe's TMPDIR.
func (h *host) mountRoots() []string { return []string{filepath.Dir(h.fs.Dir), h.tmp} }

// selectArgs are the flags every select of a host takes.
func (h *host) selectArgs(extra ...string) []string {
	return append([]string{"select", "--docker-version", dockerVersion, "--config", h.config,
		"--data-root", h.dataRoot, "--lock-file", h.lock, "--state-dir", h.state}, extra...)
}

// scratchDirs are where a run's scratch homes go: the data-root, its
// nearest existing parent, and TMPDIR (a probe's fallback).
func (h *host) scratchDirs() []string { return []string{h.fs.Dir, h.dataRoot, h.tmp} }

// ---------------------------------------------------------------------------
// Leak checks.

// mountsOf lists the mount points in this process's mount table that are at
// or below one of roots. Every path a test's graphprobe may mount on (its
// data-root, scratch dirs, TMPDIR) is below the test's own directories;
// other tests' mounts elsewhere on the machine, scratch-named or not, are
// not ours to judge.
func mountsOf(t testing.TB, roots ...string) []string {
	t.Helper()
	var out []string
	for _, mp := range testutil.MountTable(t) {
		keep := false
		for _, r := range roots {
			if mp == r || strings.HasPrefix(mp, r+"/") {
				keep = true
			}
		}
		if keep {
			out = append(out, mp)
		}
	}
	sort.Strings(out)
	return out
}

// scratchIn lists the entries of dirs named like a graphprobe scratch dir.
func scratchIn(dirs ...string) []string {
	var out []string
	for _, d := range dirs {
		es, _ := os.ReadDir(d)
		for _, e := range es {
			if strings.HasPrefix(e.Name(), hostsys.ScratchPrefix) {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}

// tempsIn lists graphprobe's temporary files in dir
// (".<base>.graphprobe-<pid>.<random>.tmp").
func tempsIn(dir string) []string {
	var out []string
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		n := e.Name()
		if strings.HasPrefix(n, ".") && strings.Contains(n, ".graphprobe-") && strings.HasSuffix(n, ".tmp") {
			out = append(out, n)
		}
	}
	return out
}

// snapshot describes every entry below root (not following symlinks):
// type, mode, owner, size, mtime, content hash or link target. Two equal
// snapshots mean nothing below root was created, removed, written,
// chmodded or chowned.
func snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d mtime=%d.%09d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += fmt.Sprintf(" size=%d sha256=%s", st.Size, hex.EncodeToString(sum[:8]))
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return out
}

// diffSnapshots lists what differs between two snapshots.
func diffSnapshots(before, after map[string]string) []string {
	var out []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			out = append(out, "removed "+k+" ("+v+")")
		} else if w != v {
			out = append(out, "changed "+k+": "+v+" => "+w)
		}
	}
	for k, v := range after {
		if _, ok := before[k]; !ok {
			out = append(out, "created "+k+" ("+v+")")
		}
	}
	sort.Strings(out)
	return out
}

func requireUnchanged(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	if d := diffSnapshots(before, after); len(d) > 0 {
		t.Errorf("%s changed:\n  %s", what, strings.Join(d, "\n  "))
	}
}

// deadPID is a pid no process can have (above the kernel's pid_max), so
// that a scratch name carrying it looks like a dead run's.
func deadPID(t testing.TB) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n + 1
}

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, p string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func mustRun(t testing.TB, name string, args ...string) {
	t.Helper()
	testutil.Run(t, name, args...)
}

// selectDoc is the part of select's JSON document the tests read.
type selectDoc struct {
	Driver     string `json:"driver"`
	DaemonJSON *struct {
		Path    string `json:"path"`
		Changed bool   `json:"changed"`
		Written bool   `json:"written"`
		Backup  string `json:"backup"`
		Diff    string `json:"diff"`
	} `json:"daemonJSON"`
	Candidates []struct {
		Driver    string `json:"driver"`
		Benchmark *struct {
			Error string   `json:"error"`
			Notes []string `json:"notes"`
		} `json:"benchmark"`
	} `json:"candidates"`
	Warnings []string `json:"warnings"`
	Probe    struct {
		Privileged bool `json:"privileged"`
		DataRoot   struct {
			Path       string `json:"path"`
			ProbedPath string `json:"probedPath"`
			Filesystem string `json:"filesystem"`
			Exists     bool   `json:"exists"`
		} `json:"dataRoot"`
	} `json:"probe"`
}

func parseSelect(t testing.TB, r result) selectDoc {
	t.Helper()
	var d selectDoc
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("select output is not JSON: %v\n%s", err, r)
	}
	return d
}

// ---------------------------------------------------------------------------
// inotify: waiting for files to appear without sleeping.

type watcher struct {
	t     testing.TB
	fd    int
	wds   map[int]string
	queue []fsEvent
	buf   []byte
}

type fsEvent struct {
	dir, name string
	mask      uint32
	at        time.Time
}

func newWatcher(t testing.TB) *watcher {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	w := &watcher{t: t, fd: fd, wds: map[int]string{}, buf: make([]byte, 64<<10)}
	t.Cleanup(w.close)
	return w
}

// close is safe to call twice: the fd is closed once.
func (w *watcher) close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
		w.fd = -1
	}
}

func (w *watcher) add(dir string, mask uint32) error {
	wd, err := unix.InotifyAddWatch(w.fd, dir, mask)
	if err != nil {
		return fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	w.wds[wd] = dir
	return nil
}

// next returns the next event, or false when none came within wait (so
// that callers can check whether the process they watch is still alive).
func (w *watcher) next(wait time.Duration) (fsEvent, bool) {
	ev, ok, err := w.nextErr(wait)
	if err != nil {
		w.t.Fatal(err)
	}
	return ev, ok
}

// nextErr is next for goroutines other than the test's.
func (w *watcher) nextErr(wait time.Duration) (fsEvent, bool, error) {
	for len(w.queue) == 0 {
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(wait.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fsEvent{}, false, fmt.Errorf("poll inotify: %w", err)
		}
		if n == 0 {
			return fsEvent{}, false, nil
		}
		m, err := unix.Read(w.fd, w.buf)
		if errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return fsEvent{}, false, fmt.Errorf("read inotify: %w", err)
		}
		now := time.Now()
		for off := 0; off+unix.SizeofInotifyEvent <= m; {
			raw := (*unix.InotifyEvent)(unsafe.Pointer(&w.buf[off]))
			nameBytes := w.buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(raw.Len)]
			name := string(bytes.TrimRight(nameBytes, "\x00"))
			w.queue = append(w.queue, fsEvent{dir: w.wds[int(raw.Wd)], name: name, mask: raw.Mask, at: now})
			off += unix.SizeofInotifyEvent + int(raw.Len)
		}
	}
	ev := w.queue[0]
	w.queue = w.queue[1:]
	return ev, true, nil
}

// waitEntry waits until dir holds an entry whose name satisfies match, and
// returns its path. It watches first and then lists the directory, so an
// entry made in between is not missed. It fails the test when p ends first.
func waitEntry(t testing.TB, p *proc, dir string, match func(string) bool) string {
	t.Helper()
	w := newWatcher(t)
	defer w.close()
	if err := w.add(dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if match(e.Name()) {
			return filepath.Join(dir, e.Name())
		}
	}
	for {
		ev, ok := w.next(100 * time.Millisecond)
		if ok && match(ev.name) {
			return filepath.Join(dir, ev.name)
		}
		if !ok && p != nil && p.exited() {
			t.Fatalf("graphprobe ended before %s appeared in %s\n%s", "the awaited entry", dir, p.wait())
		}
	}
}

func hasPrefix(prefix string) func(string) bool {
	return func(n string) bool { return strings.HasPrefix(n, prefix) }
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
