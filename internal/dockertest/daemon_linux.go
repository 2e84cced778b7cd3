package dockertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mount"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Options configure a daemon.
type Options struct {
	// Cache is the engine to run (default: the 20.10 one, Ensure).
	Cache *Cache
	// DataRoot is dockerd's --data-root (default: a directory of the
	// test's TempDir). It must not be under /run, which dockerd sees as a
	// private tmpfs.
	DataRoot string
	// ConfigFile is the daemon.json to start with ("" for an empty one).
	// dockerd is given a private copy with "deprecated-key-path" added,
	// because 20.10 otherwise writes its trust key to /etc/docker/key.json;
	// a file that is not a JSON object is passed as it is (dockerd then
	// refuses it before it creates anything).
	ConfigFile string
	// StorageDriver is passed as -s when not empty.
	StorageDriver string
	// ExtraArgs are appended to dockerd's arguments.
	ExtraArgs []string
	// Env are added to dockerd's environment (DOCKER_DRIVER=vfs). The
	// test process's DOCKER_*, CONTAINERD_*, proxy and systemd variables
	// are never passed on.
	Env []string
	// Path are the directories searched, after the cache's own, for the
	// programs dockerd runs (fuse-overlayfs, modprobe, mkfs). nil means
	// this process's PATH; PathWithout hides programs from dockerd.
	Path []string
	// StartTimeout bounds the wait for the API to answer (default 60s).
	StartTimeout time.Duration
	// StopGrace is how long dockerd may take to exit after SIGTERM
	// before it is killed (default 30s).
	StopGrace time.Duration
}

// Daemon is a dockerd started by Start.
type Daemon struct {
	Cache      *Cache
	DataRoot   string
	ExecRoot   string
	Socket     string
	ConfigFile string
	PidFile    string
	LogFile    string
	// StartDuration is the time from exec to the first answer of the API.
	StartDuration time.Duration
	// StopDuration is the time from SIGTERM to dockerd's exit.
	StopDuration time.Duration

	opts      Options
	cliConfig string
	cmd       *exec.Cmd
	exited    chan struct{}
	waitErr   error
	ns        *os.File
	nsID      string
	baseline  map[string]bool
	hostAbsnt []string
	stopOnce  sync.Once
	// stopping: Stop sent SIGTERM (dockerd did not exit by itself).
	stopping bool
	killed   bool
	// leftMounts are the mounts dockerd left under its roots.
	leftMounts []string
}

// Refusal is how dockerd refused to start.
type Refusal struct {
	// ExitCode is dockerd's exit status.
	ExitCode int
	// Log is everything dockerd (and its containerd) wrote.
	Log string
	// Entries is Log parsed.
	Entries []Entry
	// Reason is what dockerd printed on its way out, one line per line
	// ("failed to start daemon: error initializing graphdriver: ...").
	Reason string
	// LeftMounts are the mounts dockerd left under its data-root and
	// exec-root on its way out (dropped with its mount namespace).
	LeftMounts []string
}

// hostPaths are the system-wide places a dockerd writes by default; none
// of them may appear because of a test.
var hostPaths = []string{
	"/etc/docker", "/var/lib/docker", "/run/docker", "/run/docker.sock",
	"/run/docker.pid", "/run/containerd", "/var/lib/containerd",
}

// Start starts dockerd and returns once its API answers; it fails the test
// with dockerd's log when dockerd exits or does not answer in time.
// t.Cleanup stops it.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	d, ref := start(t, opts)
	if ref != nil {
		t.Fatalf("dockerd exited with status %d instead of starting:\n%s\n--- dockerd log ---\n%s", ref.ExitCode, ref.Reason, tail(ref.Log, 6000))
	}
	return d
}

// TryStart starts dockerd and returns either the running daemon or, when
// dockerd exited instead of answering, how it refused.
func TryStart(t testing.TB, opts Options) (*Daemon, *Refusal) {
	t.Helper()
	d, ref := start(t, opts)
	if ref != nil {
		return nil, ref
	}
	return d, nil
}

// StartExpectFailure starts dockerd with a setup it is expected to refuse
// and returns how it refused. It fails the test when dockerd starts.
func StartExpectFailure(t testing.TB, opts Options) *Refusal {
	t.Helper()
	d, ref := start(t, opts)
	if ref == nil {
		driver := "unknown"
		if i, err := d.InfoErr(); err == nil {
			driver = i.Driver
		}
		d.Stop(t)
		t.Fatalf("dockerd started with storage driver %s although it was expected to refuse\n--- dockerd log ---\n%s", driver, tail(d.Log(), 6000))
	}
	return ref
}

