package hostsys_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestStaleScratchRemoved(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	// A scratch dir of a process that no longer exists (pid 2^22+1 is past
	// the kernel's pid_max ceiling), one of a live process (ours: kept), a
	// symlink with the same pattern (never followed) and an unrelated dir.
	dead := filepath.Join(dir, hostsys.ScratchPrefix+"probe-4194305-abc")
	live := filepath.Join(dir, hostsys.ScratchPrefix+"probe-1-abc")
	if err := os.MkdirAll(filepath.Join(dead, "lower1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(live, 0o700); err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	os.WriteFile(filepath.Join(target, "keep"), nil, 0o600)
	os.Symlink(target, filepath.Join(dir, hostsys.ScratchPrefix+"probe-4194306-x"))
	os.Mkdir(filepath.Join(dir, "other"), 0o700)

	removed, err := hostsys.RemoveStaleScratch(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(removed, []string{dead}) {
		t.Errorf("removed %v, want [%s]", removed, dead)
	}
	for _, p := range []string{live, filepath.Join(target, "keep"), filepath.Join(dir, "other")} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestMakeScratchRefusesSymlinkParent(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "link")
	os.Symlink(t.TempDir(), link)
	if _, err := hostsys.MakeScratch(link, "probe"); err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Fatalf("MakeScratch through a symlink: %v", err)
	}
	s, err := hostsys.MakeScratch(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Lstat(s)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("mode %v, want 0700", st.Mode().Perm())
	}
}

func TestMakeScratchRefusesUnsafeParent(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		name  string
		setup func(p string) error
		want  string
	}{
		{"world-writable", func(p string) error { return os.Chmod(p, 0o777) }, "writable by other users"},
		{"group-writable", func(p string) error { return os.Chmod(p, 0o775) }, "writable by other users"},
		{"other user's", func(p string) error { return os.Chown(p, 65534, 65534) }, "belongs to uid 65534"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			os.Mkdir(p, 0o755)
			if err := tt.setup(p); err != nil {
				t.Fatal(err)
			}
			_, err := hostsys.MakeScratch(p, "probe")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("MakeScratch in a %s dir: %v, want %q", tt.name, err, tt.want)
			}
			entries, _ := os.ReadDir(p)
			if len(entries) != 0 {
				t.Errorf("something was made: %v", entries)
			}
		})
	}
	// The sticky bit makes a shared dir safe: others cannot rename our dir.
	sticky := filepath.Join(dir, "sticky")
	os.Mkdir(sticky, 0o755)
	os.Chmod(sticky, os.ModeSticky|0o777)
	if s, err := hostsys.MakeScratch(sticky, "probe"); err != nil {
		t.Errorf("sticky dir refused: %v", err)
	} else {
		os.Remove(s)
	}
}

// TestMakeScratchFullFilesystem: on a full filesystem the error says which
// directory, that its filesystem is full, and what to do, not a bare ENOSPC.
func TestMakeScratchFullFilesystem(t *testing.T) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Ext4, 16)
	parent := filepath.Join(fs.Dir, "docker")
	if err := os.Mkdir(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	// Take every block (root may use the reserved ones too), then every
	// block a new directory could get.
	var st unix.Statfs_t
	if err := unix.Statfs(fs.Dir, &st); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(fs.Dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for n := int64(st.Bfree) * st.Bsize; n > 0; n -= 64 << 10 {
		if unix.Fallocate(int(f.Fd()), 0, 0, n) == nil {
			break
		}
	}
	f.Close()
	for i := 0; ; i++ {
		if err := os.Mkdir(filepath.Join(fs.Dir, fmt.Sprintf("d%d", i)), 0o700); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	_, err = hostsys.MakeScratch(parent, "bench")
	want := "make scratch dir in " + parent + ": the filesystem is full (no free blocks or inodes; df -h " + parent + " and df -i " + parent +
		" show which): free some space there and rerun, since drivers are initialised there as dockerd does: no space left on device"
	if err == nil || err.Error() != want || !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}
