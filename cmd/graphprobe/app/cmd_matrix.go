package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector"
	"github.com/graphprobe/graphprobe/version"
)

// ExpectFile is the expected-decision file matrix looks for next to the
// captures.
const ExpectFile = "expected-decisions.yaml"

// defaultMatrixVersions are one Docker release per change of the rules,
// the samples of selector's release table.
var defaultMatrixVersions = func() []string {
	var out []string
	for _, v := range selector.MatrixReleases() {
		out = append(out, v.String())
	}
	return out
}()

var matrixUsage = `Usage: graphprobe matrix DIR... [FLAGS]

Dry-run the selection for many captured hosts and Docker releases and print
one table: host, kernel, Docker release, driver, reason. Each DIR is a
captured host (a directory or .tar.gz made by 'graphprobe capture') or a
directory of them. Decisions are compared with ` + ExpectFile + ` next to the
captures (or --expect FILE), which maps host -> Docker release -> driver,
"refused" or "none".

Flags:
  --docker-version V        a release to decide for (repeatable; default
                            ` + strings.Join(defaultMatrixVersions, ", ") + `)
  --expect FILE             the expected decisions (default: DIR/` + ExpectFile + `)
  --write-expect FILE       write the decisions as an expected-decision file
  --format text|json|yaml   output format (default text)

Exit codes: 0 every decision as expected (without an expectation file: every
host has a usable driver); 1 a decision differs from the expected one, or a
capture cannot be read; 3 a host has no usable driver; 4 a host is refused
for safety (both only when not expected).

Examples:
  graphprobe matrix testdata/hosts
  graphprobe matrix hosts/ --docker-version 20.10.24 --docker-version 25.0.5 --format json
  graphprobe matrix hosts/ --write-expect hosts/expected-decisions.yaml
`

// MatrixRow is one host and release.
type MatrixRow struct {
	Host          string `json:"host"`
	Kernel        string `json:"kernel"`
	DockerVersion string `json:"dockerVersion"`
	// Decision is the storage-driver value, "refused" or "none".
	Decision   string `json:"decision"`
	ImageStore string `json:"imageStore,omitempty"`
	Reason     string `json:"reason"`
	Expected   string `json:"expected,omitempty"`
	Matches    *bool  `json:"matches,omitempty"`
}

type matrixDoc struct {
	SchemaVersion int         `json:"schemaVersion"`
	Rows          []MatrixRow `json:"rows"`
	Mismatches    int         `json:"mismatches"`
}

func matrixCommand() *command {
	return &command{name: "matrix", summary: "dry-run selection for captured hosts and Docker versions", usage: matrixUsage, run: runMatrix}
}

