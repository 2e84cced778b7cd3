package app

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
)

const probeUsage = `Usage: graphprobe probe [FLAGS]

Report the host facts that decide a Docker storage driver: the kernel and
what its version says, what real test mounts found, the data-root's
filesystem, d_type, modules, kernel config, prior driver state and the
Docker engine. Read-only: it never loads a module and never writes outside
its own scratch dir, which it removes.

Flags:
  --load-modules            modprobe overlay/aufs first when loadable
` + commonUsage + `
Examples:
  graphprobe probe
  graphprobe probe --format json | jq '.facts["overlay.multi-lowerdir"]'
  graphprobe probe --root-prefix testdata/hosts/centos-7.9 --format yaml
`

func probeCommand() *command {
	return &command{name: "probe", summary: "report the host facts (read-only)", usage: probeUsage, run: runProbe}
}

func runProbe(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("probe")
	c := addCommon(fs)
	loadModules := fs.Bool("load-modules", false, "")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noPositional("probe", pos); err != nil {
		return err
	}
	r, err := doProbe(ctx, c, *loadModules)
	if err != nil {
		return err
	}
	return writeDoc(e.stdout, *c.format, r, func(w io.Writer, s *style) { renderProbeText(w, s, r) })
}

// configPath is the daemon.json the run reads (and select writes), as seen
// from this process: under the root prefix for a fixture host.
func (c *commonFlags) configPath() string {
	if c.config != "" {
		return c.config
	}
	if c.rootPrefix != "" {
		return filepath.Join(c.rootPrefix, "etc/docker/daemon.json")
	}
	return "/etc/docker/daemon.json"
}

// resolveDataRoot applies the default: data-root from the daemon.json in
// use, else /var/lib/docker.
func (c *commonFlags) resolveDataRoot() (string, error) {
	if c.dataRoot != "" {
		return c.dataRoot, nil // absolute and clean: see absPathValue
	}
	dr, err := dataRootFromConfig(c.configPath())
	if err != nil {
		return "", err
	}
	// "": the probe's default (a capture's own data-root, else
	// /var/lib/docker).
	return dr, nil
}

// dataRootFromConfig reads "data-root" (or the older "graph") from
// daemon.json; a missing file is no error, a malformed one is.
func dataRootFromConfig(path string) (string, error) {
	f, err := daemonjson.Open(path)
	if err != nil {
		return "", withCode(ExitRuntime, err)
	}
	if !f.Exists {
		return "", nil
	}
	doc, err := daemonjson.Parse(path, f.Content)
	if err != nil {
		return "", withCode(ExitRuntime, err)
	}
	if doc.DataRoot == "" {
		return "", nil
	}
	if !filepath.IsAbs(doc.DataRoot) {
		return "", withCode(ExitRuntime, fmt.Errorf("%s: data-root %q must be an absolute path", path, doc.DataRoot))
	}
	return filepath.Clean(doc.DataRoot), nil
}

func doProbe(ctx context.Context, c *commonFlags, loadModules bool) (*probe.Report, error) {
	dr, err := c.resolveDataRoot()
	if err != nil {
		return nil, err
	}
	opts := probe.Options{RootPrefix: c.rootPrefix, DataRoot: dr, LoadModules: loadModules, PriorDirs: drivers.PriorDirs()}
	// A unit that cannot be read hides only where dockerd looks for
	// fuse-overlayfs: the probe then uses the default PATH.
	_, _ = scanDockerd(c.rootPrefix, &opts)
	r, err := probe.Run(ctx, opts)
	if err != nil {
		return nil, withCode(ExitRuntime, err)
	}
	return r, nil
}

// factOrder is the order facts are shown to people.
var factOrder = probe.FactNames()

