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
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/debapt"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

// CacheEnv names the directory that holds every unpacked engine, overriding
// the default under the user's cache directory.
const CacheEnv = "GRAPHPROBE_DOCKER_CACHE"

// OracleEnv names the xz-compressed dockerd 29 binary, overriding the one
// in the shared oracles directory beside the repository.
const OracleEnv = "GRAPHPROBE_DOCKERD29"

// Release is one Docker engine release the end-to-end tests run: Debian's
// packages of one suite, unpacked, and for a release no suite ships yet a
// dockerd built from moby's tag that takes the place of the suite's.
type Release struct {
	// Name is the release line, which names the subtests ("20.10").
	Name string
	// Suite is the Debian suite whose packages are unpacked.
	Suite string
	// Packages are the Debian packages unpacked into the release's tree.
	// Beyond the engine, containerd and runc: tini provides docker-init,
	// and the libraries are those dockerd links against that a minimal
	// system may lack (used only when the host has none).
	Packages []string
	// Dockerd, when set, is the xz-compressed dockerd that replaces the
	// suite's (see DockerdPath).
	Dockerd string
}

// Releases are the engines every end-to-end test runs against, oldest
// first. Their priority lists and image stores differ most where users
// upgrade: 20.10 still has aufs and overlay, 26 and 28 only the graph
// drivers of 25+, 29 uses the containerd image store by default.
var Releases = []Release{
	{Name: "20.10", Suite: "bookworm", Packages: []string{"docker.io", "containerd", "runc", "tini", "libdevmapper1.02.1", "libudev1"}},
	{Name: "26.1", Suite: "trixie", Packages: []string{"docker.io", "docker-cli", "containerd", "runc", "tini"}},
	{Name: "28.5", Suite: "sid", Packages: []string{"docker.io", "docker-cli", "containerd", "runc", "tini"}},
	{Name: "29.7", Suite: "sid", Packages: []string{"docker.io", "docker-cli", "containerd", "runc", "tini"}, Dockerd: "dockerd-29.7.2.xz"},
}

// glibcPackages are unpacked beside a release's tree when one of its
// programs needs a newer C library than the host's: they run through that
// tree's dynamic loader.
var glibcPackages = []string{"libc6", "libseccomp2", "libgcc-s1"}

// ReleaseNamed returns the release of that name.
func ReleaseNamed(name string) (Release, bool) {
	for _, r := range Releases {
		if r.Name == name {
			return r, true
		}
	}
	return Release{}, false
}

// Cache is an unpacked engine.
type Cache struct {
	Release Release
	// Dir holds the release's cache: debs/, root/, glibc/, wrap/, the
	// ready stamp.
	Dir string
	// Root is the unpacked tree (root/usr/sbin/dockerd, ...).
	Root string
	// Version is the first line of `dockerd --version`.
	Version string
	// LibPath is the LD_LIBRARY_PATH dockerd needs, "" when the host's
	// own libraries satisfy it.
	LibPath string
}

// Semver is the engine's version as graphprobe spells it ("28.5.2").
func (c *Cache) Semver() string {
	f := strings.Fields(strings.TrimPrefix(c.Version, "Docker version "))
	if len(f) == 0 {
		return ""
	}
	v := strings.TrimSuffix(f[0], ",")
	if i := strings.IndexAny(v, "+~-"); i >= 0 {
		v = v[:i]
	}
	return v
}

// Bin returns the path of a program of the engine: its wrapper when it
// needs the release's own C library, else the unpacked binary.
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
	return []string{filepath.Join(c.Dir, "wrap"), filepath.Join(c.Root, "usr", "bin"), filepath.Join(c.Root, "usr", "sbin")}
}

// DefaultCacheDir is where the engines live when CacheEnv is unset: under
// the user's cache directory, or /var/cache when there is none (root
// without HOME in a service).
func DefaultCacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "graphprobe", "engines")
	}
	return "/var/cache/graphprobe-test/engines"
}

