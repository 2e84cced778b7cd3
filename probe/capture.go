package probe

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/graphprobe/graphprobe/internal/hostsys"
)

// CaptureOptions say what to capture.
type CaptureOptions struct {
	// DataRoot is Docker's data-root on the host.
	DataRoot string
	// ConfigPath is the daemon.json in use; it is stored as
	// etc/docker/daemon.json in the capture.
	ConfigPath string
	// Report is a live probe of the host, whose test results go into the
	// capture (nil: Capture probes).
	Report *Report
	// PriorDirs are the drivers' prior-state dirs (Options.PriorDirs):
	// the capture keeps a skeleton of each driver's top-level dir.
	PriorDirs []string
}

// storageModules are the modules whose lines of modules.dep and
// modules.builtin, and whose /sys/module dirs, a capture keeps.
var storageModules = map[string]bool{
	"overlay": true, "overlayfs": true, "aufs": true, "btrfs": true, "zfs": true, "spl": true,
	"fuse": true, "dm_mod": true, "dm_thin_pool": true, "xfs": true, "ext4": true, "ecryptfs": true,
	"nfs": true, "squashfs": true,
}

// captureBinaries are looked up in the host's binary dirs; a capture keeps
// empty executables at the same paths, as presence markers.
var captureBinaries = []string{"dockerd", "fuse-overlayfs", "fusermount3", "zfs", "modprobe", "btrfs", "mkfs.xfs"}

// dockerStartupFiles are where dockerd's flags come from.
var dockerStartupFiles = []string{
	"/etc/default/docker", "/etc/sysconfig/docker", "/etc/sysconfig/docker-storage",
}
var dockerUnitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// CaptureSink receives the capture's files.
type CaptureSink interface {
	File(name string, data []byte, mode fs.FileMode) error
	Dir(name string) error
	Close() error
}

// CaptureTo writes the live host's probe inputs, in the fixture layout,
// into a directory, or a .tar.gz when out ends so. Only the files the probe
// reads are copied (storage-relevant lines of the module lists; names only
// of the data-root's driver dirs, never image data), plus
// graphprobe-capture.json with the live results a fixture cannot
// reproduce. It returns the list of files written.
func CaptureTo(ctx context.Context, out string, opts CaptureOptions) ([]string, error) {
	var sink CaptureSink
	var err error
	if strings.HasSuffix(out, ".tar.gz") || strings.HasSuffix(out, ".tgz") {
		sink, err = newTarSink(out)
	} else {
		sink, err = newDirSink(out)
	}
	if err != nil {
		return nil, err
	}
	files, err := capture(ctx, sink, opts)
	if cerr := sink.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if !strings.HasSuffix(out, "/") {
			os.RemoveAll(out)
		}
		return nil, err
	}
	return files, nil
}

