package gentables

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestGeneratedFresh fails when a generated block no longer matches the
// tables: run go generate ./internal/gentables.
func TestGeneratedFresh(t *testing.T) {
	tables := Load()
	for _, f := range Files {
		src, err := os.ReadFile(filepath.Join("..", "..", f.Path))
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Render(src, tables)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(src) {
			t.Errorf("%s is stale: run go generate ./internal/gentables", f.Path)
		}
	}
}

// TestRenderFollowsTables: a new driver or release shows in every file,
// and a broken marker is an error, not a silently skipped block.
func TestRenderFollowsTables(t *testing.T) {
	tables := Load()
	tables.Drivers = append(tables.Drivers, "newfs")
	tables.Releases = append(tables.Releases, "30.0.0")
	for _, f := range Files {
		src, err := os.ReadFile(filepath.Join("..", "..", f.Path))
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Render(src, tables)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(got), "newfs") {
			t.Errorf("%s: a new driver does not show", f.Path)
		}
		if strings.Contains(string(src), "29.0.0") && !strings.Contains(string(got), "30.0.0") {
			t.Errorf("%s: a new release does not show", f.Path)
		}
		broken := strings.Replace(string(src), " END generated ", " END gen ", 1)
		if _, err := f.Render([]byte(broken), tables); err == nil {
			t.Errorf("%s: a block without its END line renders", f.Path)
		}
	}
	if !slices.Contains(tables.Snapshotters, "overlayfs") || !slices.Contains(tables.Snapshotters, "native") {
		t.Errorf("snapshotters %v lack overlayfs or native", tables.Snapshotters)
	}
}
