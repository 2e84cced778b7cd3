package daemonjson

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/internal/hostsys"
)

// maxSymlinks bounds symlink resolution, as the kernel's ELOOP does.
const maxSymlinks = 40

// sysOps are the calls whose order makes a replace durable; tests swap
// them to record that order or to fail one of them.
type sysOps struct {
	fsync  func(fd int, name string) error
	rename func(dirfd int, from, to string) error
}

var sys = sysOps{
	fsync:  func(fd int, _ string) error { return unix.Fsync(fd) },
	rename: func(dirfd int, from, to string) error { return unix.Renameat(dirfd, from, dirfd, to) },
}

// Open reads the daemon.json at path. A missing file is not an error: the
// File then has Exists == false. A symlink is followed to its final target;
// a dangling symlink, a directory, a FIFO, a device, a socket or a file over
// MaxSize is an error, and a FIFO is never opened (it would block).
func Open(path string) (*File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	f := &File{Path: path}
	target, linked, err := resolve(path, abs)
	if err != nil {
		return nil, err
	}
	f.Target, f.linked = target, linked
	content, st, err := readRegular(unix.AT_FDCWD, target, f.label())
	if errors.Is(err, unix.ENOENT) {
		f.Mode = DefaultMode
		f.UID, f.GID = dirOwner(filepath.Dir(target))
		return f, nil
	}
	if err != nil {
		return nil, err
	}
	f.Exists, f.Content = true, content
	f.Mode = fs.FileMode(st.Mode & 0o777)
	f.UID, f.GID = int(st.Uid), int(st.Gid)
	f.dev, f.ino = uint64(st.Dev), st.Ino
	return f, nil
}

// resolve follows symlinks in the last component of abs and canonicalises
// its directory. linked says whether a symlink was on the way: a relative
// path resolves to another string without one.
func resolve(path, abs string) (target string, linked bool, err error) {
	p := abs
	hops := 0
	for ; ; hops++ {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			if hops > 0 {
				return "", false, fmt.Errorf("open %s: dangling symlink to %s: fix or remove the link", path, p)
			}
			break
		}
		if err != nil {
			return "", false, fmt.Errorf("open %s: %w", path, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			break
		}
		if hops == maxSymlinks {
			return "", false, fmt.Errorf("open %s: more than %d levels of symbolic links", path, maxSymlinks)
		}
		t, err := os.Readlink(p)
		if err != nil {
			return "", false, fmt.Errorf("open %s: %w", path, err)
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		p = filepath.Clean(t)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	if errors.Is(err, fs.ErrNotExist) {
		return p, hops > 0, nil // made by Update
	}
	if err != nil {
		return "", false, fmt.Errorf("open %s: %w", path, err)
	}
	return filepath.Join(dir, filepath.Base(p)), hops > 0 || dir != filepath.Dir(p), nil
}

// readRegular reads the regular file name (relative to dirfd) without
// following a symlink and without blocking on a FIFO.
func readRegular(dirfd int, name, label string) ([]byte, *unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", label, err)
	}
	if err := checkRegular(&st, label); err != nil {
		return nil, nil, err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", label, err)
	}
	file := os.NewFile(uintptr(fd), name)
	defer file.Close()
	before := st
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, nil, fmt.Errorf("stat %s: %w", label, err)
	}
	if err := checkRegular(&st, label); err != nil {
		return nil, nil, err
	}
	if st.Dev != before.Dev || st.Ino != before.Ino {
		return nil, nil, fmt.Errorf("open %s: file was replaced while being opened; rerun graphprobe", label)
	}
	data, err := io.ReadAll(io.LimitReader(file, MaxSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", label, err)
	}
	if len(data) > MaxSize {
		return nil, nil, fmt.Errorf("read %s: file grew while being read: %s", label, tooBig("more than "+humanSize(MaxSize)))
	}
	return data, &st, nil
}

func checkRegular(st *unix.Stat_t, label string) error {
	m := hostsys.StatMode(st)
	if !m.IsRegular() {
		return fmt.Errorf("open %s: %s, not a regular file: replace it with a JSON file", label, hostsys.FileKind(m))
	}
	if st.Size > MaxSize {
		return fmt.Errorf("open %s: %s", label, tooBig(humanSize(st.Size)))
	}
	return nil
}

// dirOwner is the owner a new file in dir gets: the directory's, or
// root's when dir does not exist yet (Update creates it).
func dirOwner(dir string) (uid, gid int) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, 0
	}
	return int(st.Uid), int(st.Gid)
}

