package daemonjson

import (
	"bytes"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// Diff returns a unified diff from old to new for --dry-run, labelled with
// path; "" when they are equal. A missing old file (nil) is labelled
// /dev/null, as diff -N does.
func Diff(path string, old, new []byte) string {
	if bytes.Equal(old, new) {
		return ""
	}
	from := path
	if old == nil {
		from = "/dev/null"
	}
	ud := difflib.UnifiedDiff{
		A:        splitLines(old),
		B:        splitLines(new),
		FromFile: from,
		ToFile:   path + " (graphprobe)",
		Context:  3,
	}
	out, err := difflib.GetUnifiedDiffString(ud)
	if err != nil {
		// GetUnifiedDiffString fails only when its writer does; it writes
		// to a buffer.
		return ""
	}
	return out
}

// splitLines keeps line ends, and marks a last line without one the way
// diff(1) does, so that a change of the final newline is visible.
func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	lines := strings.SplitAfter(string(b), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	} else {
		lines[len(lines)-1] += "\n\\ No newline at end of file\n"
	}
	return lines
}