func runMatrix(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("matrix")
	format := newFormatFlag(fs.FlagSet)
	var versions stringList
	var expectPath, writeExpect string
	fs.Var(&versions, "docker-version", "")
	fs.StringVar(&expectPath, "expect", "", "")
	fs.StringVar(&writeExpect, "write-expect", "", "")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErrorf("matrix: want at least one DIR of captured hosts")
	}
	if len(versions) == 0 {
		versions = defaultMatrixVersions
	}
	var dvs []version.Docker
	for _, v := range versions {
		dv, err := selector.ParseDockerVersion(v)
		if err != nil {
			return usageErrorf("--docker-version: %v", err)
		}
		dvs = append(dvs, dv)
	}
	hosts, expectDefault, err := findCaptures(pos)
	if err != nil {
		return withCode(ExitRuntime, err)
	}
	if expectPath == "" {
		expectPath = expectDefault
	}
	var expect map[string]map[string]string
	if expectPath != "" {
		if expect, err = loadExpect(expectPath); err != nil {
			return withCode(ExitRuntime, err)
		}
	}
	doc := matrixDoc{SchemaVersion: 1}
	none, refused := false, false
	for _, h := range hosts {
		rows, err := matrixHost(ctx, h, dvs)
		if err != nil {
			return withCode(ExitRuntime, err)
		}
		for _, row := range rows {
			if exp, ok := lookupExpect(expect[row.Host], row.DockerVersion); ok {
				row.Expected = exp
				m := exp == row.Decision
				row.Matches = &m
				if !m {
					doc.Mismatches++
				}
			} else {
				none = none || row.Decision == "none"
				refused = refused || row.Decision == "refused"
			}
			doc.Rows = append(doc.Rows, row)
		}
	}
	if writeExpect != "" {
		if err := saveExpect(writeExpect, doc.Rows); err != nil {
			return withCode(ExitRuntime, err)
		}
	}
	if err := writeDoc(e.stdout, *format, doc, func(w io.Writer, s *style) { renderMatrix(w, s, doc) }); err != nil {
		return err
	}
	switch {
	case doc.Mismatches > 0:
		return withCode(ExitRuntime, fmt.Errorf("matrix: %d decision(s) differ from %s", doc.Mismatches, expectPath))
	case none:
		return withCode(ExitNoDriver, errors.New("matrix: a host has no usable storage driver"))
	case refused:
		return withCode(ExitRefused, errors.New("matrix: a host is refused for safety"))
	}
	return nil
}

type captureRef struct{ name, path string }

// findCaptures expands the arguments into captures, and finds the
// expected-decision file of the first directory of captures.
func findCaptures(args []string) ([]captureRef, string, error) {
	var out []captureRef
	expect := ""
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, "", fmt.Errorf("matrix: %w", err)
		}
		if !st.IsDir() || isCapture(a) {
			out = append(out, captureRef{name: captureName(a), path: a})
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, "", fmt.Errorf("matrix: %w", err)
		}
		found := 0
		for _, e := range entries {
			p := filepath.Join(a, e.Name())
			if (e.IsDir() && isCapture(p)) || strings.HasSuffix(e.Name(), ".tar.gz") {
				out = append(out, captureRef{name: captureName(p), path: p})
				found++
			}
		}
		if found == 0 {
			return nil, "", fmt.Errorf("matrix: %s holds no captured hosts (no proc/sys/kernel/osrelease)", a)
		}
		if expect == "" {
			if _, err := os.Stat(filepath.Join(a, ExpectFile)); err == nil {
				expect = filepath.Join(a, ExpectFile)
			}
		}
	}
	return out, expect, nil
}

func isCapture(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "proc/sys/kernel/osrelease"))
	return err == nil
}

func captureName(p string) string {
	return strings.TrimSuffix(strings.TrimSuffix(filepath.Base(p), ".tar.gz"), ".tgz")
}

