package gentables

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/graphprobe/graphprobe/cmd/graphprobe/app"
	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/selector"
)

// File is a file with generated blocks, relative to the repository root.
type File struct {
	Path string
	// comment starts a comment line in the file's language.
	comment string
	// blocks maps a block's name to its generated lines.
	blocks func(t Tables) map[string][]string
}

// Tables are the values the blocks are made of.
type Tables struct {
	Drivers      []string // every driver, in drivers.All() order
	Snapshotters []string // names --driver takes for a graph driver
	Releases     []string // selector.MatrixReleases
	Formats      []string // the values of --format
}

// Load reads the tables.
func Load() Tables {
	var t Tables
	var aliases []string
	for _, d := range drivers.All() {
		t.Drivers = append(t.Drivers, d.Name)
		t.Snapshotters = appendNew(t.Snapshotters, d.Snapshotter)
		aliases = appendNew(aliases, d.SnapshotterAlias)
	}
	for _, a := range aliases {
		t.Snapshotters = appendNew(t.Snapshotters, a)
	}
	t.Formats = app.Formats()
	for _, v := range selector.MatrixReleases() {
		t.Releases = append(t.Releases, v.String())
	}
	return t
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	if s == "" {
		return list
	}
	return append(list, s)
}

// Files are the files with generated blocks.
var Files = []File{
	{Path: "packaging/completions/graphprobe.bash", comment: "#", blocks: func(t Tables) map[string][]string {
		return map[string][]string{"values": {
			"\tlocal drivers=\"" + strings.Join(t.Drivers, " ") + "\"",
			"\t# Containerd snapshotter names that --driver accepts for their graph driver.",
			"\tlocal snapshotters=\"" + strings.Join(t.Snapshotters, " ") + "\"",
			"\t# One Docker release per change of its storage rules.",
			"\tlocal releases=\"" + strings.Join(t.Releases, " ") + "\"",
			"\tlocal formats=\"" + strings.Join(t.Formats, " ") + "\"",
		}}
	}},
	{Path: "packaging/completions/_graphprobe", comment: "#", blocks: func(t Tables) map[string][]string {
		return map[string][]string{"values": {
			"  drivers=(" + strings.Join(t.Drivers, " ") + ")",
			"  # Containerd snapshotter names that --driver accepts for their graph driver.",
			"  snapshotters=(" + strings.Join(t.Snapshotters, " ") + ")",
			"  # One Docker release per change of its storage rules.",
			"  releases=(" + strings.Join(t.Releases, " ") + ")",
			"  formats=(" + strings.Join(t.Formats, " ") + ")",
		}}
	}},
	{Path: "packaging/man/graphprobe.1.in", comment: `.\"`, blocks: func(t Tables) map[string][]string {
		snap := []string{".RB ( " + manEscape(t.Snapshotters[0]) + " ,"}
		for i, s := range t.Snapshotters[1:] {
			if i == len(t.Snapshotters)-2 {
				snap = append(snap, ".BR "+manEscape(s)+" )")
				break
			}
			snap = append(snap, ".BR "+manEscape(s)+" ,")
		}
		names := make([]string, len(t.Drivers))
		for i, d := range t.Drivers {
			names[i] = manEscape(d)
		}
		return map[string][]string{
			"snapshotters": snap,
			"drivers":      {"Drivers are named as Docker names them: " + strings.Join(names, ", ") + "."},
		}
	}},
}

func manEscape(s string) string { return strings.ReplaceAll(s, "-", `\-`) }

// Render returns src with every marked block of f filled from t. A block
// runs from a line "<comment> BEGIN generated NAME ..." to
// "<comment> END generated NAME"; the marker lines stay.
func (f File) Render(src []byte, t Tables) ([]byte, error) {
	blocks := f.blocks(t)
	lines := strings.SplitAfter(string(src), "\n")
	var out strings.Builder
	seen := map[string]bool{}
	for i := 0; i < len(lines); i++ {
		out.WriteString(lines[i])
		name, ok := marker(lines[i], f.comment+" BEGIN generated ")
		if !ok {
			continue
		}
		body, ok := blocks[name]
		if !ok {
			return nil, fmt.Errorf("render %s: unknown block %q", f.Path, name)
		}
		end := -1
		for j := i + 1; j < len(lines); j++ {
			if n, ok := marker(lines[j], f.comment+" END generated "); ok && n == name {
				end = j
				break
			}
		}
		if end < 0 {
			return nil, fmt.Errorf("render %s: block %q has no END line", f.Path, name)
		}
		for _, l := range body {
			out.WriteString(l + "\n")
		}
		i = end - 1
		seen[name] = true
	}
	for name := range blocks {
		if !seen[name] {
			return nil, fmt.Errorf("render %s: no block %q", f.Path, name)
		}
	}
	return []byte(out.String()), nil
}

// marker returns the block name of a marker line with prefix.
func marker(line, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, " ")
	return name, name != ""
}

// Write regenerates every file under root and returns the ones it changed.
func Write(root string) ([]string, error) {
	t := Load()
	var changed []string
	for _, f := range Files {
		p := filepath.Join(root, f.Path)
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("generate %s: %w", f.Path, err)
		}
		got, err := f.Render(src, t)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(got, src) {
			continue
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			return nil, fmt.Errorf("generate %s: %w", f.Path, err)
		}
		changed = append(changed, f.Path)
	}
	return changed, nil
}
