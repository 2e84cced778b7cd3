package reliability

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestLeakChecksSeeLeaks is the negative control of the checks every other
// test relies on: it makes each kind of leak on purpose (a mount below the
// test's directory, a scratch dir, a temporary file beside daemon.json, an
// open descriptor, a running goroutine, a chmod, a rewrite with the same
// size, a touched mtime, a new file) and requires each check to see it.
func TestLeakChecksSeeLeaks(t *testing.T) {
	h := newHost(t, testutil.Tmpfs, 16)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)

	start := measure(t, h)
	etcBefore := snapshot(t, h.etc)

	leak := filepath.Join(h.fs.Dir, ".graphprobe-bench-1-leak")
	mkdir(t, leak, 0o700)
	if err := unix.Mount("tmpfs", leak, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(leak, unix.MNT_DETACH) })
	writeFile(t, filepath.Join(h.etc, ".daemon.json.graphprobe-1.00.tmp"), []byte("{"), 0o600)
	f, err := os.Open(h.config)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() { <-stop }()

	end := measure(t, h)
	if slices.Equal(end.mounts, start.mounts) {
		t.Errorf("mountsOf missed a mount at %s: %q", leak, end.mounts)
	}
	if len(end.scratch) != 1 {
		t.Errorf("scratchIn missed %s: %q", leak, end.scratch)
	}
	if len(end.temps) != 1 {
		t.Errorf("tempsIn missed the temporary file: %q", end.temps)
	}
	if end.fds != start.fds+1 {
		t.Errorf("descriptors %d -> %d, want one more", start.fds, end.fds)
	}
	if end.goroutines != start.goroutines+1 {
		t.Errorf("goroutines %d -> %d, want one more", start.goroutines, end.goroutines)
	}

	for _, change := range []struct {
		name string
		do   func()
	}{
		{"chmod", func() { os.Chmod(h.config, 0o600) }},
		{"same-size rewrite", func() { os.WriteFile(h.config, []byte(vfsConfig[:len(vfsConfig)-2]+"x\n"), 0o644) }},
		{"touch", func() { unix.UtimesNano(h.config, []unix.Timespec{{Sec: 1}, {Sec: 1}}) }},
		{"new file", func() { os.WriteFile(filepath.Join(h.etc, "new"), nil, 0o644) }},
	} {
		before := snapshot(t, h.etc)
		change.do()
		if d := diffSnapshots(before, snapshot(t, h.etc)); len(d) == 0 {
			t.Errorf("snapshot missed a %s", change.name)
		}
	}
	if d := diffSnapshots(etcBefore, snapshot(t, h.etc)); len(d) < 2 {
		t.Errorf("diffSnapshots: %q", d)
	}
}