// matrixHost decides for one capture and every release: the pure
// decision alone, as select would make it with --dry-run and no policy.
func matrixHost(ctx context.Context, h captureRef, dvs []version.Docker) ([]MatrixRow, error) {
	dir, cleanup, err := probe.OpenCapture(h.path)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	c := commonFlags{rootPrefix: dir}
	host, err := loadHost(dir, c.configPath(), "")
	if err != nil {
		return nil, err
	}
	flags, err := host.dockerFlags()
	if err != nil {
		return nil, err
	}
	r, err := host.probe(ctx, false)
	if err != nil {
		return nil, err
	}
	in := selector.Inputs{Configured: selector.ConfiguredIn(host.config), Flags: flags.Findings}
	var rows []MatrixRow
	for _, dv := range dvs {
		d := selector.Decide(r, dv, in)
		row := MatrixRow{Host: h.name, Kernel: r.Kernel.Release, DockerVersion: dv.String(), Decision: d.StorageDriver, ImageStore: string(d.ImageStore), Reason: d.Reason}
		switch {
		case d.Refusal != nil:
			row.Decision, row.Reason, row.ImageStore = "refused", d.Refusal.Kind+": "+d.Refusal.Message, ""
		case d.StorageDriver == "":
			row.Decision, row.ImageStore = "none", ""
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func loadExpect(path string) (map[string]map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read expected decisions: %w", err)
	}
	var m map[string]map[string]string
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse %s: %w (want host: {docker version: driver | refused | none})", path, err)
	}
	// Normalise the releases ("20.10" -> "20.10.0").
	out := map[string]map[string]string{}
	for host, byVersion := range m {
		out[host] = map[string]string{}
		for v, d := range byVersion {
			dv, err := selector.ParseDockerVersion(v)
			if err != nil {
				return nil, fmt.Errorf("%s: host %s: %w", path, host, err)
			}
			out[host][dv.String()] = d
		}
	}
	return out, nil
}

// saveExpect writes rows in the form loadExpect reads: host -> "release" ->
// decision, hosts and releases in the rows' order. The releases are quoted
// so that a reader never takes "20.10" for a number.
func saveExpect(path string, rows []MatrixRow) error {
	str := func(v string, style yaml.Style) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Style: style}
	}
	root := &yaml.Node{Kind: yaml.MappingNode, HeadComment: "Expected storage-driver decisions: host -> Docker release -> the\n" +
		"storage-driver value, \"refused\" (exit 4) or \"none\" (exit 3).\n" +
		"Written by graphprobe matrix --write-expect; review every change."}
	hosts := map[string]*yaml.Node{}
	for _, r := range rows {
		byVersion := hosts[r.Host]
		if byVersion == nil {
			byVersion = &yaml.Node{Kind: yaml.MappingNode}
			hosts[r.Host] = byVersion
			root.Content = append(root.Content, str(r.Host, 0), byVersion)
		}
		byVersion.Content = append(byVersion.Content, str(r.DockerVersion, yaml.DoubleQuotedStyle), str(r.Decision, 0))
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return fmt.Errorf("write expected decisions %s: %w", path, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write expected decisions %s: %w", path, err)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func renderMatrix(w io.Writer, s *style, doc matrixDoc) {
	hw, kw := len("HOST"), len("KERNEL")
	for _, r := range doc.Rows {
		hw, kw = max(hw, len(r.Host)), max(kw, len(r.Kernel))
	}
	fmt.Fprintf(w, "%-*s  %-*s  %-8s  %-15s  %s\n", hw, "HOST", kw, "KERNEL", "DOCKER", "DRIVER", "REASON")
	for _, r := range doc.Rows {
		d := r.Decision
		switch {
		case r.Matches != nil && !*r.Matches:
			d = s.red(fmt.Sprintf("%-15s", d))
		case d == "none" || d == "refused":
			d = s.yellow(fmt.Sprintf("%-15s", d))
		default:
			d = fmt.Sprintf("%-15s", d)
		}
		reason := r.Reason
		if r.Matches != nil && !*r.Matches {
			reason = "expected " + r.Expected + "; " + reason
		}
		fmt.Fprintf(w, "%-*s  %-*s  %-8s  %s  %s\n", hw, r.Host, kw, r.Kernel, r.DockerVersion, d, reason)
	}
	if doc.Mismatches > 0 {
		fmt.Fprintf(w, "%s\n", s.red(fmt.Sprintf("%d decision(s) differ from the expected ones", doc.Mismatches)))
	}
}

// lookupExpect finds the expectation for a release: the exact version, or
// else one of the same major.minor (the rules never change within a minor
// release line, so an expectation for 25.0.5 also holds for 25.0.3).
func lookupExpect(byVersion map[string]string, version string) (string, bool) {
	if d, ok := byVersion[version]; ok {
		return d, true
	}
	want, err := selector.ParseDockerVersion(version)
	if err != nil {
		return "", false
	}
	for v, d := range byVersion {
		if got, err := selector.ParseDockerVersion(v); err == nil && got.Major == want.Major && got.Minor == want.Minor {
			return d, true
		}
	}
	return "", false
}