// DockerdPath is where the dockerd of a release that replaces the suite's
// is read from: OracleEnv, else the shared oracles directory that sits
// beside the repository.
func DockerdPath(r Release) (string, error) {
	if p := os.Getenv(OracleEnv); p != "" {
		return p, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "oracles", r.Dockerd), nil
		}
		if dir == filepath.Dir(dir) {
			return "", fmt.Errorf("find %s: no go.mod above %s; set %s", r.Dockerd, wd, OracleEnv)
		}
	}
}

var (
	ensureMu sync.Mutex
	ensured  = map[string]*Cache{}
)

// Ensure returns the 20.10 engine, the one the single-release tests are
// written for.
func Ensure(t testing.TB) *Cache { return EnsureRelease(t, "20.10") }

// EnsureAll returns every release's engine, oldest first.
func EnsureAll(t testing.TB) []*Cache {
	t.Helper()
	var out []*Cache
	for _, r := range Releases {
		out = append(out, EnsureRelease(t, r.Name))
	}
	return out
}

// EnsureRelease returns a release's engine, filling its cache on first
// use. It skips the test when the engine cannot be had here (not root, no
// apt-get, no route to Debian's archive and no cache yet), and fails it
// instead under GRAPHPROBE_REQUIRE_ROOT=1, where a skip would hide a broken
// setup.
func EnsureRelease(t testing.TB, name string) *Cache {
	t.Helper()
	testutil.RequiresRoot(t)
	rel, ok := ReleaseNamed(name)
	if !ok {
		t.Fatalf("no engine release %q", name)
	}
	base := DefaultCacheDir()
	ensureMu.Lock()
	defer ensureMu.Unlock()
	if c, ok := ensured[rel.Name]; ok {
		return c
	}
	var log bytes.Buffer
	c, err := Fill(context.Background(), base, rel, &log)
	if err != nil {
		msg := fmt.Sprintf("docker %s engine cache under %s unavailable: %v", rel.Name, base, err)
		if out := strings.TrimSpace(log.String()); out != "" {
			msg += "\n" + tail(out, 4000)
		}
		if os.Getenv(testutil.RequireRootEnv) == "1" {
			t.Fatalf("%s\n(%s=1 forbids skipping)", msg, testutil.RequireRootEnv)
		}
		t.Skip(msg)
	}
	ensured[rel.Name] = c
	return c
}

