package selector

import (
	"fmt"
	"sort"
	"strings"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/bench"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/version"
)

// Image store modes.
const (
	StoreGraphDriver = "graphdriver"
	StoreContainerd  = "containerd"
)

// Strategies.
const (
	StrategyPriority = "priority"
	StrategyFastest  = "fastest"
)

// Configured is what the daemon.json in use already says.
type Configured struct {
	StorageDriver string
	StorageOpts   []string
	// ContainerdSnapshotter is features.containerd-snapshotter, nil if unset.
	ContainerdSnapshotter *bool
}

// Options steer a decision.
type Options struct {
	// Driver is --driver: check and use this one, or fail saying why not.
	Driver string
	// Force allows switching away from a driver that has data.
	Force bool
	// Priority replaces Docker's order (policy); drivers it leaves out keep
	// Docker's order after it.
	Priority []string
	// Exclude removes drivers from consideration (policy).
	Exclude []string
	// StorageOpts are extra storage-opts per driver (policy).
	StorageOpts map[string][]string
	// ImageStore is the policy's preference for Docker 29+: "" follows
	// dockerd's own default, "graphdriver" or "containerd" force one.
	ImageStore string
	Configured Configured
	// Failed are drivers whose live initialisation failed, with the error:
	// they are rejected as dockerd would move past them.
	Failed map[string]string
}

// Candidate is one driver's standing in a decision.
type Candidate struct {
	Driver   string `json:"driver"`
	Eligible bool   `json:"eligible"`
	// Reasons say why the driver is rejected, or notes on why it is fine.
	Reasons []string `json:"reasons"`
	Hints   []string `json:"hints,omitempty"`
	// Unverified lists what the probe could not confirm.
	Unverified []string `json:"unverified,omitempty"`
	// Priority is the driver's position in the order used (0 first), -1
	// when this Docker release does not ship it.
	Priority    int      `json:"priority"`
	Prior       bool     `json:"prior"`
	StorageOpts []string `json:"storageOpts,omitempty"`
	// OwnOpts are the options graphprobe adds for this host (not the
	// user's).
	OwnOpts     []string         `json:"-"`
	Initialized bool             `json:"initialized"`
	InitError   string           `json:"initError,omitempty"`
	Benchmark   *bench.Benchmark `json:"benchmark"`
	// Module is the kernel module a live init loads first.
	Module string `json:"module,omitempty"`
}

