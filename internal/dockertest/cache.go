package dockertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

// CacheEnv names the directory of the unpacked engine, overriding the
// default under the user's cache directory.
const CacheEnv = "GRAPHPROBE_DOCKER_CACHE"

// WantVersion is the engine release the harness and the end-to-end tests
// are written for: the cache is refused when apt hands out another one,
// because the tests assert 20.10's priority list and messages.
const WantVersion = "20.10"

// Packages are the Debian packages unpacked into the cache. Beyond the
// engine, containerd and runc: tini provides docker-init (for --init), and
// libdevmapper1.02.1 and libudev1 are the shared libraries dockerd links
// against that a minimal system may lack (used only when the host has none).
var Packages = []string{"docker.io", "containerd", "runc", "tini", "libdevmapper1.02.1", "libudev1"}

// Cache is an unpacked engine.
type Cache struct {
	// Dir holds the cache: debs/, root/, the lock and the ready stamp.
	Dir string
	// Root is the unpacked tree (root/usr/sbin/dockerd, ...).
	Root string
	// Version is the first line of `dockerd --version`.
	Version string
	// LibPath is the LD_LIBRARY_PATH dockerd needs, "" when the host's
	// own libraries satisfy it.
	LibPath string
}

// Bin returns the path of a program in the unpacked tree.
func (c *Cache) Bin(name string) string {
	for _, d := range c.BinDirs() {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return filepath.Join(c.Root, "usr", "bin", name)
}

// BinDirs are the directories that must lead dockerd's PATH: it finds
// containerd, containerd-shim-runc-v2, runc, docker-init and docker-proxy
// there.
func (c *Cache) BinDirs() []string {
	return []string{filepath.Join(c.Root, "usr", "bin"), filepath.Join(c.Root, "usr", "sbin")}
}

// DefaultCacheDir is where the cache lives when CacheEnv is unset: under the
// user's cache directory, or /var/cache when there is none (root without
// HOME in a service).
func DefaultCacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "graphprobe", "docker-"+WantVersion)
	}
	return filepath.Join("/var/cache/graphprobe-test", "docker-"+WantVersion)
}

var (
	ensureMu sync.Mutex
	ensured  = map[string]*Cache{}
)

// Ensure returns the engine cache, filling it on first use. It skips the
// test when the engine cannot be had here (not root, no apt-get, no route
// to Debian's archive and no cache yet), and fails it instead under
// GRAPHPROBE_REQUIRE_ROOT=1, where a skip would hide a broken setup.
func Ensure(t testing.TB) *Cache {
	t.Helper()
	testutil.RequiresRoot(t)
	dir := DefaultCacheDir()
	ensureMu.Lock()
	defer ensureMu.Unlock()
	if c, ok := ensured[dir]; ok {
		return c
	}
	var log bytes.Buffer
	c, err := Fill(context.Background(), dir, &log)
	if err != nil {
		msg := fmt.Sprintf("docker engine cache %s unavailable: %v", dir, err)
		if out := strings.TrimSpace(log.String()); out != "" {
			msg += "\n" + tail(out, 4000)
		}
		if os.Getenv(testutil.RequireRootEnv) == "1" {
			t.Fatalf("%s\n(%s=1 forbids skipping)", msg, testutil.RequireRootEnv)
		}
		t.Skip(msg)
	}
	ensured[dir] = c
	return c
}

// Fill makes dir a ready cache, or checks that it already is one. It is
// idempotent and safe to run from several processes at once: the work is
// done under an exclusive lock on dir/.lock and the unpacked tree is
// renamed into place only once complete. Progress and command output go to
// log.
func Fill(ctx context.Context, dir string, log io.Writer) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open cache lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock cache %s: %w", dir, err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)

	c := &Cache{Dir: dir, Root: filepath.Join(dir, "root")}
	if stamp, err := os.ReadFile(filepath.Join(dir, "ready")); err == nil {
		if err := c.verify(ctx); err == nil {
			return c, nil
		} else {
			fmt.Fprintf(log, "cache stamped %q but unusable (%v): rebuilding\n", strings.TrimSpace(string(stamp)), err)
		}
	}
	os.Remove(filepath.Join(dir, "ready"))

	debs := filepath.Join(dir, "debs")
	if !haveDebs(debs) {
		if err := download(ctx, dir, log); err != nil {
			return nil, err
		}
	}
	if err := unpack(ctx, dir, debs, log); err != nil {
		return nil, err
	}
	if err := c.verify(ctx); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), []byte(c.Version+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("stamp cache: %w", err)
	}
	return c, nil
}

// haveDebs reports whether a previous fill left every package's .deb.
func haveDebs(debs string) bool {
	for _, p := range Packages {
		m, _ := filepath.Glob(filepath.Join(debs, p+"_*.deb"))
		if len(m) != 1 {
			return false
		}
	}
	return true
}

