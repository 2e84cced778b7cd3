package nsthread

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestRunHasItsOwnWorkingDirectory(t *testing.T) {
	before, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var inside string
	err = Run(func() error {
		if err := unix.Chdir(dir); err != nil {
			return err
		}
		inside, err = os.Getwd()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside != dir {
		t.Errorf("working directory inside Run = %q, want %q", inside, dir)
	}
	if after, _ := os.Getwd(); after != before {
		t.Errorf("Run moved the process's working directory from %q to %q", before, after)
	}
}

// TestRunJoinsTheCallersNamespace: a mount made in a private namespace
// must be visible to work handed to a new thread from inside it.
func TestRunJoinsTheCallersNamespace(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	ns, err := hostsys.NewMountNS()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	magic := func(p string) int64 {
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err != nil {
			return -1
		}
		return int64(st.Type)
	}
	var inRun, inGo int64
	err = ns.Do(func() error {
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o644); err != nil {
			return err
		}
		if err := Run(func() error { inRun = magic(dir); return nil }); err != nil {
			return err
		}
		done := make(chan struct{})
		if err := Go(func() { inGo = magic(dir); close(done) }); err != nil {
			return err
		}
		<-done
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if inRun != unix.TMPFS_MAGIC || inGo != unix.TMPFS_MAGIC {
		t.Errorf("statfs on new threads = %#x (Run), %#x (Go); want tmpfs %#x, the caller's mount", inRun, inGo, unix.TMPFS_MAGIC)
	}
	if magic(dir) == unix.TMPFS_MAGIC {
		t.Errorf("the namespace's tmpfs shows outside it")
	}
}