// RemoveStaleTemps removes the temporary files that killed earlier runs
// left next to the file, and returns them. Update does it too; a run that
// has nothing to write calls this so that leftovers never outlive it.
func (f *File) RemoveStaleTemps() ([]string, error) {
	if _, err := os.Lstat(filepath.Dir(f.Target)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	d, err := openDir(filepath.Dir(f.Target), f.label())
	if err != nil {
		return nil, err
	}
	defer d.close()
	return d.removeStaleTemps(filepath.Base(f.Target)), nil
}

// Update replaces the file's content with content, atomically and durably:
// a temporary file in the target's directory is written, fsynced, given the
// old file's mode and owner, and renamed over the target, and the
// directory is fsynced. The old content is kept at BackupPath(Target)
// first (rewritten only when it differs). Nothing is written when content
// equals what Open read. If the file changed on disk since Open, Update
// refuses rather than lose that change. Temporary files of killed earlier
// runs are removed.
func (f *File) Update(content []byte) (WriteResult, error) {
	res := WriteResult{Path: f.Target}
	if f.Exists && bytes.Equal(content, f.Content) {
		return res, nil
	}
	if len(content) > MaxSize {
		return res, fmt.Errorf("write %s: new content is %s; over the %s limit", f.label(), humanSize(int64(len(content))), humanSize(MaxSize))
	}
	d, err := openDir(filepath.Dir(f.Target), f.label())
	if err != nil {
		return res, err
	}
	defer d.close()
	base := filepath.Base(f.Target)
	if err := f.unchangedOnDisk(d, base); err != nil {
		return res, err
	}
	res.RemovedTemps = d.removeStaleTemps(base)
	if f.Exists {
		res.Backup = BackupPath(f.Target)
		if err := d.keepBackup(base, f); err != nil {
			return res, err
		}
	}
	if err := d.writeAtomic(base, base, content, f.Mode, f.UID, f.GID, f.label()); err != nil {
		return res, err
	}
	if err := d.sync(); err != nil {
		return res, err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		f.dev, f.ino = uint64(st.Dev), st.Ino
	}
	f.Exists, f.Content = true, append([]byte(nil), content...)
	res.Written = true
	return res, nil
}

// SaveReport writes the run's report (a JSON document) to
// ReportPath(Target), atomically, with daemon.json's owner and its mode
// without execute or group/other write bits: the report's diff holds
// daemon.json's content (proxy credentials, registry mirrors with tokens),
// so it must never be readable by anyone who cannot read daemon.json.
// It returns the report's path.
func (f *File) SaveReport(report []byte) (string, error) {
	path := ReportPath(f.Target)
	if !json.Valid(report) {
		return "", fmt.Errorf("write %s: report is not valid JSON", path)
	}
	if !bytes.HasSuffix(report, []byte("\n")) {
		report = append(append([]byte(nil), report...), '\n')
	}
	d, err := openDir(filepath.Dir(f.Target), path)
	if err != nil {
		return "", err
	}
	defer d.close()
	base := filepath.Base(f.Target)
	d.removeStaleTemps(base)
	if err := d.writeAtomic(base, filepath.Base(path), report, f.Mode&sideFileMode, f.UID, f.GID, path); err != nil {
		return "", err
	}
	return path, d.sync()
}

// unchangedOnDisk checks that the target is still what Open read.
func (f *File) unchangedOnDisk(d *dir, base string) error {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT) && !f.Exists:
		return nil
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("write %s: the file was removed since it was read; rerun graphprobe", f.label())
	case err != nil:
		return fmt.Errorf("write %s: %w", f.label(), err)
	case !f.Exists:
		return fmt.Errorf("write %s: the file appeared since graphprobe looked; rerun graphprobe", f.label())
	}
	cur, st2, err := readRegular(d.fd, base, f.label())
	if err != nil {
		return err
	}
	if uint64(st2.Dev) != f.dev || st2.Ino != f.ino || !bytes.Equal(cur, f.Content) {
		return fmt.Errorf("write %s: the file changed since it was read; rerun graphprobe to merge with the new content", f.label())
	}
	return nil
}