func capture(ctx context.Context, sink CaptureSink, opts CaptureOptions) ([]string, error) {
	if opts.DataRoot == "" {
		opts.DataRoot = DefaultDataRoot
	}
	r := opts.Report
	if r == nil {
		var err error
		if r, err = Run(ctx, Options{DataRoot: opts.DataRoot, PriorDirs: opts.PriorDirs}); err != nil {
			return nil, err
		}
	}
	if r.Mode != "live" {
		return nil, errors.New("capture: the report is not of the live host")
	}
	h := LiveHost()
	var written []string
	put := func(name string, data []byte, mode fs.FileMode) error {
		name = strings.TrimPrefix(path.Clean("/"+name), "/")
		if err := sink.File(name, data, mode); err != nil {
			return fmt.Errorf("capture %s: %w", name, err)
		}
		written = append(written, name)
		return nil
	}
	copyFile := func(p string, filter func([]byte) []byte) error {
		data, err := h.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return nil // unreadable: the fixture will say unknown, as the live probe did
		}
		if filter != nil {
			data = filter(data)
		}
		return put(p, data, 0o644)
	}
	release := r.Kernel.Release
	if err := put("proc/sys/kernel/osrelease", []byte(release+"\n"), 0o644); err != nil {
		return nil, err
	}
	for _, p := range []string{"/proc/version", "/proc/filesystems", "/proc/modules", "/etc/os-release"} {
		if err := copyFile(p, nil); err != nil {
			return nil, err
		}
	}
	// overlay's load-time options decide native diff before the module is
	// loaded; only those are kept (a command line can hold other secrets).
	if err := copyFile("/proc/cmdline", func(b []byte) []byte { return keepOverlayWords(string(b)) }); err != nil {
		return nil, err
	}
	for _, dir := range modprobeDirs {
		entries, _ := h.ReadDir(dir)
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".conf") {
				continue
			}
			if err := copyFile(dir+"/"+e.Name(), keepOverlayOptions); err != nil {
				return nil, err
			}
		}
	}
	if data, err := hostsys.ReadMountinfo(); err == nil {
		if err := put("proc/self/mountinfo", data, 0o644); err != nil {
			return nil, err
		}
	}
	if r.KernelConfigSource != "" {
		if err := copyFile(r.KernelConfigSource, nil); err != nil {
			return nil, err
		}
	}
	if rel := releaseOK(release); rel != "" {
		for _, f := range []string{"modules.dep", "modules.builtin"} {
			if err := copyFile("/lib/modules/"+rel+"/"+f, storageLines); err != nil {
				return nil, err
			}
		}
	}
	// /sys/module dirs of storage modules, with their parameters.
	if entries, err := h.ReadDir("/sys/module"); err == nil {
		for _, e := range entries {
			if !storageModules[e.Name()] {
				continue
			}
			dir := "/sys/module/" + e.Name()
			if err := sink.Dir(strings.TrimPrefix(dir, "/")); err != nil {
				return nil, err
			}
			for _, f := range []string{"initstate"} {
				if err := copyFile(dir+"/"+f, nil); err != nil {
					return nil, err
				}
			}
			if params, err := h.ReadDir(dir + "/parameters"); err == nil {
				for _, p := range params {
					if err := copyFile(dir+"/parameters/"+p.Name(), nil); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	for _, dev := range []string{"/dev/fuse", "/dev/zfs", "/dev/mapper/control"} {
		if h.Exists(dev) {
			if err := put(dev, nil, 0o644); err != nil {
				return nil, err
			}
		}
	}
	for _, bin := range captureBinaries {
		if p, ok := h.LookPath(bin); ok {
			if err := put(p, nil, 0o755); err != nil {
				return nil, err
			}
		}
	}
	if opts.ConfigPath != "" {
		if data, err := os.ReadFile(opts.ConfigPath); err == nil && len(data) <= 1<<20 {
			if err := put("etc/docker/daemon.json", data, 0o644); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range dockerStartupFiles {
		if err := copyFile(f, nil); err != nil {
			return nil, err
		}
	}
	for _, dir := range dockerUnitDirs {
		if err := copyFile(dir+"/docker.service", nil); err != nil {
			return nil, err
		}
		if entries, err := h.ReadDir(dir + "/docker.service.d"); err == nil {
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".conf") {
					if err := copyFile(dir+"/docker.service.d/"+e.Name(), nil); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	// The prior-state skeleton: names of the first entries of each
	// driver's prior-state dir (vfs/dir for vfs), as empty files; never
	// their content. The dir itself stays a dir, so that the capture
	// reports the same prior drivers as the host.
	seen := map[string]bool{}
	for _, pd := range opts.PriorDirs {
		if seen[pd] {
			continue
		}
		seen[pd] = true
		dir := path.Join(opts.DataRoot, pd)
		entries, err := h.ReadDir(dir)
		if err != nil || len(entries) == 0 {
			continue
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		for i, e := range entries {
			if i == 16 {
				break
			}
			if err := put(path.Join(dir, e.Name()), nil, 0o644); err != nil {
				return nil, err
			}
		}
	}
	c := Capture{SchemaVersion: SchemaVersion, Release: release, DataRoot: r.DataRoot, Docker: r.Docker, Privileged: r.Privileged, Facts: map[string]Fact{}}
	for name, f := range r.Facts {
		if f.Method == MethodMountTest && f.Known() {
			c.Facts[name] = f
		}
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := put(CaptureFile, append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	return written, nil
}

func releaseOK(rel string) string {
	if rel == "" || strings.ContainsAny(rel, "/\x00") || rel == "." || rel == ".." {
		return ""
	}
	return rel
}

// storageLines keeps the module-list lines of storage modules.
func storageLines(data []byte) []byte {
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(data), "\n") {
		file, _, _ := strings.Cut(line, ":")
		if name, ok := moduleName(strings.TrimSpace(file)); ok && storageModules[name] {
			out.WriteString(line)
		}
	}
	return out.Bytes()
}

type dirSink struct{ root string }

func newDirSink(dir string) (*dirSink, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("capture into %s: the directory is not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("capture into %s: %w", dir, err)
	}
	return &dirSink{root: dir}, nil
}

func (s *dirSink) File(name string, data []byte, mode fs.FileMode) error {
	full := filepath.Join(s.root, name)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, data, mode)
}

func (s *dirSink) Dir(name string) error { return os.MkdirAll(filepath.Join(s.root, name), 0o755) }
func (s *dirSink) Close() error          { return nil }

type tarSink struct {
	f    *os.File
	gz   *gzip.Writer
	tw   *tar.Writer
	dirs map[string]bool
}

func newTarSink(name string) (*tarSink, error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("capture into %s: %w", name, err)
	}
	gz := gzip.NewWriter(f)
	return &tarSink{f: f, gz: gz, tw: tar.NewWriter(gz), dirs: map[string]bool{}}, nil
}

func (s *tarSink) Dir(name string) error {
	if name == "." || name == "" || s.dirs[name] {
		return nil
	}
	if err := s.Dir(path.Dir(name)); err != nil {
		return err
	}
	s.dirs[name] = true
	return s.tw.WriteHeader(&tar.Header{Name: name + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)})
}

func (s *tarSink) File(name string, data []byte, mode fs.FileMode) error {
	if err := s.Dir(path.Dir(name)); err != nil {
		return err
	}
	if err := s.tw.WriteHeader(&tar.Header{Name: name, Mode: int64(mode.Perm()), Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	_, err := s.tw.Write(data)
	return err
}

func (s *tarSink) Close() error {
	err := s.tw.Close()
	if e := s.gz.Close(); err == nil {
		err = e
	}
	if e := s.f.Close(); err == nil {
		err = e
	}
	return err
}

// maxCaptureSize bounds an unpacked capture archive.
const maxCaptureSize = 64 << 20

// OpenCapture makes a capture usable as a fixture tree: a directory is
// used in place; a .tar.gz is unpacked into a temporary directory, refusing
// links, devices, absolute paths and "..". Call cleanup when done.
func OpenCapture(p string) (dir string, cleanup func(), err error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", nil, fmt.Errorf("open capture: %w", err)
	}
	if st.IsDir() {
		return p, func() {}, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", nil, fmt.Errorf("open capture: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", nil, fmt.Errorf("open capture %s: not a directory or a .tar.gz: %w", p, err)
	}
	tmp, err := os.MkdirTemp("", "graphprobe-capture-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(tmp) }
	tr := tar.NewReader(zr)
	var total int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			cleanup()
			return "", nil, fmt.Errorf("open capture %s: %w", p, err)
		}
		name := path.Clean(hdr.Name)
		if path.IsAbs(hdr.Name) || name == ".." || strings.HasPrefix(name, "../") {
			cleanup()
			return "", nil, fmt.Errorf("open capture %s: unsafe path %q", p, hdr.Name)
		}
		full := filepath.Join(tmp, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(full, 0o755)
		case tar.TypeReg:
			total += hdr.Size
			if total > maxCaptureSize {
				cleanup()
				return "", nil, fmt.Errorf("open capture %s: larger than %d MiB unpacked", p, maxCaptureSize>>20)
			}
			if err = os.MkdirAll(filepath.Dir(full), 0o755); err == nil {
				var out *os.File
				if out, err = os.OpenFile(full, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fs.FileMode(hdr.Mode).Perm()|0o600); err == nil {
					_, err = io.Copy(out, io.LimitReader(tr, hdr.Size))
					out.Close()
				}
			}
		default:
			err = fmt.Errorf("entry %q of type %c is not allowed in a capture", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			cleanup()
			return "", nil, fmt.Errorf("open capture %s: %w", p, err)
		}
	}
	return tmp, cleanup, nil
}
