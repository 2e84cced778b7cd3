package selector

import "fmt"

// keptReason is the reason given when the configured storage-driver is
// kept as it is.
func keptReason(cfg string) string {
	return fmt.Sprintf("storage-driver %q is already configured and usable here", cfg)
}

// explainRewrite corrects the reason of a kept configuration when finish
// writes something else than what is configured: the driver is kept, but
// its name (snapshotter or graph driver) or features.containerd-snapshotter
// changes, and the reason must say so, as the diff shows it.
func (d *Decision) explainRewrite(opts Options) {
	cfg := opts.Configured.StorageDriver
	if cfg == "" || d.Reason != keptReason(cfg) {
		return
	}
	feat := opts.Configured.ContainerdSnapshotter
	featChanges := d.SetContainerdSnapshotter != nil && (feat == nil || *feat != *d.SetContainerdSnapshotter)
	store := "graph-driver"
	if d.ImageStore == StoreContainerd {
		store = "containerd"
	}
	why := fmt.Sprintf("for the %s image store that Docker %s uses here", store, d.DockerVersion)
	if opts.ImageStore != "" {
		why = fmt.Sprintf("for the %s image store asked for (imageStore %s)", store, opts.ImageStore)
	}
	switch {
	case d.StorageDriver != cfg:
		name := "the graph driver's name"
		if d.ImageStore == StoreContainerd {
			name = "its containerd snapshotter's name"
		}
		d.Reason = fmt.Sprintf("the configured storage-driver %q is rewritten as %q (%s) %s; %s can run here",
			cfg, d.StorageDriver, name, why, d.Driver)
	case featChanges:
		d.Reason = fmt.Sprintf("storage-driver %q is already configured and usable here; features.containerd-snapshotter is set to %t %s",
			cfg, *d.SetContainerdSnapshotter, why)
	}
}
