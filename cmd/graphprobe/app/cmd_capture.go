package app

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/probe"
)

const captureUsage = `Usage: graphprobe capture OUT [FLAGS]

Write this host's probe inputs as a fixture host: a directory, or a .tar.gz
when OUT ends so. Only what the probe reads is copied: the kernel release,
/proc/filesystems, /proc/modules, mountinfo, the kernel config, the storage
lines of modules.dep and modules.builtin, overlay parameters, os-release,
daemon.json and dockerd's unit and environment files, device and binary
presence, and the names (never the content) of the data-root's driver dirs.
The live test results a fixture cannot reproduce (test mounts, d_type,
statfs) go into graphprobe-capture.json, which --root-prefix reports with
method "captured". Keep captures in a repository and run 'graphprobe matrix'
over them in CI.

Flags:
  --data-root DIR           Docker's data root (default: from daemon.json,
                            else /var/lib/docker)
  --config FILE             the daemon.json to include
                            (default /etc/docker/daemon.json)
  --format text|json|yaml   how to list what was written

Examples:
  graphprobe capture hosts/$(hostname)
  graphprobe capture /tmp/host.tar.gz
  graphprobe probe --root-prefix hosts/web-01
`

func captureCommand() *command {
	return &command{name: "capture", summary: "write this host's probe inputs as a fixture host", usage: captureUsage, run: runCapture}
}

func runCapture(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("capture")
	c := addCommon(fs)
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("capture: want one OUT argument (a directory, or a file ending in .tar.gz)")
	}
	if c.rootPrefix != "" {
		return usageErrorf("capture: --root-prefix makes no sense here: capture reads the live host")
	}
	out := pos[0]
	if _, err := os.Lstat(out); err == nil && !isEmptyDir(out) {
		return withCode(ExitRuntime, fmt.Errorf("capture: %s already exists; choose a new path (nothing was written)", out))
	}
	r, err := doProbe(ctx, c, false)
	if err != nil {
		return err
	}
	files, err := probe.CaptureTo(ctx, out, probe.CaptureOptions{DataRoot: r.DataRoot.Path, ConfigPath: c.configPath(), Report: r, PriorDirs: drivers.PriorDirs()})
	if err != nil {
		return withCode(ExitRuntime, err)
	}
	doc := struct {
		SchemaVersion int      `json:"schemaVersion"`
		Path          string   `json:"path"`
		Files         []string `json:"files"`
		Release       string   `json:"release"`
		DataRoot      string   `json:"dataRoot"`
	}{1, out, files, r.Kernel.Release, r.DataRoot.Path}
	return writeDoc(e.stdout, *c.format, doc, func(w io.Writer, s *style) {
		fmt.Fprintf(w, "captured %s (kernel %s, data-root %s on %s): %d files\n", out, r.Kernel.Release, r.DataRoot.Path, r.DataRoot.Filesystem, len(files))
		if !r.Privileged {
			fmt.Fprintln(w, "not root: the capture holds no mount-test results; capture as root for those")
		}
	})
}

func isEmptyDir(p string) bool {
	entries, err := os.ReadDir(p)
	return err == nil && len(entries) == 0
}
