package archive_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/drivers/archive"
	dt "github.com/graphprobe/graphprobe/drivers/drivertest"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

var baseImage = []dt.Entry{
	dt.Dir("etc", 0o755),
	dt.File("etc/hostname", "box", 0o644),
	dt.File("etc/motd", "hi", 0o644),
	dt.Symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
	dt.Dir("usr/lib", 0o755),
	dt.File("usr/lib/libc", "libc", 0o755),
	dt.Dir("var/log", 0o755),
	dt.File("var/log/old", "log", 0o640),
	dt.File("swap-me", "file", 0o644),
	dt.Dir("swap-dir", 0o755),
	dt.File("swap-dir/x", "x", 0o644),
	dt.File("untouched", "same", 0o644),
}

// mutate changes layer (a copy of the base image) in every way a layer
// can differ from its parent.
func mutate(t *testing.T, layer string) {
	t.Helper()
	p := func(rel string) string { return filepath.Join(layer, rel) }
	later := dt.Epoch.Add(time.Hour)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(p("etc/hostname"), []byte("new-name"), 0o644))
	must(os.Chtimes(p("etc/hostname"), later, later))
	must(os.Chmod(p("etc/motd"), 0o600))
	must(os.Remove(p("etc/localtime")))
	must(os.Symlink("/usr/share/zoneinfo/CET", p("etc/localtime")))
	must(os.RemoveAll(p("var/log")))
	must(os.MkdirAll(p("opt/app"), 0o755))
	must(os.WriteFile(p("opt/app/bin"), []byte("app"), 0o755))
	must(os.WriteFile(p("usr/lib/libnew"), []byte("new"), 0o644))
	must(os.Remove(p("swap-me")))
	must(os.Mkdir(p("swap-me"), 0o700))
	must(os.WriteFile(p("swap-me/inside"), []byte("i"), 0o644))
	must(os.RemoveAll(p("swap-dir")))
	must(os.WriteFile(p("swap-dir"), []byte("now a file"), 0o644))
	must(unix.Lsetxattr(p("usr/lib/libc"), "user.tag", []byte("v2"), 0))
}

func TestChanges(t *testing.T) {
	testutil.RequiresRoot(t)
	parent, layer := t.TempDir(), t.TempDir()
	for _, d := range []string{parent, layer} {
		if _, err := archive.Apply(d, dt.Tar(t, baseImage...), archive.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := archive.Changes(layer, parent); err != nil || len(got) != 0 {
		t.Fatalf("Changes of two identical trees = %v, %v; want none", got, err)
	}
	mutate(t, layer)
	got, err := archive.Changes(layer, parent)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"C etc", "C etc/hostname", "C etc/localtime", "C etc/motd",
		"A opt", "A opt/app", "A opt/app/bin",
		"C swap-dir", "C swap-me", "A swap-me/inside",
		"C usr", "C usr/lib", "C usr/lib/libc", "A usr/lib/libnew",
		"C var", "D var/log",
	}
	var gotS []string
	for _, c := range got {
		gotS = append(gotS, c.String())
	}
	if strings.Join(gotS, "\n") != strings.Join(want, "\n") {
		t.Errorf("Changes =\n%s\nwant\n%s", strings.Join(gotS, "\n"), strings.Join(want, "\n"))
	}
}

// TestExportChangesRecreatesTheLayer applies the naive diff to a fresh
// copy of the parent: the result must be the layer, to the last xattr.
func TestExportChangesRecreatesTheLayer(t *testing.T) {
	testutil.RequiresRoot(t)
	parent, layer, replay := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{parent, layer, replay} {
		if _, err := archive.Apply(d, dt.Tar(t, baseImage...), archive.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mutate(t, layer)
	rc, err := archive.ExportChanges(layer, parent)
	if err != nil {
		t.Fatal(err)
	}
	entries := readAll(t, rc)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	if !strings.Contains(strings.Join(names, " "), "var/.wh.log") {
		t.Errorf("the stream has no whiteout for the deleted var/log: %v", names)
	}
	b, err := dt.TarBytes(entries...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Apply(replay, strings.NewReader(string(b)), archive.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if diff, err := archive.Changes(layer, replay); err != nil || len(diff) != 0 {
		t.Errorf("the parent plus the exported changes differs from the layer: %v %v", diff, err)
	}
}

func TestExportChangesOfBaseLayer(t *testing.T) {
	testutil.RequiresRoot(t)
	layer := t.TempDir()
	if _, err := archive.Apply(layer, dt.Tar(t, baseImage...), archive.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, err := archive.ExportChanges(layer, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dt.CompareEntries(append(baseImage, dt.Dir("usr", 0o755), dt.Dir("var", 0o755)), readAll(t, rc)) {
		if strings.HasPrefix(d, "usr:") || strings.HasPrefix(d, "var:") {
			continue // made implicitly by Apply, with the time of the run
		}
		t.Error(d)
	}
}

func TestExportReportsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(dir string) error
	}{
		{"export of a missing dir", func(dir string) error {
			_, err := archive.Export(filepath.Join(dir, "missing"), archive.ExportOptions{})
			return err
		}},
		{"export of a file", func(dir string) error {
			f := filepath.Join(dir, "file")
			os.WriteFile(f, nil, 0o644)
			_, err := archive.Export(f, archive.ExportOptions{})
			return err
		}},
		{"changes against a missing parent", func(dir string) error {
			_, err := archive.Changes(dir, filepath.Join(dir, "missing"))
			return err
		}},
		{"unknown format", func(dir string) error {
			_, err := archive.Apply(dir, strings.NewReader(""), archive.ApplyOptions{Whiteouts: 42})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(t.TempDir()); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