// dir is an open directory: every name below is resolved against its fd,
// so renaming or replacing the directory's path cannot redirect a write.
type dir struct {
	fd   int
	path string
}

func openDir(path, label string) (*dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("write %s: %w", label, err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("write %s: open directory %s: %w", label, path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("write %s: stat directory %s: %w", label, path, err)
	}
	if st.Mode&0o002 != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("write %s: directory %s is writable by every user, so another user could swap the file: run chmod o-w %s", label, path, path)
	}
	return &dir{fd: fd, path: path}, nil
}

func (d *dir) close() { unix.Close(d.fd) }

func (d *dir) sync() error {
	if err := sys.fsync(d.fd, d.path); err != nil {
		return fmt.Errorf("sync directory %s: %w", d.path, err)
	}
	return nil
}

// removeStaleTemps removes the temporary files of runs that are gone.
func (d *dir) removeStaleTemps(base string) []string {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return nil
	}
	var removed []string
	self := os.Getpid()
	for _, e := range entries {
		pid, ok := tempPID(base, e.Name())
		if !ok || pid == self || hostsys.ProcessAlive(pid) || !e.Type().IsRegular() {
			continue
		}
		if unix.Unlinkat(d.fd, e.Name(), 0) == nil {
			removed = append(removed, filepath.Join(d.path, e.Name()))
		}
	}
	return removed
}

// sideFileMode bounds the mode of the files kept beside daemon.json (the
// backup and the report): they hold its content, so they take its mode, or
// stricter, and are never executable or writable by others.
const sideFileMode fs.FileMode = 0o644

// keepBackup writes f's current content to the backup file, unless the
// backup already holds it with daemon.json's owner and a mode no wider
// than daemon.json's (a backup left by an older release may be wider), and
// makes the rename durable before the target is replaced.
func (d *dir) keepBackup(base string, f *File) error {
	name := filepath.Base(BackupPath(f.Target))
	mode := f.Mode & sideFileMode
	if cur, st, err := readRegular(d.fd, name, name); err == nil && bytes.Equal(cur, f.Content) &&
		int(st.Uid) == f.UID && int(st.Gid) == f.GID && fs.FileMode(st.Mode&0o7777)&^mode == 0 {
		return nil
	}
	label := f.label() + " (backup " + BackupPath(f.Target) + ")"
	if err := d.writeAtomic(base, name, f.Content, mode, f.UID, f.GID, label); err != nil {
		return err
	}
	return d.sync()
}

// writeAtomic writes data to a new temporary file and renames it to name.
// The temporary file is made with O_EXCL|O_NOFOLLOW and mode 0600, so that
// nobody can open or pre-plant it, and gets its final mode and owner only
// once written.
func (d *dir) writeAtomic(base, name string, data []byte, mode fs.FileMode, uid, gid int, label string) (err error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("write %s: %w", label, err)
	}
	tmp := tempName(base, os.Getpid(), hex.EncodeToString(rnd[:]))
	fd, err := unix.Openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: create temporary file in %s: %w", label, d.path, err)
	}
	file := os.NewFile(uintptr(fd), filepath.Join(d.path, tmp))
	renamed := false
	defer func() {
		if file != nil {
			file.Close()
		}
		if !renamed {
			_ = unix.Unlinkat(d.fd, tmp, 0)
		}
	}()
	if _, err := file.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", label, err)
	}
	if uid != os.Geteuid() || gid != os.Getegid() {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("write %s: set owner %d:%d: %w", label, uid, gid, err)
		}
	}
	if err := unix.Fchmod(fd, uint32(mode.Perm())); err != nil {
		return fmt.Errorf("write %s: set mode %#o: %w", label, mode, err)
	}
	if err := sys.fsync(fd, tmp); err != nil {
		return fmt.Errorf("write %s: sync: %w", label, err)
	}
	cerr := file.Close()
	file = nil
	if cerr != nil {
		return fmt.Errorf("write %s: %w", label, cerr)
	}
	if err := sys.rename(d.fd, tmp, name); err != nil {
		return fmt.Errorf("write %s: rename into place: %w", label, err)
	}
	renamed = true
	return nil
}