func start(t testing.TB, opts Options) (*Daemon, *Refusal) {
	t.Helper()
	c := opts.Cache
	if c == nil {
		c = Ensure(t)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = 30 * time.Second
	}
	mountBin, err := exec.LookPath("mount")
	if err != nil {
		t.Fatalf("start dockerd: find mount(8): %v", err)
	}
	base := shortTempDir(t)
	if opts.DataRoot == "" {
		opts.DataRoot = filepath.Join(t.TempDir(), "docker")
	}
	if !filepath.IsAbs(opts.DataRoot) {
		t.Fatalf("start dockerd: data-root %q: must be absolute", opts.DataRoot)
	}
	if underRun(opts.DataRoot) {
		t.Fatalf("start dockerd: data-root %s: under /run, which dockerd sees as a private tmpfs", opts.DataRoot)
	}
	d := &Daemon{
		Cache:     c,
		DataRoot:  opts.DataRoot,
		ExecRoot:  filepath.Join(base, "exec"),
		Socket:    filepath.Join(base, "d.sock"),
		PidFile:   filepath.Join(base, "dockerd.pid"),
		LogFile:   filepath.Join(base, "dockerd.log"),
		opts:      opts,
		cliConfig: filepath.Join(base, "cli"),
		exited:    make(chan struct{}),
		baseline:  map[string]bool{},
	}
	for _, dir := range []string{d.ExecRoot, d.cliConfig} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatalf("start dockerd: %v", err)
		}
	}
	if d.ConfigFile, err = privateConfig(opts.ConfigFile, base, c.Release.Name == "20.10"); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	for _, m := range hostMountsUnder(d.DataRoot) {
		d.baseline[m] = true
	}
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			d.hostAbsnt = append(d.hostAbsnt, p)
		}
	}

	args := []string{
		"--data-root", d.DataRoot,
		"--exec-root", d.ExecRoot,
		"--pidfile", d.PidFile,
		"-H", "unix://" + d.Socket,
		"--config-file", d.ConfigFile,
		"--iptables=false", "--bridge=none", "--ip-forward=false", "--ip-masq=false",
	}
	if opts.StorageDriver != "" {
		args = append(args, "-s", opts.StorageDriver)
	}
	args = append(args, opts.ExtraArgs...)
	logf, err := os.OpenFile(d.LogFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	defer logf.Close()

	// sh puts a private tmpfs on /run (and on /etc/docker where the host
	// has one) in the new mount namespace, then becomes dockerd (same pid,
	// same parent-death signal).
	script := `"$0" -t tmpfs -o mode=0755,size=64m graphprobe-run /run && ` +
		`{ [ ! -d /etc/docker ] || "$0" -t tmpfs -o mode=0755,size=1m graphprobe-etc /etc/docker; } && exec "$@"`
	d.cmd = exec.Command("/bin/sh", append([]string{"-c", script, mountBin, c.Bin("dockerd")}, args...)...)
	d.cmd.Env = d.env()
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{
		// Go's fork makes every mount private in the new namespace, so
		// nothing dockerd mounts or unmounts reaches the host.
		Unshareflags: unix.CLONE_NEWNS | unix.CLONE_NEWNET,
		// If the test binary dies, dockerd shuts down cleanly.
		Pdeathsig: syscall.SIGTERM,
	}
	if err := acquireSlot(c); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	begin := time.Now()
	if err := d.launch(); err != nil {
		releaseSlot()
		t.Fatalf("start dockerd: %v", err)
	}
	t.Cleanup(func() { d.Stop(t) })

	client := unixClient(d.Socket, 2*time.Second)
	deadline := time.Now().Add(opts.StartTimeout)
	for {
		select {
		case <-d.exited:
			d.Stop(t)
			log := d.Log()
			entries := ParseLog(log)
			return d, &Refusal{
				ExitCode:   d.cmd.ProcessState.ExitCode(),
				Log:        log,
				Entries:    entries,
				Reason:     strings.Join(Plain(entries), "\n"),
				LeftMounts: d.leftMounts,
			}
		default:
		}
		if ping(client) == nil {
			d.StartDuration = time.Since(begin)
			return d, nil
		}
		if time.Now().After(deadline) {
			d.Stop(t)
			t.Fatalf("start dockerd: no answer on %s within %s\n--- dockerd log ---\n%s", d.Socket, opts.StartTimeout, tail(d.Log(), 6000))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Daemons of one test process may overlap, but those of different
// processes (go test runs packages in parallel) take turns: a dockerd
// start is mostly CPU, and the machines this runs on have two cores.
var slot struct {
	sync.Mutex
	n    int
	lock *os.File
}

// acquireSlot takes the machine-wide daemon lock (dir/daemons.lock of the
// cache) when this process starts its first running daemon.
func acquireSlot(c *Cache) error {
	slot.Lock()
	defer slot.Unlock()
	if slot.n == 0 {
		f, err := os.OpenFile(filepath.Join(c.Dir, "daemons.lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return fmt.Errorf("open daemon lock: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		slot.lock = f
	}
	slot.n++
	return nil
}

// releaseSlot gives the lock back when this process's last daemon stopped.
func releaseSlot() {
	slot.Lock()
	defer slot.Unlock()
	if slot.n == 0 {
		return
	}
	slot.n--
	if slot.n == 0 {
		slot.lock.Close() // closing the last descriptor releases the flock
		slot.lock = nil
	}
}

// launch starts dockerd from a goroutine locked to its OS thread: the
// parent-death signal is sent when the thread that forked dies, not the
// process, so that thread must live until dockerd is reaped.
func (d *Daemon) launch() error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := d.cmd.Start(); err != nil {
			started <- err
			close(d.exited)
			return
		}
		d.holdNamespace()
		started <- nil
		d.waitErr = d.cmd.Wait()
		close(d.exited)
		runtime.UnlockOSThread()
	}()
	return <-started
}

// holdNamespace opens dockerd's mount namespace so that the mounts it
// leaves can be listed after it exits; the namespace and every mount in it
// go when the handle is closed. It runs before dockerd can be reaped, so
// the pid cannot belong to another process yet; a dockerd that already
// exited has no namespace link and is not held.
func (d *Daemon) holdNamespace() {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/mnt", d.cmd.Process.Pid))
	if err != nil {
		return
	}
	id, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	own, _ := os.Readlink("/proc/thread-self/ns/mnt")
	if err != nil || id == own {
		// Never treat our own namespace as dockerd's: every process in it
		// would look like one dockerd left behind.
		f.Close()
		return
	}
	d.ns, d.nsID = f, id
}

// env is dockerd's environment: this process's, without what would change
// dockerd's choices or reach outside the test, with the cache's programs
// first on PATH.
func (d *Daemon) env() []string {
	drop := []string{"DOCKER_", "CONTAINERD_", "_DOCKERD_", "ROOTLESSKIT_", "NOTIFY_SOCKET=", "LISTEN_",
		"HTTP_PROXY=", "HTTPS_PROXY=", "NO_PROXY=", "http_proxy=", "https_proxy=", "no_proxy=",
		"PATH=", "LD_LIBRARY_PATH=", "XDG_RUNTIME_DIR="}
	var env []string
outer:
	for _, kv := range os.Environ() {
		for _, p := range drop {
			if strings.HasPrefix(kv, p) {
				continue outer
			}
		}
		env = append(env, kv)
	}
	path := d.opts.Path
	if path == nil {
		path = filepath.SplitList(os.Getenv("PATH"))
	}
	env = append(env, "PATH="+strings.Join(append(d.Cache.BinDirs(), path...), string(os.PathListSeparator)))
	if d.Cache.LibPath != "" {
		env = append(env, "LD_LIBRARY_PATH="+d.Cache.LibPath)
	}
	return append(env, d.opts.Env...)
}

// privateConfig writes the daemon.json dockerd is given. keyPath: the
// release still writes a trust key (20.10), which is sent to dir.
func privateConfig(src, dir string, keyPath bool) (string, error) {
	dst := filepath.Join(dir, "daemon.json")
	if src != "" && !keyPath {
		// dockerd reads exactly the bytes under test.
		return src, nil
	}
	cfg := map[string]any{}
	if src != "" {
		data, err := os.ReadFile(src)
		if err != nil {
			return "", fmt.Errorf("read daemon config: %w", err)
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			return src, nil // dockerd refuses it before writing anything
		}
	}
	if _, ok := cfg["deprecated-key-path"]; !ok && keyPath {
		cfg["deprecated-key-path"] = filepath.Join(dir, "key.json")
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", fmt.Errorf("write daemon config: %w", err)
	}
	if err := os.WriteFile(dst, append(data, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("write daemon config: %w", err)
	}
	return dst, nil
}

// shortTempDir makes a directory for the socket and exec-root whose paths
// stay well inside the 108-byte limit of a unix socket address (the
// deepest is <exec-root>/containerd/containerd.sock.ttrpc).
func shortTempDir(t testing.TB) string {
	t.Helper()
	parent := os.TempDir()
	if len(parent) > 32 || underRun(parent) {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "gpd-")
	if err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func underRun(p string) bool {
	p = filepath.Clean(p)
	for _, r := range []string{"/run", "/var/run"} {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

func unixClient(sock string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var dl net.Dialer
				return dl.DialContext(ctx, "unix", sock)
			},
			DisableKeepAlives: true,
		},
	}
}

func ping(c *http.Client) error {
	resp, err := c.Get("http://docker/_ping")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ping dockerd: %s", resp.Status)
	}
	return nil
}

// Running reports whether dockerd has not exited.
func (d *Daemon) Running() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// Log returns what dockerd and its containerd have written so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.LogFile)
	return string(b)
}

// Stop ends dockerd (SIGTERM, then SIGKILL after the grace period) and
// checks what it left: mounts under its data-root or exec-root after a
// clean exit, processes in its namespace, host paths it created. It is
// idempotent and also run by t.Cleanup.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	d.stopOnce.Do(func() { d.stop(t) })
}

func (d *Daemon) stop(t testing.TB) {
	t.Helper()
	defer releaseSlot()
	if d.Running() {
		d.stopping = true
		begin := time.Now()
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
			d.StopDuration = time.Since(begin)
		case <-time.After(d.opts.StopGrace):
			d.killed = true
			_ = d.cmd.Process.Kill()
			<-d.exited
			t.Errorf("dockerd did not exit within %s of SIGTERM and was killed\n--- dockerd log ---\n%s", d.opts.StopGrace, tail(d.Log(), 4000))
		}
	}
	if d.ns != nil {
		d.reapNamespace(t)
		d.checkNamespaceMounts(t)
		d.ns.Close()
		d.ns = nil
	}
	// Nothing dockerd mounts can reach the host's table, so anything new
	// here is a bug of the harness itself; unmount it lazily all the same.
	for _, m := range hostMountsUnder(d.DataRoot) {
		if !d.baseline[m] {
			t.Errorf("mount %s appeared on the host under dockerd's data-root", m)
			_ = mount.Unmount(m)
		}
	}
	// Reported, never removed: a system Docker installed meanwhile could
	// own it.
	for _, p := range d.hostAbsnt {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s appeared on the host while a test dockerd ran", p)
		}
	}
}

