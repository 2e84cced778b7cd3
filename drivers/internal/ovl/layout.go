package ovl

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/graphprobe/graphprobe/drivers"
)

// Names in the layout, as Docker's overlay2 spells them.
const (
	LinkDir       = "l"
	DiffDir       = "diff"
	WorkDir       = "work"
	MergedDir     = "merged"
	LowerFile     = "lower"
	LinkFile      = "link"
	CommittedFile = "committed"
)

// MaxDepth is Docker's cap on the lowers of one layer. With IDLength
// chars per short link it keeps the relative mount data of the deepest
// stack within a page: (26+len("l/")+len(":"))*128 = 3712 bytes, leaving
// room for the upper, work and options.
const MaxDepth = 128

// IDLength is the length of a short link name.
const IDLength = 26

// NewID returns a random short link name: 26 chars of base32 (A-Z, 2-7),
// as Docker makes them.
func NewID() string {
	b := make([]byte, (IDLength*5+7)/8)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on Linux 3.17+; failing here would
		// mean a broken system.
		panic(fmt.Sprintf("read random bytes for a layer link id: %v", err))
	}
	return base32.StdEncoding.EncodeToString(b)[:IDLength]
}

// ValidID refuses layer ids that are not a single path component, or that
// name a directory of the layout itself.
func ValidID(id string, reserved ...string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("invalid layer id %q: it must be one path component", id)
	}
	for _, r := range reserved {
		if id == r {
			return fmt.Errorf("invalid layer id %q: the name is used by the driver's layout", id)
		}
	}
	return nil
}

// Layout is the overlay2 layout under Home.
type Layout struct {
	Home string
}

// Init makes the home and its link directory.
func (l Layout) Init() error {
	if err := os.MkdirAll(l.Home, 0o710); err != nil {
		return fmt.Errorf("create driver home: %w", err)
	}
	if err := os.Mkdir(filepath.Join(l.Home, LinkDir), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create link directory: %w", err)
	}
	return nil
}

// Dir is layer id's directory.
func (l Layout) Dir(id string) string { return filepath.Join(l.Home, id) }

// Exists reports whether layer id has a directory.
func (l Layout) Exists(id string) bool {
	if ValidID(id, LinkDir) != nil {
		return false
	}
	fi, err := os.Lstat(l.Dir(id))
	return err == nil && fi.IsDir()
}

// Create makes layer id on parent ("" for a base layer): diff/, its short
// link, and for a child work/ and the lower file, marking the parent
// committed. A parent already MaxDepth deep is refused with
// drivers.ErrMaxDepth.
func (l Layout) Create(id, parent string) (retErr error) {
	if err := ValidID(id, LinkDir); err != nil {
		return err
	}
	var lower string
	if parent != "" {
		if !l.Exists(parent) {
			return fmt.Errorf("parent %s: %w", parent, drivers.ErrLayerNotExist)
		}
		lowers, err := l.parentLowers(parent)
		if err != nil {
			return err
		}
		if len(lowers) > MaxDepth {
			return fmt.Errorf("a layer on %s would have %d lower layers, more than %d: %w", parent, len(lowers), MaxDepth, drivers.ErrMaxDepth)
		}
		lower = strings.Join(lowers, ":")
	}
	dir := l.Dir(id)
	if err := os.Mkdir(dir, 0o710); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("layer %s already exists", id)
		}
		return err
	}
	var link string
	defer func() {
		if retErr != nil {
			if link != "" {
				os.Remove(filepath.Join(l.Home, LinkDir, link))
			}
			os.RemoveAll(dir)
		}
	}()
	if err := os.Mkdir(filepath.Join(dir, DiffDir), 0o755); err != nil {
		return err
	}
	for {
		link = NewID()
		err := os.Symlink(path.Join("..", id, DiffDir), filepath.Join(l.Home, LinkDir, link))
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) {
			link = ""
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, LinkFile), []byte(link), 0o644); err != nil {
		return err
	}
	if parent == "" {
		return nil
	}
	if err := os.Mkdir(filepath.Join(dir, WorkDir), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(l.Dir(parent), CommittedFile), nil, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, LowerFile), []byte(lower), 0o644)
}

// parentLowers is the lower list of a child of parent: parent's own link,
// then parent's lowers.
func (l Layout) parentLowers(parent string) ([]string, error) {
	link, err := os.ReadFile(filepath.Join(l.Dir(parent), LinkFile))
	if err != nil {
		return nil, fmt.Errorf("read the link of parent %s: %w", parent, err)
	}
	lowers, err := l.Lowers(parent)
	if err != nil {
		return nil, err
	}
	return append([]string{path.Join(LinkDir, string(link))}, lowers...), nil
}

// Lowers returns the lower file of id ("l/<link>" entries relative to the
// home, nearest first); nil for a base layer.
func (l Layout) Lowers(id string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(l.Dir(id), LowerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the lower layers of %s: %w", id, err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(string(b), ":"), nil
}

// Committed reports whether id has a child: Docker mounts such a layer
// read-only, with its diff as the top lower.
func (l Layout) Committed(id string) bool {
	_, err := os.Stat(filepath.Join(l.Dir(id), CommittedFile))
	return err == nil
}

// IsParent reports whether parent is id's direct parent ("" for none), the
// condition for a diff to be id's diff/ as it is.
func (l Layout) IsParent(id, parent string) bool {
	lowers, err := l.Lowers(id)
	if err != nil {
		return false
	}
	if len(lowers) == 0 {
		return parent == ""
	}
	if parent == "" {
		return false
	}
	target, err := os.Readlink(filepath.Join(l.Home, lowers[0]))
	if err != nil {
		return false
	}
	return path.Clean(path.Join(LinkDir, target)) == path.Join(parent, DiffDir)
}

// Remove deletes layer id and its short link. A missing layer is not an
// error, as in Docker.
func (l Layout) Remove(id string) error {
	if err := ValidID(id, LinkDir); err != nil {
		return err
	}
	dir := l.Dir(id)
	if link, err := os.ReadFile(filepath.Join(dir, LinkFile)); err == nil && len(link) > 0 && ValidID(string(link)) == nil {
		if err := os.Remove(filepath.Join(l.Home, LinkDir, string(link))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove link of layer %s: %w", id, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove layer %s: %w", id, err)
	}
	return nil
}
