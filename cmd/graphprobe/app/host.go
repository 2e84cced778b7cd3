package app

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
	"github.com/graphprobe/graphprobe/selector/dockerflags"
)

// host is a host as every command loads it: its daemon.json, read once
// (the data-root to probe comes from it, and select merges into the same
// bytes), how dockerd is started, and the probe options both lead to.
type host struct {
	configFile *daemonjson.File
	// config is the parsed daemon.json, nil when there is none.
	config *daemonjson.Document
	// flags is how the host starts dockerd; flagsErr why it could not be
	// read (probe and capture go on without it, select refuses to guess).
	flags     *dockerflags.Report
	flagsErr  error
	probeOpts probe.Options
}

// loadHost reads a live host ("" root prefix) or a fixture tree. dataRoot
// is --data-root ("" for daemon.json's data-root, else the probe's
// default). Errors are runtime errors (exit 1).
func loadHost(rootPrefix, configPath, dataRoot string) (*host, error) {
	f, err := daemonjson.Open(configPath)
	if err != nil {
		return nil, withCode(ExitRuntime, err)
	}
	h := &host{configFile: f}
	if f.Exists {
		if h.config, err = daemonjson.Parse(configPath, f.Content); err != nil {
			return nil, withCode(ExitRuntime, err)
		}
	}
	if dataRoot == "" && h.config != nil && h.config.DataRoot != "" {
		if !filepath.IsAbs(h.config.DataRoot) {
			return nil, withCode(ExitRuntime, fmt.Errorf("%s: data-root %q must be an absolute path", configPath, h.config.DataRoot))
		}
		dataRoot = filepath.Clean(h.config.DataRoot)
	}
	h.probeOpts = probe.Options{RootPrefix: rootPrefix, DataRoot: dataRoot, PriorDirs: drivers.PriorDirs()}
	h.flags, h.flagsErr = scanDockerd(rootPrefix, &h.probeOpts)
	return h, nil
}

// dockerFlags is how the host starts dockerd, for the commands that
// decide: a unit that cannot be read may hide a storage flag.
func (h *host) dockerFlags() (*dockerflags.Report, error) {
	if h.flagsErr != nil {
		return nil, withCode(ExitRuntime, h.flagsErr)
	}
	return h.flags, nil
}

// probe runs the probe on the host; loadModules lets it load a module to
// test it.
func (h *host) probe(ctx context.Context, loadModules bool) (*probe.Report, error) {
	opts := h.probeOpts
	opts.LoadModules = loadModules
	return probe.Run(ctx, opts)
}

// scanDockerd reads how the host starts dockerd (the docker unit, its
// drop-ins and environment files) and points the probe at the PATH dockerd
// runs with, where dockerd itself looks for fuse-overlayfs.
func scanDockerd(rootPrefix string, opts *probe.Options) (*dockerflags.Report, error) {
	root := rootPrefix
	if root == "" {
		root = "/"
	}
	fl, err := dockerflags.Scan(root)
	if err != nil {
		return nil, err
	}
	if fl.Path != "" {
		opts.DockerdPath = filepath.SplitList(fl.Path)
		opts.DockerdPathFrom = fl.PathFrom
	}
	return fl, nil
}
