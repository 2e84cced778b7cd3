package app

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/internal/buildinfo"
	"github.com/graphprobe/graphprobe/selector"
)

func versionCommand() *command {
	return &command{name: "version", summary: "print the program's version", usage: `Usage: graphprobe version [--format text|json|yaml]

Print graphprobe's version, the commit it was built from and the Go version.

Examples:
  graphprobe version
  graphprobe version --format json
`, run: func(ctx context.Context, e *env, args []string) error {
		fs := newFlagSet("version")
		format := newFormatFlag(fs.FlagSet)
		pos, err := fs.parse(args)
		if err != nil {
			return err
		}
		if err := noPositional("version", pos); err != nil {
			return err
		}
		bi := buildinfo.Get()
		doc := struct {
			SchemaVersion int `json:"schemaVersion"`
			buildinfo.Info
		}{1, bi}
		return writeDoc(e.stdout, *format, doc, func(w io.Writer, s *style) {
			fmt.Fprintf(w, "graphprobe %s (commit %s, %s)\n", bi.Version, bi.Commit, bi.GoVersion)
		})
	}}
}

func driversCommand() *command {
	return &command{name: "drivers", summary: "list the known drivers, their requirements and Docker releases", usage: `Usage: graphprobe drivers [--format text|json|yaml]

List every storage driver Docker has shipped on Linux: what it needs, which
filesystems it refuses, which Docker releases ship it, its containerd
snapshotter, and whether graphprobe can initialise and benchmark it.

Examples:
  graphprobe drivers
  graphprobe drivers --format json | jq -r '.drivers[] | select(.removedIn == "") | .name'
`, run: func(ctx context.Context, e *env, args []string) error {
		fs := newFlagSet("drivers")
		format := newFormatFlag(fs.FlagSet)
		pos, err := fs.parse(args)
		if err != nil {
			return err
		}
		if err := noPositional("drivers", pos); err != nil {
			return err
		}
		all := drivers.All()
		doc := struct {
			SchemaVersion int            `json:"schemaVersion"`
			Drivers       []drivers.Info `json:"drivers"`
		}{1, all}
		return writeDoc(e.stdout, *format, doc, func(w io.Writer, s *style) { renderDriversText(w, s, all) })
	}}
}

func renderDriversText(w io.Writer, s *style, all []drivers.Info) {
	fmt.Fprintf(w, "%s %s %s %s %s\n", s.pad(s.bold("DRIVER"), 15), s.pad(s.bold("DOCKER"), 13), s.pad(s.bold("KERNEL"), 10), s.pad(s.bold("SNAPSHOTTER"), 15), s.bold("NEEDS"))
	for _, d := range all {
		ship := d.AddedIn + "+"
		if d.RemovedIn != "" {
			ship = d.AddedIn + "–" + selector.LastShippedLine(d.RemovedIn)
		}
		k := d.MinKernel
		if k == "" {
			k = "-"
		}
		needs := d.Requires
		if len(d.RefusedBackingFS) > 0 {
			needs += "; refuses " + strings.Join(d.RefusedBackingFS, ", ")
		}
		if !d.Implemented {
			needs += s.dim(" [graphprobe cannot benchmark it]")
		}
		snap := d.Snapshotter
		if snap == "" {
			snap = "-"
		}
		fmt.Fprintf(w, "%-15s %-13s %-10s %-15s %s\n", d.Name, ship, k, snap, needs)
	}
}