// reapNamespace waits for the processes dockerd started (containerd, shims)
// to leave its namespace, and kills those still there after a while.
func (d *Daemon) reapNamespace(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := processesIn(d.nsID)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("dockerd left processes running: %s; killing them", strings.Join(left, ", "))
			for _, p := range left {
				var pid int
				fmt.Sscanf(p, "%d", &pid)
				if pid > 0 {
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
			time.Sleep(100 * time.Millisecond)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkNamespaceMounts fails the test when dockerd exited cleanly and left
// mounts under its data-root or exec-root. Whatever is left is dropped
// with the namespace when the caller closes it.
func (d *Daemon) checkNamespaceMounts(t testing.TB) {
	t.Helper()
	mounts, err := mountsInNamespace(d.ns)
	if err != nil {
		t.Errorf("list dockerd's mounts: %v", err)
		return
	}
	var leaked []string
	for _, m := range mounts {
		if d.baseline[m.Mountpoint] {
			continue
		}
		for _, root := range []string{d.DataRoot, d.ExecRoot} {
			if m.Mountpoint == root || strings.HasPrefix(m.Mountpoint, root+"/") {
				leaked = append(leaked, fmt.Sprintf("%s (%s)", m.Mountpoint, m.FSType))
				break
			}
		}
	}
	if len(leaked) == 0 {
		return
	}
	d.leftMounts = leaked
	switch {
	case d.killed:
		t.Logf("dockerd was killed and left %d mounts, dropped with its namespace: %s", len(leaked), strings.Join(leaked, ", "))
		return
	case !d.stopping:
		// dockerd 20.10 leaves its data-root bind-mounted on itself when
		// it refuses to start: that is its behaviour, not a harness leak.
		t.Logf("dockerd exited by itself and left %d mounts, dropped with its namespace: %s", len(leaked), strings.Join(leaked, ", "))
		return
	}
	t.Errorf("dockerd exited and left %d mounts (dropped with its namespace): %s", len(leaked), strings.Join(leaked, ", "))
}

// processesIn lists "pid (comm)" of the processes in mount namespace id.
func processesIn(id string) []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		if name == "" || name[0] < '0' || name[0] > '9' {
			continue
		}
		link, err := os.Readlink(filepath.Join("/proc", name, "ns", "mnt"))
		if err != nil || link != id {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", name, "comm"))
		out = append(out, fmt.Sprintf("%s (%s)", name, strings.TrimSpace(string(comm))))
	}
	return out
}

// mountsInNamespace reads the mount table of the namespace ns refers to.
// It runs nsenter rather than joining the namespace from a thread of this
// process: a goroutine that joins a namespace and ends while locked kills
// its thread, unless that thread is the process's main one, which the Go
// runtime parks for good instead, namespace and all. /proc/self then
// shows that namespace to every later reader, and the parked thread keeps
// dockerd's leftover mounts (and their loop devices) alive until exit.
func mountsInNamespace(ns *os.File) ([]*mountinfo.Info, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--mount=/proc/self/fd/3", "--", "cat", "/proc/self/mountinfo")
	cmd.ExtraFiles = []*os.File{ns}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("read dockerd's mount table: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	mounts, err := mountinfo.GetMountsFromReader(bytes.NewReader(out), nil)
	if err != nil {
		return nil, fmt.Errorf("parse dockerd's mount table: %w", err)
	}
	return mounts, nil
}

// hostMountsUnder lists the mount points at or below dir in this
// process's namespace, nil when the table cannot be read. mountinfo reads
// /proc/thread-self, not /proc/self: the latter is the main thread's
// view, which code that unshares a locked thread may have moved into a
// private namespace (see mountsInNamespace).
func hostMountsUnder(dir string) []string {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil
	}
	out := make([]string, len(mounts))
	for i, m := range mounts {
		out[i] = m.Mountpoint
	}
	return out
}

// DockerErr runs the docker CLI against this daemon with a private
// DOCKER_CONFIG and returns its standard output.
func (d *Daemon) DockerErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.Cache.Bin("docker"), append([]string{"-H", "unix://" + d.Socket}, args...)...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "DOCKER_CONFIG="+d.cliConfig)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Docker runs the docker CLI and fails the test on error.
func (d *Daemon) Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := d.DockerErr(args...)
	if err != nil {
		t.Fatalf("%v\n--- dockerd log ---\n%s", err, tail(d.Log(), 4000))
	}
	return out
}