// download fetches the packages into dir/debs through a scratch directory.
// apt-get update is run only when the first try fails: the package lists
// of a machine are usually fresh enough, and an update costs a round trip
// to every configured archive.
func download(ctx context.Context, dir string, log io.Writer) error {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("download %s: no apt-get on this system: %w", strings.Join(Packages, " "), err)
	}
	tmp, err := os.MkdirTemp(dir, "debs-")
	if err != nil {
		return fmt.Errorf("download packages: %w", err)
	}
	defer os.RemoveAll(tmp)
	get := func() error {
		return run(ctx, tmp, log, 10*time.Minute, "apt-get", append([]string{"download"}, Packages...)...)
	}
	if err := get(); err != nil {
		fmt.Fprintf(log, "apt-get download failed (%v): running apt-get update\n", err)
		if uerr := run(ctx, "", log, 10*time.Minute, "apt-get", "update"); uerr != nil {
			return fmt.Errorf("download packages: %w (apt-get update: %v)", err, uerr)
		}
		if err := get(); err != nil {
			return fmt.Errorf("download packages: %w", err)
		}
	}
	if !haveDebs(tmp) {
		return fmt.Errorf("download packages: apt-get left no single .deb for each of %s in %s", strings.Join(Packages, " "), tmp)
	}
	debs := filepath.Join(dir, "debs")
	if err := os.RemoveAll(debs); err != nil {
		return fmt.Errorf("replace %s: %w", debs, err)
	}
	if err := os.Rename(tmp, debs); err != nil {
		return fmt.Errorf("move packages into %s: %w", debs, err)
	}
	return nil
}

// unpack extracts every .deb into a scratch tree and renames it to
// dir/root, so a crash mid-way never leaves a half tree that looks ready.
func unpack(ctx context.Context, dir, debs string, log io.Writer) error {
	tmp, err := os.MkdirTemp(dir, "root-")
	if err != nil {
		return fmt.Errorf("unpack packages: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, p := range Packages {
		m, _ := filepath.Glob(filepath.Join(debs, p+"_*.deb"))
		if len(m) != 1 {
			return fmt.Errorf("unpack %s: want one .deb in %s, found %d", p, debs, len(m))
		}
		if err := run(ctx, "", log, 5*time.Minute, "dpkg", "-x", m[0], tmp); err != nil {
			return fmt.Errorf("unpack %s: %w", m[0], err)
		}
	}
	// Debian's dockerd looks for docker-init, which Debian ships as tini.
	initPath := filepath.Join(tmp, "usr", "bin", "docker-init")
	if _, err := os.Lstat(initPath); errors.Is(err, os.ErrNotExist) {
		if err := os.Symlink("tini-static", initPath); err != nil {
			return fmt.Errorf("link docker-init: %w", err)
		}
	}
	root := filepath.Join(dir, "root")
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("replace %s: %w", root, err)
	}
	if err := os.Rename(tmp, root); err != nil {
		return fmt.Errorf("move unpacked tree into %s: %w", root, err)
	}
	return nil
}

// verify checks that the unpacked dockerd runs and is the release the
// tests are written for, and decides whether it needs the cache's copies
// of its shared libraries.
func (c *Cache) verify(ctx context.Context) error {
	for _, name := range []string{"dockerd", "docker", "containerd", "containerd-shim-runc-v2", "runc", "docker-init"} {
		if _, err := os.Stat(c.Bin(name)); err != nil {
			return fmt.Errorf("verify cache: %w", err)
		}
	}
	c.LibPath = ""
	if missingLibs(ctx, c.Bin("dockerd"), "") {
		var dirs []string
		for _, pat := range []string{"lib/*-linux-gnu", "usr/lib/*-linux-gnu"} {
			m, _ := filepath.Glob(filepath.Join(c.Root, pat))
			dirs = append(dirs, m...)
		}
		c.LibPath = strings.Join(dirs, ":")
		if missingLibs(ctx, c.Bin("dockerd"), c.LibPath) {
			return fmt.Errorf("verify cache: %s has unresolved shared libraries even with %s (see ldd)", c.Bin("dockerd"), c.LibPath)
		}
	}
	cmd := exec.CommandContext(ctx, c.Bin("dockerd"), "--version")
	if c.LibPath != "" {
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+c.LibPath)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("verify cache: dockerd --version: %w: %s", err, bytes.TrimSpace(out))
	}
	c.Version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	if !strings.HasPrefix(c.Version, "Docker version "+WantVersion+".") {
		return fmt.Errorf("verify cache: dockerd reports %q, the tests need %s (point %s at a cache of Debian 12's docker.io)", c.Version, WantVersion, CacheEnv)
	}
	return nil
}

// missingLibs reports whether ldd finds an unresolved library for bin.
func missingLibs(ctx context.Context, bin, libPath string) bool {
	cmd := exec.CommandContext(ctx, "ldd", bin)
	if libPath != "" {
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+libPath)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		// A static binary makes ldd exit 1 ("not a dynamic executable"):
		// nothing to resolve. Any other failure is left to --version.
		return false
	}
	return bytes.Contains(out, []byte("not found"))
}

// run runs a command, appending its output to log, and returns an error
// that carries the tail of the output.
func run(ctx context.Context, dir string, log io.Writer, timeout time.Duration, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	fmt.Fprintf(log, "+ %s %s\n", name, strings.Join(args, " "))
	err := cmd.Run()
	log.Write(out.Bytes())
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail(out.String(), 600))
	}
	return nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