func renderProbeText(w io.Writer, s *style, r *probe.Report) {
	k := r.Kernel
	kernel := k.Release
	if k.Error != "" {
		kernel += " (" + k.Error + ")"
	}
	osName := r.OS.PrettyName
	if osName == "" {
		osName = strings.TrimSpace(r.OS.ID + " " + r.OS.VersionID)
	}
	fmt.Fprintf(w, "%s\n", s.bold("Host"))
	fmt.Fprintf(w, "  kernel       %s\n", kernel)
	if osName != "" {
		fmt.Fprintf(w, "  os           %s\n", osName)
	}
	mode := r.Mode
	if r.Mode == "live" && !r.Privileged {
		mode += " (not root: mount tests skipped)"
	}
	fmt.Fprintf(w, "  mode         %s\n", mode)
	dr := r.DataRoot
	fmt.Fprintf(w, "%s\n", s.bold("Data root"))
	where := dr.Path
	if !dr.Exists {
		where += " (not created yet; probed " + dr.ProbedPath + ")"
	}
	fmt.Fprintf(w, "  path         %s\n", where)
	fsLine := dr.Filesystem
	if dr.MountPoint != "" {
		fsLine += " on " + dr.MountPoint
	}
	if dr.OnOverlay {
		fsLine += s.yellow("  (nested on overlayfs)")
	}
	fmt.Fprintf(w, "  filesystem   %s\n", fsLine)
	dt := r.Facts[probe.FactDType]
	fmt.Fprintf(w, "  d_type       %s %s\n", triText(s, dt.Supported), s.dim("("+string(dt.Method)+")"))
	if dr.InodesTotal > 0 {
		fmt.Fprintf(w, "  inodes       %d free of %d\n", dr.InodesFree, dr.InodesTotal)
	}
	prior := "none"
	if len(r.PriorDrivers) > 0 {
		prior = strings.Join(r.PriorDrivers, ", ")
	}
	fmt.Fprintf(w, "  prior state  %s\n", prior)
	fmt.Fprintf(w, "%s\n", s.bold("Docker"))
	run := "not running"
	if r.Docker.Running {
		run = "running"
	}
	switch {
	case r.Docker.Version != "":
		fmt.Fprintf(w, "  engine       %s (%s)\n", r.Docker.Version, run)
	case r.Docker.Binary != "" && r.Mode == "fixture":
		fmt.Fprintf(w, "  engine       %s (version not captured)\n", r.Docker.Binary)
	case r.Docker.Binary != "":
		fmt.Fprintf(w, "  engine       %s (version unknown, %s)\n", r.Docker.Binary, run)
	default:
		fmt.Fprintf(w, "  engine       not found\n")
	}
	fmt.Fprintf(w, "%s\n", s.bold("Facts"))
	names := append([]string(nil), factOrder...)
	for n := range r.Facts {
		if !contains(names, n) {
			names = append(names, n)
		}
	}
	sort.SliceStable(names[len(factOrder):], func(i, j int) bool { return names[len(factOrder)+i] < names[len(factOrder)+j] })
	for _, n := range names {
		f, ok := r.Facts[n]
		if !ok {
			continue
		}
		ver := ""
		if f.Version != nil {
			ver = " version:" + map[bool]string{true: "yes", false: "no"}[*f.Version]
		}
		fmt.Fprintf(w, "  %-24s %s %s%s\n", n, s.pad(triText(s, f.Supported), 7), s.dim("("+string(f.Method)+ver+")"), moduleText(f))
		if f.Detail != "" {
			fmt.Fprintf(w, "  %-24s %s\n", "", f.Detail)
		}
		if f.Hint != "" && !f.Yes() {
			fmt.Fprintf(w, "  %-24s %s %s\n", "", s.yellow("fix:"), f.Hint)
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(w, "%s\n", s.bold("Warnings"))
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "  %s\n", warn)
		}
	}
}

func moduleText(f probe.Fact) string {
	if f.Module == "" {
		return ""
	}
	return " module:" + string(f.Module)
}

func triText(s *style, b *bool) string {
	switch {
	case b == nil:
		return s.yellow("unknown")
	case *b:
		return s.green("yes")
	default:
		return s.red("no")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