// InfoErr asks the daemon how it stores images.
func (d *Daemon) InfoErr() (Info, error) {
	out, err := d.DockerErr("info", "--format", "{{json .}}")
	if err != nil {
		return Info{}, err
	}
	return ParseInfo([]byte(out))
}

// Info asks the daemon how it stores images and fails the test on error.
func (d *Daemon) Info(t testing.TB) Info {
	t.Helper()
	i, err := d.InfoErr()
	if err != nil {
		t.Fatalf("%v\n--- dockerd log ---\n%s", err, tail(d.Log(), 4000))
	}
	return i
}

// Import makes image ref from a root filesystem tarball (docker import:
// no registry involved) and returns the image id.
func (d *Daemon) Import(t testing.TB, tarball, ref string) string {
	t.Helper()
	return strings.TrimSpace(d.Docker(t, "import", tarball, ref))
}

// CreateContainer creates (does not start) a container of a local image
// and returns its full id. It never pulls and joins no network.
func (d *Daemon) CreateContainer(t testing.TB, image string, cmd ...string) string {
	t.Helper()
	args := append([]string{"create", "--pull", "never", "--network", "none", image}, cmd...)
	return strings.TrimSpace(d.Docker(t, args...))
}

// Layers reads a container's layer chain from the data-root.
func (d *Daemon) Layers(t testing.TB, containerID string) Layers {
	t.Helper()
	l, err := ReadLayers(d.DataRoot, containerID)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// PathWithout returns a PATH (one directory) that offers every program of
// this process's PATH except the named ones, so a test can show dockerd a
// host without, say, fuse-overlayfs.
func PathWithout(t testing.TB, names ...string) []string {
	t.Helper()
	dir := t.TempDir()
	hide := map[string]bool{}
	for _, n := range names {
		hide[n] = true
	}
	for _, p := range filepath.SplitList(os.Getenv("PATH")) {
		ents, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if hide[e.Name()] || e.IsDir() {
				continue
			}
			link := filepath.Join(dir, e.Name())
			if _, err := os.Lstat(link); err == nil {
				continue // an earlier PATH entry wins, as in a lookup
			}
			if err := os.Symlink(filepath.Join(p, e.Name()), link); err != nil {
				t.Fatalf("path without %v: %v", names, err)
			}
		}
	}
	return []string{dir}
}
