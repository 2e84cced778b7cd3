package state

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
)

// ErrNoRecord is a state directory without a record (a first run).
var ErrNoRecord = errors.New("no record")

// Path is the record's path in dir.
func Path(dir string) string { return filepath.Join(dir, FileName) }

// Load reads the record in dir. It trusts only a regular file owned by
// this user (root for the unit), not writable by others, in a directory
// no other user can change, read without following a symlink; anything
// else is an error and the caller proves in full.
func Load(dir string) (*Record, error) {
	p := Path(dir)
	if err := hostsys.CheckSafeDir(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNoRecord
		}
		return nil, fmt.Errorf("state directory: %w", err)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, ErrNoRecord
	case errors.Is(err, unix.ELOOP):
		return nil, fmt.Errorf("%s is a symlink; a record is never read through one", p)
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", p, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, fmt.Errorf("%s is not a regular file", p)
	case int(st.Uid) != os.Geteuid():
		return nil, fmt.Errorf("%s belongs to uid %d, not to uid %d that runs graphprobe", p, st.Uid, os.Geteuid())
	case st.Mode&0o022 != 0:
		return nil, fmt.Errorf("%s is writable by other users (mode %04o)", p, st.Mode&0o7777)
	case st.Size > MaxSize:
		return nil, fmt.Errorf("%s is %d bytes, over the %d limit", p, st.Size, MaxSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	r, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return r, nil
}

// Save writes the record to dir atomically and durably, as daemon.json is
// written, making dir (mode 0755) when it is missing. dir must be one no
// other user can change.
func Save(dir string, r *Record) error {
	data, err := Encode(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write proof record: %w", err)
	}
	if err := hostsys.CheckSafeDir(dir); err != nil {
		return fmt.Errorf("write proof record in %s: %w", dir, err)
	}
	return daemonjson.WriteFileAtomic(Path(dir), data, 0o644)
}

// Remove deletes the record in dir, if any: a run that finds it stale and
// then fails must not leave it to a later run.
func Remove(dir string) error {
	if hostsys.CheckSafeDir(dir) != nil {
		return nil // Load refuses whatever is there
	}
	err := os.Remove(Path(dir))
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("remove proof record: %w", err)
}
