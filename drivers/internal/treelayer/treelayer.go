// Package treelayer is what the drivers whose layers are whole directory
// trees (vfs, btrfs) have in common: nothing is mounted, so Get hands out
// the layer's directory and counts references; a diff is applied onto the
// full tree (a whiteout deletes the path) and exported as the naive diff
// against the parent's tree. The drivers differ only in how a layer's tree
// is made and removed.
package treelayer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/archive"
	"github.com/graphprobe/graphprobe/internal/hostsys"
)

// Layers is the shared half of a full-tree driver. Embed it and set Dir.
type Layers struct {
	// Dir is where layer id's tree lives.
	Dir func(id string) string

	mu   sync.Mutex
	refs map[string]int
}

// ValidID refuses ids that are not one path element: an id is joined to
// the home directory and must not reach outside it.
func ValidID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("invalid layer id %q: want one path element", id)
	}
	return nil
}

// IsDir reports whether p is a directory.
func IsDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// dir checks id and returns its existing tree.
func (l *Layers) dir(op, id string) (string, error) {
	if err := ValidID(id); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	dir := l.Dir(id)
	if !IsDir(dir) {
		return "", fmt.Errorf("%s %s: %w", op, id, drivers.ErrLayerNotExist)
	}
	return dir, nil
}

// StatusRows are the status rows every full-tree driver shows: the backing
// filesystem of home, and how many layers layersDir holds, under label.
func StatusRows(home, layersDir, label string) [][2]string {
	fsName := "unknown"
	if backing, err := hostsys.Statfs(home); err == nil {
		fsName = backing.Name
	}
	n := 0
	if entries, err := os.ReadDir(layersDir); err == nil {
		n = len(entries)
	}
	return [][2]string{{"Backing Filesystem", fsName}, {label, strconv.Itoa(n)}}
}

// CheckCreate checks the ids of a new layer and its parent, the common
// first half of Create, and returns the parent's tree ("" for a base layer).
func (l *Layers) CheckCreate(id, parent string) (string, error) {
	if err := ValidID(id); err != nil {
		return "", fmt.Errorf("create layer: %w", err)
	}
	if parent == "" {
		return "", nil
	}
	if err := ValidID(parent); err != nil {
		return "", fmt.Errorf("create layer %s: parent: %w", id, err)
	}
	parentDir := l.Dir(parent)
	if !IsDir(parentDir) {
		return "", fmt.Errorf("create layer %s: parent %s: %w", id, parent, drivers.ErrLayerNotExist)
	}
	return parentDir, nil
}

// CheckRemovable refuses to remove a layer that is in use or missing, the
// common first half of Remove.
func (l *Layers) CheckRemovable(id string) (string, error) {
	if err := ValidID(id); err != nil {
		return "", fmt.Errorf("remove layer: %w", err)
	}
	l.mu.Lock()
	n := l.refs[id]
	l.mu.Unlock()
	if n > 0 {
		return "", fmt.Errorf("remove layer %s: in use (%d references from Get); Put it first", id, n)
	}
	dir := l.Dir(id)
	if _, err := os.Lstat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("remove layer %s: %w", id, drivers.ErrLayerNotExist)
		}
		return "", fmt.Errorf("remove layer %s: %w", id, err)
	}
	return dir, nil
}

// Get returns the layer's tree and takes a reference.
func (l *Layers) Get(id string) (string, error) {
	dir, err := l.dir("get layer", id)
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	if l.refs == nil {
		l.refs = map[string]int{}
	}
	l.refs[id]++
	l.mu.Unlock()
	return dir, nil
}

// Put releases a reference taken by Get.
func (l *Layers) Put(id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refs[id] == 0 {
		return fmt.Errorf("put layer %s: %w", id, drivers.ErrNotMounted)
	}
	if l.refs[id]--; l.refs[id] == 0 {
		delete(l.refs, id)
	}
	return nil
}

// Exists reports whether the layer's tree exists.
func (l *Layers) Exists(id string) bool {
	return ValidID(id) == nil && IsDir(l.Dir(id))
}

// Cleanup drops every reference: there are no mounts to undo.
func (l *Layers) Cleanup() error {
	l.mu.Lock()
	clear(l.refs)
	l.mu.Unlock()
	return nil
}

// ApplyDiff unpacks the stream onto the layer's full tree, which already
// holds its parent's: a whiteout deletes the path below it, so parent is
// not needed.
func (l *Layers) ApplyDiff(id, parent string, diff io.Reader) (int64, error) {
	dir, err := l.dir("apply diff to layer", id)
	if err != nil {
		return 0, err
	}
	n, err := archive.Apply(dir, diff, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone})
	if err != nil {
		return n, fmt.Errorf("apply diff to layer %s: %w", id, err)
	}
	return n, nil
}

// Diff compares the layer's tree with its parent's (the naive diff, as
// dockerd's vfs and btrfs do): a full tree keeps no record of what
// changed.
func (l *Layers) Diff(id, parent string) (io.ReadCloser, error) {
	dir, err := l.dir("diff layer", id)
	if err != nil {
		return nil, err
	}
	var parentDir string
	if parent != "" {
		if parentDir, err = l.dir("diff layer "+id+": parent", parent); err != nil {
			return nil, err
		}
	}
	rc, err := archive.ExportChanges(dir, parentDir)
	if err != nil {
		return nil, fmt.Errorf("diff layer %s against %q: %w", id, parent, err)
	}
	return rc, nil
}
