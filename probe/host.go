package probe

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/graphprobe/graphprobe/internal/hostsys"
)

// maxHostFile bounds what we read of any one host file: a kernel config is a
// few hundred KiB and a gzip one far less; a 100 MiB junk file must not be
// slurped.
const maxHostFile = 8 << 20

// Host reads the files of a host: the live one (prefix "/") or a captured
// fixture tree. Paths are always given as on the host ("/proc/filesystems").
type Host struct {
	root hostsys.Root
}

// LiveHost reads the running system.
func LiveHost() *Host { return &Host{root: hostsys.NewRoot("/")} }

// FixtureHost reads a captured host tree rooted at dir.
func FixtureHost(dir string) (*Host, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open fixture host %s: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("open fixture host: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open fixture host %s: not a directory", dir)
	}
	return &Host{root: hostsys.NewRoot(abs)}, nil
}

// Live reports whether this is the running system.
func (h *Host) Live() bool { return h.root.Live() }

// Prefix is the directory standing for "/" ("/" when live).
func (h *Host) Prefix() string { return h.root.Dir() }

// Path maps a host path into the tree. Fixture paths are confined to the
// tree lexically here; ReadFile also refuses symlinks that leave it.
func (h *Host) Path(p string) string { return h.root.Path(p) }

// ReadFile reads a host file of at most maxHostFile bytes. It refuses
// anything but a regular file (a FIFO would block, a device would never end)
// and, on a fixture, any path that resolves outside the tree.
func (h *Host) ReadFile(p string) ([]byte, error) {
	f, err := h.root.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file", p)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxHostFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(data) > maxHostFile {
		return nil, fmt.Errorf("read %s: larger than %d MiB", p, maxHostFile>>20)
	}
	return data, nil
}

// ReadLine reads a one-line file such as /proc/sys/kernel/osrelease.
func (h *Host) ReadLine(p string) (string, error) {
	b, err := h.ReadFile(p)
	if err != nil {
		return "", err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return string(line), nil
}

// Exists reports whether p exists (any type, symlinks not followed at the end).
func (h *Host) Exists(p string) bool {
	_, err := h.Lstat(p)
	return err == nil
}

// Lstat is os.Lstat on the mapped path, confined to the tree.
func (h *Host) Lstat(p string) (fs.FileInfo, error) {
	if err := h.root.Confined(p); err != nil {
		return nil, err
	}
	return os.Lstat(h.Path(p))
}

// ReadDir lists a directory, confined to the tree.
func (h *Host) ReadDir(p string) ([]fs.DirEntry, error) {
	if err := h.root.Confined(p); err != nil {
		return nil, err
	}
	return os.ReadDir(h.Path(p))
}

// DefaultPath is the PATH a service manager gives a unit that sets none,
// and the one a root shell searches.
var DefaultPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// LookPath finds a binary in the directories a root shell searches.
func (h *Host) LookPath(name string) (string, bool) { return h.LookPathIn(DefaultPath, name) }

// LookPathIn finds a binary in dirs, in order; relative entries are
// skipped, as a service's lookup does.
func (h *Host) LookPathIn(dirs []string, name string) (string, bool) {
	for _, dir := range dirs {
		if !path.IsAbs(dir) {
			continue
		}
		p := path.Join(dir, name)
		st, err := h.statFollow(p)
		if err == nil && st.Mode().IsRegular() && (!h.Live() || st.Mode().Perm()&0o111 != 0) {
			return p, true
		}
	}
	return "", false
}

func (h *Host) statFollow(p string) (fs.FileInfo, error) {
	if h.Live() {
		return os.Stat(p)
	}
	f, err := h.root.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}