// Fill makes base/<release> a ready cache, or checks that it already is
// one. It is idempotent and safe to run from several processes at once:
// the work is done under an exclusive lock on base/.lock and each tree is
// renamed into place only once complete. Progress and command output go
// to log.
func Fill(ctx context.Context, base string, rel Release, log io.Writer) (*Cache, error) {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("create cache dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(base, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open cache lock: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock cache %s: %w", base, err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)

	dir := filepath.Join(base, rel.Name)
	c := &Cache{Release: rel, Dir: dir, Root: filepath.Join(dir, "root")}
	if stamp, err := os.ReadFile(filepath.Join(dir, "ready")); err == nil {
		if err := c.verify(ctx); err == nil {
			return c, nil
		} else {
			fmt.Fprintf(log, "cache stamped %q but unusable (%v): rebuilding\n", strings.TrimSpace(string(stamp)), err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cache dir: %w", err)
	}
	os.Remove(filepath.Join(dir, "ready"))

	apt := debapt.State{Dir: filepath.Join(base, "apt"), Suites: suites(), Log: log}
	debs := filepath.Join(dir, "debs")
	if !haveDebs(debs, rel.Packages) {
		if err := download(ctx, apt, rel.Suite, rel.Packages, debs); err != nil {
			return nil, err
		}
	}
	if err := unpack(ctx, filepath.Join(dir, "root"), debs, rel.Packages, log); err != nil {
		return nil, err
	}
	if rel.Dockerd != "" {
		if err := replaceDockerd(ctx, c, rel, log); err != nil {
			return nil, err
		}
	}
	if err := c.wrap(ctx, apt, log); err != nil {
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

// download fetches pkgs of suite into dest through a scratch directory,
// which replaces dest only once every package is there.
func download(ctx context.Context, apt debapt.State, suite string, pkgs []string, dest string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dest), "debs-")
	if err != nil {
		return fmt.Errorf("download packages: %w", err)
	}
	defer os.RemoveAll(tmp)
	var names []string
	for _, p := range pkgs {
		names = append(names, p+"/"+suite)
	}
	if err := apt.Download(ctx, tmp, names...); err != nil {
		return err
	}
	if !haveDebs(tmp, pkgs) {
		return fmt.Errorf("download packages: apt-get left no single .deb for each of %s in %s", strings.Join(pkgs, " "), tmp)
	}
	if err := os.RemoveAll(dest); err != nil {
		return fmt.Errorf("replace %s: %w", dest, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("move packages into %s: %w", dest, err)
	}
	return nil
}

// haveDebs reports whether a previous fill left every package's .deb.
func haveDebs(debs string, pkgs []string) bool {
	for _, p := range pkgs {
		m, _ := filepath.Glob(filepath.Join(debs, p+"_*.deb"))
		if len(m) != 1 {
			return false
		}
	}
	return true
}

// unpack extracts every .deb into a scratch tree and renames it to root,
// so a crash mid-way never leaves a half tree that looks ready.
func unpack(ctx context.Context, root, debs string, pkgs []string, log io.Writer) error {
	tmp, err := os.MkdirTemp(filepath.Dir(root), "root-")
	if err != nil {
		return fmt.Errorf("unpack packages: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, p := range pkgs {
		m, _ := filepath.Glob(filepath.Join(debs, p+"_*.deb"))
		if len(m) != 1 {
			return fmt.Errorf("unpack %s: want one .deb in %s, found %d", p, debs, len(m))
		}
		if err := run(ctx, "", log, 5*time.Minute, "dpkg", "-x", m[0], tmp); err != nil {
			return fmt.Errorf("unpack %s: %w", m[0], err)
		}
	}
	// Debian's dockerd looks for docker-init, which Debian ships as tini;
	// a link to an absolute path would point out of the tree.
	initPath := filepath.Join(tmp, "usr", "bin", "docker-init")
	if _, err := os.Stat(initPath); errors.Is(err, os.ErrNotExist) {
		os.Remove(initPath)
		for _, tini := range []string{"tini-static", "tini"} {
			if _, err := os.Stat(filepath.Join(tmp, "usr", "bin", tini)); err == nil {
				if err := os.Symlink(tini, initPath); err != nil {
					return fmt.Errorf("link docker-init: %w", err)
				}
				break
			}
		}
	}
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("replace %s: %w", root, err)
	}
	if err := os.Rename(tmp, root); err != nil {
		return fmt.Errorf("move unpacked tree into %s: %w", root, err)
	}
	return nil
}

// replaceDockerd puts the release's own dockerd in place of the suite's.
func replaceDockerd(ctx context.Context, c *Cache, rel Release, log io.Writer) error {
	src, err := DockerdPath(rel)
	if err != nil {
		return err
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("dockerd of %s: %w (set %s to the xz-compressed binary)", rel.Name, err, OracleEnv)
	}
	dst := filepath.Join(c.Root, "usr", "sbin", "dockerd")
	tmp := dst + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return fmt.Errorf("dockerd of %s: %w", rel.Name, err)
	}
	cmd := exec.CommandContext(ctx, "xz", "-dc", src)
	cmd.Stdout = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	fmt.Fprintf(log, "+ xz -dc %s > %s\n", src, dst)
	err = cmd.Run()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("unpack %s: %w: %s", src, err, strings.TrimSpace(stderr.String()))
	}
	return os.Rename(tmp, dst)
}

// wrappedPrograms are the engine's programs that must run on this host.
var wrappedPrograms = []string{"dockerd", "docker", "containerd", "containerd-shim-runc-v2", "runc", "docker-init"}

// wrap makes a wrapper script for each program that cannot run with the
// host's C library (trixie's and sid's runc need a newer glibc than
// bookworm's): it runs the program through the loader of that suite's
// libc6, unpacked beside the tree. The wrappers lead dockerd's PATH.
func (c *Cache) wrap(ctx context.Context, apt debapt.State, log io.Writer) error {
	wrapDir := filepath.Join(c.Dir, "wrap")
	if err := os.RemoveAll(wrapDir); err != nil {
		return fmt.Errorf("reset wrappers: %w", err)
	}
	var need []string
	for _, name := range wrappedPrograms {
		bin := c.Bin(name)
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("verify cache: %w", err)
		}
		if out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput(); err != nil && bytes.Contains(out, []byte("GLIBC_")) {
			need = append(need, name)
		}
	}
	if len(need) == 0 {
		return nil
	}
	glibc := filepath.Join(c.Dir, "glibc")
	if _, err := os.Stat(filepath.Join(glibc, "usr", "lib64", "ld-linux-x86-64.so.2")); err != nil {
		debs := filepath.Join(c.Dir, "glibc-debs")
		if !haveDebs(debs, glibcPackages) {
			if err := download(ctx, apt, c.Release.Suite, glibcPackages, debs); err != nil {
				return err
			}
		}
		if err := unpack(ctx, glibc, debs, glibcPackages, log); err != nil {
			return err
		}
	}
	if runtime.GOARCH != "amd64" {
		return fmt.Errorf("wrap %v: only amd64 is supported", need)
	}
	loader := filepath.Join(glibc, "usr", "lib64", "ld-linux-x86-64.so.2")
	libs := filepath.Join(glibc, "usr", "lib", "x86_64-linux-gnu") + ":" + filepath.Join(glibc, "lib", "x86_64-linux-gnu")
	if err := os.MkdirAll(wrapDir, 0o755); err != nil {
		return fmt.Errorf("make wrappers: %w", err)
	}
	for _, name := range need {
		real := c.Bin(name)
		script := fmt.Sprintf("#!/bin/sh\nexec %q --library-path %q %q \"$@\"\n", loader, libs, real)
		if err := os.WriteFile(filepath.Join(wrapDir, name), []byte(script), 0o755); err != nil {
			return fmt.Errorf("make wrappers: %w", err)
		}
		fmt.Fprintf(log, "%s needs %s's C library: wrapped\n", name, c.Release.Suite)
	}
	return nil
}

