package app

import (
	"path/filepath"

	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector/dockerflags"
)

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
