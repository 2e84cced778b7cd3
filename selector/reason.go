package selector

import (
	"fmt"
	"strings"

	"github.com/graphprobe/graphprobe/selector/policy"
)

// keptReason is the reason given when the configured storage-driver is
// kept as it is.
func keptReason(cfg string) string {
	return fmt.Sprintf("storage-driver %q is already configured and usable here", cfg)
}

// excludedByPolicy is the reason a driver that could run is left out.
const excludedByPolicy = "excluded by policy"

// explain corrects a reason that the choice alone cannot get right: see
// explainRewrite and explainPolicy.
func (d *Decision) explain(opts Inputs) {
	if d.Driver != "" {
		d.explainRewrite(opts)
		return
	}
	if d.Refusal == nil && opts.Driver == "" {
		d.explainPolicy()
	}
}

// explainPolicy names the policy as the cause when drivers could run here
// but it removed every one of them (by exclude, or by leaving them out of
// priority, which PolicyInputs turns into exclusions): "no storage driver can
// run on this host" would send the user after the host, not the policy.
func (d *Decision) explainPolicy() {
	var excluded []string
	for _, c := range d.Candidates {
		if n := len(c.Reasons); !c.Eligible && n > 0 && c.Reasons[n-1] == excludedByPolicy && c.Priority >= 0 {
			excluded = append(excluded, c.Driver)
		}
	}
	if len(excluded) == 0 {
		return
	}
	d.Reason = fmt.Sprintf("the policy leaves no storage driver for Docker %s: %s can run on this host, but the policy excludes %s or leaves %s out of its priority list; allow %s",
		d.DockerVersion, joinAnd(excluded), plural(len(excluded), "it", "them"), plural(len(excluded), "it", "them"), plural(len(excluded), "it", "one of them"))
}

func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// explainRewrite corrects the reason of a kept configuration when finish
// writes something else than what is configured: the driver is kept, but
// its name (snapshotter or graph driver) or features.containerd-snapshotter
// changes, and the reason must say so, as the diff shows it.
func (d *Decision) explainRewrite(opts Inputs) {
	cfg := opts.Configured.StorageDriver
	if cfg == "" || d.Reason != keptReason(cfg) {
		return
	}
	feat := opts.Configured.ContainerdSnapshotter
	featChanges := d.SetContainerdSnapshotter != nil && (feat == nil || *feat != *d.SetContainerdSnapshotter)
	store := "graph-driver"
	if d.ImageStore == policy.ImageStoreContainerd {
		store = "containerd"
	}
	why := fmt.Sprintf("for the %s image store that Docker %s uses here", store, d.DockerVersion)
	if opts.ImageStore != "" {
		why = fmt.Sprintf("for the %s image store asked for (imageStore %s)", store, opts.ImageStore)
	}
	switch {
	case d.StorageDriver != cfg:
		name := "the graph driver's name"
		if d.ImageStore == policy.ImageStoreContainerd {
			name = "its containerd snapshotter's name"
		}
		d.Reason = fmt.Sprintf("the configured storage-driver %q is rewritten as %q (%s) %s; %s can run here",
			cfg, d.StorageDriver, name, why, d.Driver)
	case featChanges:
		d.Reason = fmt.Sprintf("storage-driver %q is already configured and usable here; features.containerd-snapshotter is set to %t %s",
			cfg, *d.SetContainerdSnapshotter, why)
	}
}