// verify checks that the unpacked dockerd runs and is the release the
// cache is for, and decides whether it needs the cache's copies of its
// shared libraries.
func (c *Cache) verify(ctx context.Context) error {
	for _, name := range wrappedPrograms {
		if _, err := os.Stat(c.Bin(name)); err != nil {
			return fmt.Errorf("verify cache: %w", err)
		}
	}
	c.LibPath = ""
	dockerd := c.Bin("dockerd")
	if missingLibs(ctx, dockerd, "") {
		var dirs []string
		for _, pat := range []string{"lib/*-linux-gnu", "usr/lib/*-linux-gnu"} {
			m, _ := filepath.Glob(filepath.Join(c.Root, pat))
			dirs = append(dirs, m...)
		}
		c.LibPath = strings.Join(dirs, ":")
		if missingLibs(ctx, dockerd, c.LibPath) {
			return fmt.Errorf("verify cache: %s has unresolved shared libraries even with %s (see ldd)", dockerd, c.LibPath)
		}
	}
	cmd := exec.CommandContext(ctx, dockerd, "--version")
	if c.LibPath != "" {
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+c.LibPath)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("verify cache: dockerd --version: %w: %s", err, bytes.TrimSpace(out))
	}
	c.Version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	if !strings.HasPrefix(c.Version, "Docker version "+c.Release.Name+".") {
		return fmt.Errorf("verify cache: dockerd reports %q, the tests need %s (the %s suite moved on: update dockertest.Releases)", c.Version, c.Release.Name, c.Release.Suite)
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
		// A static binary, or a wrapper script, makes ldd exit 1 ("not a
		// dynamic executable"): nothing to resolve. Any other failure is
		// left to --version.
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

// suites are the Debian suites the releases come from, once each.
func suites() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range Releases {
		if !seen[r.Suite] {
			seen[r.Suite] = true
			out = append(out, r.Suite)
		}
	}
	sort.Strings(out)
	return out
}
