package app

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/probe"
)

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestColourKeepsAlignment renders the tables with colour forced on, as on
// a terminal: without the colour codes the text must be exactly the plain
// render, so no column moved because escape bytes were counted as width.
func TestColourKeepsAlignment(t *testing.T) {
	r, err := probe.Run(context.Background(), probe.Options{RootPrefix: filepath.Join(repoRoot, "testdata/hosts/ubuntu-16.04"), PriorDirs: drivers.PriorDirs()})
	if err != nil {
		t.Fatal(err)
	}
	for name, render := range map[string]func(*bytes.Buffer, *style){
		"drivers": func(b *bytes.Buffer, s *style) { renderDriversText(b, s, drivers.All()) },
		"probe":   func(b *bytes.Buffer, s *style) { renderProbeText(b, s, r) },
	} {
		t.Run(name, func(t *testing.T) {
			var plain, colour bytes.Buffer
			render(&plain, &style{})
			render(&colour, &style{color: true})
			if !strings.Contains(colour.String(), "\x1b[") {
				t.Fatal("the forced-colour render has no colour")
			}
			if got := ansiRE.ReplaceAllString(colour.String(), ""); got != plain.String() {
				t.Errorf("colour render without its codes differs from the plain one:\n%s\nplain:\n%s", got, plain.String())
			}
		})
	}
}

func TestVisibleWidth(t *testing.T) {
	s := &style{color: true}
	for _, tc := range []struct {
		text string
		want int
	}{
		{"", 0},
		{"yes", 3},
		{s.green("yes"), 3},
		{s.bold("DRIVER") + s.dim("x"), 7},
		{"17.03–23.0", 10},
		{s.green("▸ "), 2},
	} {
		if got := visibleWidth(tc.text); got != tc.want {
			t.Errorf("visibleWidth(%q) = %d, want %d", tc.text, got, tc.want)
		}
	}
}