// Refusal is why a run stops for safety (exit 4).
type Refusal struct {
	// Kind: "prior-state", "several-prior", "configured-driver", "flag-conflict".
	Kind    string `json:"kind"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// Decision is the outcome of Decide.
type Decision struct {
	DockerVersion version.Docker
	// Driver is the graph driver chosen ("" when none or refused).
	Driver string
	// StorageDriver is the value for daemon.json's storage-driver: the
	// graph driver, or its containerd snapshotter in the containerd store.
	StorageDriver string
	StorageOpts   []string
	ImageStore    string
	// SetContainerdSnapshotter, when non-nil, is the value
	// features.containerd-snapshotter must have for dockerd to read
	// StorageDriver as intended.
	SetContainerdSnapshotter *bool
	Reason                   string
	Refusal                  *Refusal
	Candidates               []Candidate
	Warnings                 []string
	// Order is the driver order used.
	Order []string
	// FromOrder is true when the driver was chosen by the priority order
	// (not by --driver, the configuration or prior state): only then may
	// the fastest strategy pick another.
	FromOrder bool

	host *probe.Report
	opts Options
}

// Override replaces a choice made by the priority order with another
// eligible driver (the fastest strategy's pick).
func (d *Decision) Override(driver, reason string) error {
	c := d.Candidate(driver)
	if c == nil || !c.Eligible {
		return fmt.Errorf("override with %s: not eligible", driver)
	}
	if !d.FromOrder {
		return fmt.Errorf("override with %s: the driver was not chosen by priority order", driver)
	}
	d.Driver, d.Reason = driver, reason
	d.Warnings = nil
	d.finish(d.host, d.opts, nil)
	return nil
}

// Candidate returns the named candidate.
func (d *Decision) Candidate(name string) *Candidate {
	for i := range d.Candidates {
		if d.Candidates[i].Driver == name {
			return &d.Candidates[i]
		}
	}
	return nil
}

// Eligible returns the eligible candidates in order.
func (d *Decision) Eligible() []string {
	var out []string
	for _, c := range d.Candidates {
		if c.Eligible {
			out = append(out, c.Driver)
		}
	}
	return out
}

// Decide chooses a driver as dockerd of version dv would on the host the
// report describes, then applies the caller's policy. It is pure.
func Decide(r *probe.Report, dv version.Docker, opts Options) *Decision {
	d := &Decision{DockerVersion: dv, host: r, opts: opts}
	d.Order = order(dv, opts.Priority)
	prior := map[string]bool{}
	for _, p := range r.PriorDrivers {
		prior[p] = true
	}
	excluded := map[string]bool{}
	for _, e := range opts.Exclude {
		excluded[e] = true
	}
	pos := map[string]int{}
	for i, n := range d.Order {
		pos[n] = i
	}
	for _, info := range drivers.All() {
		name := info.Name
		v := eligibility(r, dv, name)
		c := Candidate{Driver: name, Eligible: v.eligible, Reasons: v.reasons, Hints: v.hints, Unverified: v.unverified, Prior: prior[name], Module: v.module}
		if c.Reasons == nil {
			c.Reasons = []string{}
		}
		if p, ok := pos[name]; ok {
			c.Priority = p
		} else {
			c.Priority = -1
		}
		if c.Eligible && excluded[name] {
			c.Eligible = false
			c.Reasons = append(c.Reasons, "excluded by policy")
		}
		if why, ok := opts.Failed[name]; ok && c.Eligible {
			c.Eligible = false
			c.InitError = why
			c.Reasons = append(c.Reasons, "initialisation failed: "+why)
		}
		if c.Eligible {
			c.OwnOpts = v.opts
			c.StorageOpts = append(append([]string{}, v.opts...), opts.StorageOpts[name]...)
		}
		d.Candidates = append(d.Candidates, c)
	}
	sort.SliceStable(d.Candidates, func(i, j int) bool {
		pi, pj := d.Candidates[i].Priority, d.Candidates[j].Priority
		if (pi < 0) != (pj < 0) {
			return pj < 0
		}
		return pi < pj
	})
	d.choose(r, opts, prior)
	if d.Driver != "" {
		d.finish(r, opts, prior)
	}
	d.explain(opts)
	return d
}

// order is the policy's priority list followed by the rest of dockerd's.
func order(dv version.Docker, policy []string) []string {
	var out []string
	seen := map[string]bool{}
	ships := map[string]bool{}
	for _, n := range ReleaseFor(dv).Priority {
		ships[n] = true
	}
	for _, n := range policy {
		if ships[n] && !seen[n] {
			out = append(out, n)
			seen[n] = true
		}
	}
	for _, n := range ReleaseFor(dv).Priority {
		if !seen[n] {
			out = append(out, n)
			seen[n] = true
		}
	}
	return out
}

func (d *Decision) choose(r *probe.Report, opts Options, prior map[string]bool) {
	d.chooseDriver(r, opts, prior)
	d.refuseHiddenVfs(r, opts, prior)
}

// refuseHiddenVfs stops a choice that would hide vfs images: dockerd never
// counts vfs data as prior state, so with any other driver they silently
// vanish from docker images.
func (d *Decision) refuseHiddenVfs(r *probe.Report, opts Options, prior map[string]bool) {
	if !prior["vfs"] || d.Driver == "" || d.Driver == "vfs" || d.Refusal != nil {
		return
	}
	dir := r.DataRoot.Path + "/vfs"
	if opts.Force {
		d.Warnings = append(d.Warnings, fmt.Sprintf("--force: the images and containers under %s stay on disk but are hidden while %s is in use", dir, d.Driver))
		return
	}
	d.Refusal = &Refusal{Kind: "prior-state",
		Message: fmt.Sprintf("%s holds images and containers, which dockerd skips when it picks a driver: with %s (%s) they would vanish from docker images", dir, d.Driver, d.Reason),
		Hint:    "keep them: rerun with --driver vfs; or move to " + d.Driver + ": docker save the images you need, rerun with --force, then docker load them"}
	d.Driver, d.FromOrder = "", false
}

func (d *Decision) chooseDriver(r *probe.Report, opts Options, prior map[string]bool) {
	// vfs data is not prior state to dockerd (refuseHiddenVfs).
	var priorList []string
	for _, p := range r.PriorDrivers {
		if p != "vfs" {
			priorList = append(priorList, p)
		}
	}
	sort.Strings(priorList)
	dataRoot := r.DataRoot.Path

	// --driver: that one or nothing.
	if opts.Driver != "" {
		name := GraphDriverFor(opts.Driver)
		c := d.Candidate(name)
		if c == nil {
			d.Reason = fmt.Sprintf("unknown storage driver %q (known: %s)", opts.Driver, strings.Join(drivers.Names(), ", "))
			return
		}
		if !c.Eligible {
			d.Reason = fmt.Sprintf("%s cannot run here: %s", name, joinReasons(c.Reasons))
			return
		}
		if len(priorList) > 0 && !prior[name] && !opts.Force {
			d.Refusal = &Refusal{Kind: "prior-state",
				Message: fmt.Sprintf("%s holds images and containers of %s; switching to %s would hide them", dataRoot, strings.Join(priorList, ", "), name),
				Hint:    "rerun with --force to switch anyway (no data is deleted; docker save what you need first), or choose " + strings.Join(priorList, " or ")}
			return
		}
		d.Driver = name
		d.Reason = "chosen with --driver and usable here"
		if len(priorList) > 0 && !prior[name] {
			d.Warnings = append(d.Warnings, fmt.Sprintf("--force: the images and containers under %s/%s stay on disk but are hidden while %s is in use", dataRoot, priorList[0], name))
		}
		return
	}

	// An explicit configuration is kept while it works: reruns must not
	// flip the driver.
	if cfg := opts.Configured.StorageDriver; cfg != "" {
		name := GraphDriverFor(cfg)
		c := d.Candidate(name)
		switch {
		case c != nil && c.Eligible:
			d.Driver = name
			d.Reason = keptReason(cfg)
			return
		case prior[name] && !opts.Force:
			why := "it is unknown"
			if c != nil {
				why = joinReasons(c.Reasons)
			}
			d.Refusal = &Refusal{Kind: "configured-driver",
				Message: fmt.Sprintf("the configured storage-driver %q holds data under %s/%s but cannot run here: %s", cfg, dataRoot, name, why),
				Hint:    "fix what stops " + name + " (see the reasons), or migrate: docker save images, then rerun with --force"}
			return
		default:
			d.Warnings = append(d.Warnings, fmt.Sprintf("the configured storage-driver %q cannot run here and is replaced", cfg))
		}
	}

	// Prior state wins, as in dockerd. dockerd only looks at the dirs of
	// drivers it still has: data of a removed driver (aufs on 24+) is
	// silently ignored there, and its images hidden — graphprobe refuses
	// that switch unless forced.
	var shipped, removed []string
	for _, p := range priorList {
		if ok, _ := Ships(d.DockerVersion, p); ok {
			shipped = append(shipped, p)
		} else {
			removed = append(removed, p)
		}
	}
	for _, p := range removed {
		if len(shipped) > 0 {
			d.Warnings = append(d.Warnings, fmt.Sprintf("%s/%s holds images of %s, which Docker %s no longer has: they stay on disk, unreachable, while %s is in use", dataRoot, p, p, d.DockerVersion, shipped[0]))
		}
	}
	if len(shipped) > 1 && !opts.Force {
		d.Refusal = &Refusal{Kind: "several-prior",
			Message: fmt.Sprintf("%s contains several valid graphdrivers: %s; dockerd refuses to start", dataRoot, strings.Join(shipped, ", ")),
			Hint:    "remove the driver directories you no longer need, or choose one with --driver NAME --force"}
		return
	}
	if len(shipped) == 1 {
		p := shipped[0]
		c := d.Candidate(p)
		if c != nil && c.Eligible {
			d.Driver = p
			d.Reason = fmt.Sprintf("prior state: %s/%s holds images and containers, and dockerd keeps the driver it finds", dataRoot, p)
			return
		}
		if !opts.Force {
			why := "it is unknown"
			if c != nil {
				why = joinReasons(c.Reasons)
			}
			hint := "migrate: docker save the images you need (on a kernel that still runs " + p + "), then rerun with --force and docker load them"
			if c != nil && len(c.Hints) > 0 {
				hint = c.Hints[0] + "; or " + hint
			}
			d.Refusal = &Refusal{Kind: "prior-state",
				Message: fmt.Sprintf("%s/%s holds images and containers, but %s cannot run here: %s; dockerd would fail to start (\"prior storage driver %s failed\")", dataRoot, p, p, why, p),
				Hint:    hint}
			return
		}
		d.Warnings = append(d.Warnings, fmt.Sprintf("--force: the images and containers under %s/%s stay on disk but are hidden", dataRoot, p))
	}
	if len(shipped) == 0 && len(removed) > 0 {
		if !opts.Force {
			d.Refusal = &Refusal{Kind: "prior-state",
				Message: fmt.Sprintf("%s holds images and containers of %s, which Docker %s no longer has; dockerd would start with another driver and silently hide them", dataRoot, strings.Join(removed, ", "), d.DockerVersion),
				Hint:    "migrate before upgrading Docker: docker save the images you need with the old Docker, then rerun with --force and docker load them"}
			return
		}
		d.Warnings = append(d.Warnings, fmt.Sprintf("--force: the images and containers under %s/%s stay on disk but are hidden", dataRoot, removed[0]))
	}

	for _, name := range d.Order {
		if c := d.Candidate(name); c != nil && c.Eligible {
			d.Driver = name
			d.FromOrder = true
			d.Reason = fmt.Sprintf("the first usable driver in Docker %s's priority order", d.DockerVersion)
			if len(opts.Priority) > 0 {
				d.Reason = "the first usable driver in the policy's priority order"
			}
			return
		}
	}
	d.Reason = "no storage driver can run on this host for Docker " + d.DockerVersion.String()
}

// finish fills in the image store, the storage-driver value and opts.
func (d *Decision) finish(r *probe.Report, opts Options, prior map[string]bool) {
	c := d.Candidate(d.Driver)
	d.StorageOpts = append([]string{}, c.StorageOpts...)
	if len(c.Unverified) > 0 {
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s is chosen, but the probe could not verify: %s", d.Driver, strings.Join(c.Unverified, "; ")))
	}
	d.ImageStore, d.SetContainerdSnapshotter = imageStore(d.DockerVersion, d.Driver, len(r.PriorDrivers) > 0, opts)
	d.StorageDriver = d.Driver
	if d.ImageStore == StoreContainerd && Snapshotter(d.Driver) != "" && r.Fact(probe.FactDType).No() {
		// Seen with dockerd 29.7.2: on a data-root without d_type the
		// containerd store does not start, whatever the snapshotter
		// ("error initializing buildkit: ... unknown service
		// containerd.services.leases.v1.Leases"); the graph drivers run.
		why := fmt.Sprintf("the containerd image store cannot start on a %s data-root without d_type (dockerd %s fails: \"error initializing buildkit\")", r.DataRoot.Filesystem, d.DockerVersion)
		if explicitContainerdStore(opts) {
			d.Reason = why + "; the containerd store was asked for (" + containerdStoreSource(opts) + ")"
			d.Driver, d.StorageDriver, d.FromOrder = "", "", false
			return
		}
		d.Reason += "; graph-driver mode: " + why
		d.ImageStore, d.SetContainerdSnapshotter = StoreGraphDriver, nil
	}
	if d.ImageStore == StoreContainerd && !opts.Force {
		var graphData []string
		for _, p := range r.PriorDrivers {
			graphData = append(graphData, r.DataRoot.Path+"/"+p)
		}
		if len(graphData) > 0 {
			d.Refusal = &Refusal{Kind: "prior-state",
				Message: fmt.Sprintf("the containerd image store is on (%s), and %s holds images and containers of the graph-driver store: they would vanish from docker images", containerdStoreSource(opts), strings.Join(graphData, ", ")),
				Hint:    "keep them: set features.containerd-snapshotter to false (or remove it); or migrate: docker save the images you need, then rerun with --force and docker load them (Docker 29 can also migrate with features.containerd-migration)"}
			d.Driver, d.StorageDriver, d.FromOrder = "", "", false
			return
		}
	}
	if d.ImageStore == StoreContainerd {
		if snap := Snapshotter(d.Driver); snap != "" {
			d.StorageDriver = snap
			d.StorageOpts = nil
		} else {
			// No snapshotter twin (fuse-overlayfs, btrfs, zfs): dockerd
			// 29 reads the graph driver's name as that graph driver.
			d.ImageStore, d.SetContainerdSnapshotter = StoreGraphDriver, nil
		}
	}
	d.noteOwnChoice(r, opts)
}

// explicitContainerdStore reports whether the containerd store was asked
// for, rather than being the release's default.
func explicitContainerdStore(opts Options) bool {
	feat := opts.Configured.ContainerdSnapshotter
	return opts.ImageStore == StoreContainerd || (feat != nil && *feat)
}

// containerdStoreSource says who switched the containerd store on.
func containerdStoreSource(opts Options) string {
	switch feat := opts.Configured.ContainerdSnapshotter; {
	case opts.ImageStore == StoreContainerd:
		return "asked for with --image-store or the policy's imageStore"
	case feat != nil && *feat:
		return "features.containerd-snapshotter is true in daemon.json"
	}
	return "the release's default"
}

// noteOwnChoice says why the decision differs from what dockerd 29+ does
// with no storage-driver on a fresh data-root: the overlayfs snapshotter,
// which it starts without checking the data-root. Where overlay cannot
// run there (no d_type, a data-root on overlayfs) that choice fails to
// start or to import an image.
func (d *Decision) noteOwnChoice(r *probe.Report, opts Options) {
	if !ReleaseFor(d.DockerVersion).ContainerdStoreDefault() || len(r.PriorDrivers) > 0 || opts.Configured.ContainerdSnapshotter != nil {
		return
	}
	if d.ImageStore == StoreContainerd && d.StorageDriver == "overlayfs" {
		return
	}
	ov := d.Candidate("overlay2")
	if ov == nil || ov.Eligible {
		return
	}
	d.Reason += fmt.Sprintf("; dockerd %s on its own would use the overlayfs snapshotter, which fails here: %s", d.DockerVersion, joinReasons(ov.Reasons))
}

// imageStore decides graph driver or containerd store, following dockerd
// 29's own choice: explicit features.containerd-snapshotter first, then the
// storage-driver name, then prior graph-driver state, then the default.
func imageStore(dv version.Docker, driver string, hasPrior bool, opts Options) (string, *bool) {
	feat := opts.Configured.ContainerdSnapshotter
	if !ReleaseFor(dv).ContainerdStoreAvailable() {
		return StoreGraphDriver, nil
	}
	if opts.Driver != "" && opts.ImageStore == "" {
		// --driver means what the user typed: a snapshotter name is the
		// containerd store, a graph driver's name the graph driver.
		if GraphDriverFor(opts.Driver) != opts.Driver {
			opts.ImageStore = StoreContainerd
		} else {
			opts.ImageStore = StoreGraphDriver
		}
	}
	switch opts.ImageStore {
	case StoreGraphDriver:
		if feat != nil && *feat {
			return StoreGraphDriver, boolPtr(false)
		}
		return StoreGraphDriver, nil
	case StoreContainerd:
		if hasPrior && !opts.Force {
			// Graph-driver data stays visible only in graph-driver mode.
			return StoreGraphDriver, nil
		}
		if feat != nil && *feat {
			return StoreContainerd, nil
		}
		if !ReleaseFor(dv).ContainerdStoreDefault() || feat != nil {
			return StoreContainerd, boolPtr(true)
		}
		return StoreContainerd, nil
	}
	if feat != nil {
		if *feat {
			return StoreContainerd, nil
		}
		return StoreGraphDriver, nil
	}
	if !ReleaseFor(dv).ContainerdStoreDefault() {
		return StoreGraphDriver, nil
	}
	if cfg := opts.Configured.StorageDriver; cfg != "" && GraphDriverFor(cfg) == driver {
		switch {
		case ForcesGraphDriverMode(cfg):
			return StoreGraphDriver, nil
		case cfg == driver && hasPrior:
			// "fuse-overlayfs" or "zfs" with graph-driver data: dockerd 29
			// would read the name as a snapshotter and hide the data.
			return StoreGraphDriver, nil
		}
		return StoreContainerd, nil
	}
	if hasPrior {
		return StoreGraphDriver, nil
	}
	return StoreContainerd, nil
}

func boolPtr(b bool) *bool { return &b }
