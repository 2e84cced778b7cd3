package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

func saved(t *testing.T) (string, []byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	rec, _, _ := sampleRecord()
	if err := Save(dir, rec); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	return dir, data
}

func TestSaveLoad(t *testing.T) {
	dir, _ := saved(t)
	rec, _, _ := sampleRecord()
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := got.Difference(rec.Host, rec.Inputs); d != "" || !got.Decision.SameChoice(rec.Decision) {
		t.Fatalf("loaded record differs: %s", d)
	}
	st, err := os.Stat(Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("record mode %v, want 0644", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds %d entries, want only the record", len(entries))
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none")); err != ErrNoRecord {
		t.Errorf("missing dir: %v, want ErrNoRecord", err)
	}
	if _, err := Load(t.TempDir()); err != ErrNoRecord {
		t.Errorf("empty dir: %v, want ErrNoRecord", err)
	}
}

// TestLoadRefuses: every record that cannot be trusted is an error, so the
// run proves in full.
func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name   string
		root   bool
		spoil  func(t *testing.T, dir string, data []byte)
		errHas string
	}{
		{"truncated", false, func(t *testing.T, dir string, data []byte) {
			os.WriteFile(Path(dir), data[:len(data)/2], 0o644)
		}, "corrupt"},
		{"empty", false, func(t *testing.T, dir string, data []byte) { os.WriteFile(Path(dir), nil, 0o644) }, "corrupt"},
		{"one byte changed", false, func(t *testing.T, dir string, data []byte) {
			i := strings.Index(string(data), "overlay2")
			data[i] = 'O'
			os.WriteFile(Path(dir), data, 0o644)
		}, "does not match its sha256"},
		{"symlink to a valid record", false, func(t *testing.T, dir string, data []byte) {
			other := filepath.Join(t.TempDir(), "real.json")
			os.WriteFile(other, data, 0o644)
			os.Remove(Path(dir))
			os.Symlink(other, Path(dir))
		}, "symlink"},
		{"a directory", false, func(t *testing.T, dir string, data []byte) {
			os.Remove(Path(dir))
			os.Mkdir(Path(dir), 0o755)
		}, "not a regular file"},
		{"writable by others", false, func(t *testing.T, dir string, data []byte) { os.Chmod(Path(dir), 0o666) }, "writable by other users"},
		{"state dir writable by others", false, func(t *testing.T, dir string, data []byte) { os.Chmod(dir, 0o777) }, "writable by other users"},
		{"owned by another user", true, func(t *testing.T, dir string, data []byte) { os.Lchown(Path(dir), 1234, 1234) }, "belongs to uid 1234"},
		{"state dir owned by another user", true, func(t *testing.T, dir string, data []byte) { os.Lchown(dir, 1234, 1234) }, "belongs to uid 1234"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				testutil.RequiresRoot(t)
			}
			dir, data := saved(t)
			tc.spoil(t, dir, data)
			_, err := Load(dir)
			if err == nil || errors.Is(err, ErrNoRecord) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("Load: %v, want an error naming %q", err, tc.errHas)
			}
		})
	}
}

// TestSaveRefusesUnsafeDir: a record is never written where another user
// could swap it.
func TestSaveRefusesUnsafeDir(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	rec, _, _ := sampleRecord()
	if err := Save(dir, rec); err == nil {
		t.Fatal("Save into a world-writable dir succeeded")
	}
	if _, err := os.Lstat(Path(dir)); err == nil {
		t.Fatal("a record was written")
	}
}

// TestObserve: two observations of an unchanged host are equal; moving the
// data-root to another filesystem, or replacing a binary, is seen.
func TestObserve(t *testing.T) {
	dr := filepath.Join(t.TempDir(), "docker")
	a, err := Observe(ObserveOptions{DataRoot: dr})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Observe(ObserveOptions{DataRoot: dr})
	if err != nil {
		t.Fatal(err)
	}
	r, _, in := sampleRecord()
	r.Host = a
	if d := r.Difference(b, in); d != "" {
		t.Fatalf("two observations differ: %s", d)
	}
	if a.KernelRelease == "" || a.DataRoot.Filesystem == "" || a.DataRoot.Device == "" || a.DataRoot.MountPoint == "" || a.Graphprobe.Executable == absent {
		t.Fatalf("observation is missing what identifies the host: %+v", a)
	}
	if a.Exists || a.ProbedPath != filepath.Dir(dr) {
		t.Fatalf("data-root not made yet: exists %v, probed %s", a.Exists, a.ProbedPath)
	}
	os.MkdirAll(filepath.Join(dr, "overlay2", "l"), 0o755)
	c, err := Observe(ObserveOptions{DataRoot: dr})
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Difference(c, in); d != "" {
		t.Fatalf("dockerd's first start (data-root made, overlay2/ filled) invalidated the record: %s", d)
	}
	if !c.Exists || len(c.Prior) != 1 || c.Prior[0] != "overlay2" {
		t.Fatalf("prior state not observed: exists %v prior %v", c.Exists, c.Prior)
	}

	// A dockerd on PATH replaced by another build.
	bin := t.TempDir()
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	os.WriteFile(filepath.Join(bin, "dockerd"), []byte("#!/bin/sh\necho Docker version 20.10.24\n"), 0o755)
	d1, _ := Observe(ObserveOptions{DataRoot: dr})
	os.Remove(filepath.Join(bin, "dockerd"))
	os.WriteFile(filepath.Join(bin, "dockerd"), []byte("#!/bin/sh\necho Docker version 24.0.9\n"), 0o755)
	d2, _ := Observe(ObserveOptions{DataRoot: dr})
	r.Host = d1
	if d := r.Difference(d2, in); !strings.Contains(d, "dockerd") {
		t.Fatalf("dockerd replaced: Difference = %q", d)
	}

	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Tmpfs, 16)
	e, err := Observe(ObserveOptions{DataRoot: filepath.Join(fs.Dir, "docker")})
	if err != nil {
		t.Fatal(err)
	}
	e.DataRoot.Path = a.DataRoot.Path
	r.Host = a
	if d := r.Difference(e, in); !strings.Contains(d, "data-root") {
		t.Fatalf("data-root on another filesystem: Difference = %q", d)
	}
}
