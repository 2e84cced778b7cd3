package selector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/bench"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
	"github.com/graphprobe/graphprobe/selector/dockerflags"
	"github.com/graphprobe/graphprobe/selector/policy"
	"github.com/graphprobe/graphprobe/version"
)

// Request is one `graphprobe select` (or `bench`) run.
type Request struct {
	// Report is the probe of the host (live or fixture).
	Report *probe.Report
	// RootPrefix is the fixture tree ("" for the live host).
	RootPrefix string
	// Config is the daemon.json, already opened and parsed.
	ConfigFile *daemonjson.File
	Config     *daemonjson.Document
	// Flags is how the host starts dockerd; nil scans the host for it.
	Flags *dockerflags.Report
	// DockerVersion is the target release; Source says where it came from
	// ("flag", "dockerd", "newest-known").
	DockerVersion       version.Docker
	DockerVersionSource string
	Policy              *policy.Policy
	// Driver is --driver.
	Driver   string
	Force    bool
	DryRun   bool
	Bench    string // quick, full, off
	Strategy string // priority, fastest
	// LoadModules lets a live init load a driver's module, as dockerd does.
	LoadModules bool
	// BenchOnly is the bench command: benchmark Drivers (or every eligible
	// driver) and write nothing.
	BenchOnly    bool
	BenchDrivers []string
	Progress     io.Writer
	Exec         probe.ExecFunc

	// ImageStore is --image-store: "" (not given) leaves it to the
	// policy, "default" to the release, "graphdriver" or "containerd"
	// force one on Docker 24+.
	ImageStore string
	// Proven says Report comes from a proof record that still holds
	// (selector/state): the live host is decided on it without
	// initialising or benchmarking the driver again.
	Proven bool
}

// Result is the select (and bench) document.
type Result struct {
	SchemaVersion       int    `json:"schemaVersion"`
	DockerVersion       string `json:"dockerVersion"`
	DockerVersionSource string `json:"dockerVersionSource"`
	// Driver is the storage-driver value for daemon.json ("" when none, or
	// refused): a graph driver, or its snapshotter in the containerd store.
	Driver string `json:"driver"`
	// GraphDriver is the driver graphprobe initialised and measured.
	GraphDriver string                  `json:"graphDriver"`
	StorageOpts []string                `json:"storageOpts"`
	DroppedOpts []daemonjson.DroppedOpt `json:"droppedOpts,omitempty"`
	ImageStore  string                  `json:"imageStore"`
	// ContainerdSnapshotter is the features.containerd-snapshotter value
	// set, when one had to be.
	ContainerdSnapshotter *bool                 `json:"containerdSnapshotter,omitempty"`
	Strategy              string                `json:"strategy"`
	Bench                 string                `json:"bench"`
	Reason                string                `json:"reason"`
	Refused               *Refusal              `json:"refused,omitempty"`
	Candidates            []Candidate           `json:"candidates"`
	Environment           map[string]string     `json:"environment,omitempty"`
	DockerFlags           []dockerflags.Finding `json:"dockerFlags,omitempty"`
	DaemonJSON            *DaemonJSONResult     `json:"daemonJSON"`
	Warnings              []string              `json:"warnings,omitempty"`
	Probe                 *probe.Report         `json:"probe"`
	// BenchLines are the benchmark results as Go benchmark lines.
	BenchLines []string `json:"-"`
}

// DaemonJSONResult says what happened to daemon.json.
type DaemonJSONResult struct {
	Path    string `json:"path"`
	Changed bool   `json:"changed"`
	Written bool   `json:"written"`
	Backup  string `json:"backup,omitempty"`
	// Report is the copy of this document kept beside the backup.
	Report string `json:"report,omitempty"`
	// Diff is the unified diff of the change (also when written).
	Diff         string   `json:"diff,omitempty"`
	RemovedTemps []string `json:"removedTemps,omitempty"`
}

// Exit states a result implies.
var (
	// ErrNoDriver: no storage driver can run (exit 3).
	ErrNoDriver = errors.New("no usable storage driver")
	// ErrRefused: stopped for safety (exit 4).
	ErrRefused = errors.New("refused for safety")
)

// Outcome maps a result to ErrNoDriver, ErrRefused or nil.
func (r *Result) Outcome() error {
	switch {
	case r.Refused != nil:
		return fmt.Errorf("%w: %s", ErrRefused, r.Refused.Message)
	case r.Driver == "" && !r.benchOnly():
		return fmt.Errorf("%w: %s", ErrNoDriver, r.Reason)
	}
	return nil
}

func (r *Result) benchOnly() bool { return r.DaemonJSON == nil }

// Run decides, proves (live), and merges the result into daemon.json (unless
// dry-run or bench-only). Errors are runtime errors (exit 1); the result's
// Outcome says whether the run found no driver or refused.
func Run(ctx context.Context, req Request) (*Result, error) {
	r := req.Report
	res := &Result{
		SchemaVersion:       1,
		DockerVersion:       req.DockerVersion.String(),
		DockerVersionSource: req.DockerVersionSource,
		Strategy:            req.Strategy,
		Bench:               req.Bench,
		StorageOpts:         []string{},
		Probe:               r,
	}
	if Newer(req.DockerVersion) {
		res.Warnings = append(res.Warnings, fmt.Sprintf("Docker %s is newer than any release graphprobe knows: it applies the rules of Docker %d (priority %s); check the result against that dockerd", req.DockerVersion, NewestKnown.Major, strings.Join(ReleaseFor(req.DockerVersion).Priority, ", ")))
	}
	pol := req.Policy
	if pol == nil {
		pol = &policy.Policy{}
	}
	if res.Strategy == "" {
		res.Strategy = string(pol.Strategy)
	}
	if res.Strategy == "" {
		res.Strategy = StrategyPriority
	}
	opts := Options{Driver: req.Driver, Force: req.Force, StorageOpts: pol.StorageOpts, ImageStore: string(pol.ImageStore)}
	switch req.ImageStore {
	case "":
	case "default":
		opts.ImageStore = ""
	default:
		opts.ImageStore = req.ImageStore
	}
	if len(pol.Priority) > 0 || len(pol.Exclude) > 0 {
		order := pol.Order(ReleaseFor(req.DockerVersion).Priority)
		opts.Priority = order
		for _, n := range drivers.Names() {
			if !contains(order, n) {
				opts.Exclude = append(opts.Exclude, n)
			}
		}
	}
	if c := req.Config; c != nil {
		opts.Configured = Configured{StorageDriver: c.StorageDriver, StorageOpts: c.StorageOpts, ContainerdSnapshotter: c.Snapshotter}
	}
	if req.BenchOnly {
		opts.Configured = Configured{}
	}
	opts.Failed = map[string]string{}

	// dockerd flags that would clash with daemon.json, or override it.
	var flagConflicts []dockerflags.Finding
	var envDriver *dockerflags.Finding
	if !req.BenchOnly {
		root := req.RootPrefix
		if root == "" {
			root = "/"
		}
		fl := req.Flags
		if fl == nil {
			var err error
			if fl, err = dockerflags.Scan(root); err != nil {
				return nil, err
			}
		}
		res.DockerFlags = fl.Findings
		res.Warnings = append(res.Warnings, fl.Warnings...)
		flagConflicts = fl.Conflicts()
		for i, f := range fl.Findings {
			if f.Key == dockerflags.DriverEnv {
				envDriver = &fl.Findings[i]
			}
		}
	}

	var existing []string
	if req.Config != nil {
		existing = req.Config.StorageOpts
	}
	d := Decide(r, req.DockerVersion, opts)
	var prove *ProveResult
	live := r.Mode == "live" && !req.Proven
	mode := req.Bench
	if mode == "" {
		mode = bench.Quick
	}
	res.Bench = mode
	sizes := sizesFrom(pol, mode)
	proveReq := func(names []string, all bool) ProveRequest {
		mods := map[string]string{}
		for _, n := range names {
			if c := d.Candidate(n); c != nil && c.Module != "" {
				mods[n] = c.Module
			}
		}
		return ProveRequest{
			Drivers: names, All: all, Mode: mode, Sizes: sizes, Budget: pol.Benchmark.Budget,
			StorageOpts: storageOptsFor(d, names, existing, req.DockerVersion), Modules: mods, LoadModules: req.LoadModules,
			WarnNoDType:   ReleaseFor(req.DockerVersion).DTypeWarnOnly,
			ScratchParent: r.DataRoot.ProbedPath, Progress: req.Progress, Exec: req.Exec,
		}
	}

	// A driver whose init fails only with the storage options the user
	// set (daemon.json, policy) stops the run: the option is the error to
	// fix, never a reason to move to another driver.
	checkUserOpts := func(ir *InitResult) error {
		if ir == nil || ir.OK || ir.Skipped != "" {
			return nil
		}
		user := userStorageOpts(d, ir.Driver, existing, pol, req.DockerVersion)
		if len(user) == 0 {
			return nil
		}
		base := proveReq([]string{ir.Driver}, false)
		base.Mode = bench.Off
		base.StorageOpts = map[string][]string{ir.Driver: graphprobeOpts(d, ir.Driver)}
		p, err := Prove(ctx, base)
		if err != nil {
			return err
		}
		if again := p.Init(ir.Driver); again == nil || !again.OK {
			return nil
		}
		var named []string
		for _, u := range user {
			named = append(named, u.opt+" ("+u.from+")")
		}
		return fmt.Errorf("storage option %s is refused here: %s (%s initialises without it; fix or remove the option: graphprobe does not switch drivers because of an option that was asked for)", strings.Join(named, ", "), ir.Error, ir.Driver)
	}

	switch {
	case !live:
		// A fixture host: decided on its facts alone.
	case req.BenchOnly || (res.Strategy == StrategyFastest && d.Refusal == nil && d.Driver != ""):
		names := req.BenchDrivers
		if len(names) == 0 {
			names = d.Eligible()
		}
		var err error
		prove, err = Prove(ctx, proveReq(names, true))
		if err != nil {
			return res, err
		}
		for _, ir := range prove.Inits {
			if err := checkUserOpts(&ir); err != nil {
				return res, err
			}
			if !ir.OK && ir.Skipped == "" {
				opts.Failed[ir.Driver] = ir.Error
			}
		}
		d = Decide(r, req.DockerVersion, opts)
		if !req.BenchOnly && d.FromOrder {
			if name, why := ChooseFastest(d.Order, prove.Benchmarks, pol.Weights); name != "" && name != d.Driver {
				if err := d.Override(name, "fastest strategy: "+why); err != nil {
					return res, err
				}
			} else if name == d.Driver {
				d.Reason += "; fastest strategy: " + why
			}
		}
	default:
		// As dockerd: initialise in order; a driver whose init fails is
		// rejected and the next one is tried.
		for d.Refusal == nil && d.Driver != "" {
			p, err := Prove(ctx, proveReq([]string{d.Driver}, false))
			if err != nil {
				return res, err
			}
			prove = mergeProve(prove, p)
			ir := p.Init(d.Driver)
			if ir == nil || ir.OK || ir.Skipped != "" {
				break
			}
			if err := checkUserOpts(ir); err != nil {
				return res, err
			}
			opts.Failed[d.Driver] = ir.Error
			if !ir.NotSupported {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s failed to initialise with an error that would stop dockerd (not a \"not supported\" error): %s", d.Driver, ir.Error))
			}
			if opts.Driver != "" {
				d = Decide(r, req.DockerVersion, opts)
				break
			}
			d = Decide(r, req.DockerVersion, opts)
		}
	}
	if prove != nil {
		for i := range d.Candidates {
			c := &d.Candidates[i]
			if ir := prove.Init(c.Driver); ir != nil {
				c.Initialized = ir.OK
				if ir.Skipped != "" {
					c.InitError = ir.Skipped
				}
			}
			c.Benchmark = prove.Benchmarks[c.Driver]
		}
		res.BenchLines = prove.BenchLines
		res.Environment = environment(r)
		if len(prove.Benchmarks) > 1 {
			Score(prove.Benchmarks, pol.Weights)
		}
	}
	res.Candidates = d.Candidates
	res.Reason = d.Reason
	res.Refused = d.Refusal
	res.Warnings = append(res.Warnings, d.Warnings...)
	res.ImageStore = d.ImageStore
	if req.BenchOnly {
		res.GraphDriver = ""
		return res, nil
	}
	res.DaemonJSON = &DaemonJSONResult{Path: req.ConfigFile.Path}
	if !req.DryRun {
		// Leftovers of a killed run go even when this run writes nothing.
		if removed, err := req.ConfigFile.RemoveStaleTemps(); err == nil {
			res.DaemonJSON.RemovedTemps = removed
		}
	}
	if d.Driver == "" || d.Refusal != nil {
		return res, nil
	}
	res.GraphDriver = d.Driver
	res.Driver = d.StorageDriver

	// DOCKER_DRIVER in dockerd's environment overrides daemon.json.
	if envDriver != nil && envDriver.Value != d.StorageDriver && envDriver.Value != d.Driver {
		res.Refused = &Refusal{Kind: "flag-conflict",
			Message: fmt.Sprintf("%s sets DOCKER_DRIVER=%s for dockerd, which overrides daemon.json's storage-driver", where(*envDriver), envDriver.Value),
			Hint:    "remove DOCKER_DRIVER from the docker unit's environment, then rerun"}
		res.Driver, res.GraphDriver = "", ""
		return res, nil
	}

	optsRes := daemonjson.StorageOpts(existing, d.StorageDriver, req.DockerVersion, d.StorageOpts)
	res.StorageOpts = optsRes.Opts
	if res.StorageOpts == nil {
		res.StorageOpts = []string{}
	}
	res.DroppedOpts = optsRes.Dropped
	change := daemonjson.Change{Driver: d.StorageDriver, Opts: optsRes.Opts}
	if v := d.SetContainerdSnapshotter; v != nil {
		res.ContainerdSnapshotter = v
		change.Snapshotter = daemonjson.SnapshotterOff
		if *v {
			change.Snapshotter = daemonjson.SnapshotterOn
		}
	}
	var orig []byte
	if req.ConfigFile.Exists {
		orig = req.ConfigFile.Content
	}
	var out []byte
	var changed bool
	var err error
	if req.Config != nil {
		out, changed, err = req.Config.Merge(change)
	} else {
		out, changed, err = daemonjson.Merge(orig, change)
	}
	if err != nil {
		return res, err
	}
	res.DaemonJSON.Changed = changed
	if changed {
		res.DaemonJSON.Diff = daemonjson.Diff(req.ConfigFile.Path, orig, out)
	}

	// Storage flags on dockerd's command line make it refuse to start with
	// the same keys in daemon.json.
	if len(flagConflicts) > 0 {
		same := true
		for _, f := range flagConflicts {
			if f.Key != dockerflags.StorageDriver || (f.Value != d.StorageDriver && f.Value != d.Driver) {
				same = false
			}
		}
		if same && (req.Config == nil || !req.Config.HasStorageDriver) && len(optsRes.Opts) == 0 {
			res.DaemonJSON.Changed = false
			res.DaemonJSON.Diff = ""
			res.Reason += fmt.Sprintf("; already set by %s, so daemon.json is left alone", where(flagConflicts[0]))
			return res, nil
		}
		var locs []string
		for _, f := range flagConflicts {
			locs = append(locs, fmt.Sprintf("%s (%s %s)", where(f), f.Flag, f.Value))
		}
		res.Refused = &Refusal{Kind: "flag-conflict",
			Message: "dockerd also gets storage settings from its command line: " + strings.Join(locs, "; ") + "; with storage-driver or storage-opts in daemon.json too, dockerd refuses to start",
			Hint:    flagConflictHint(flagConflicts)}
		res.Driver, res.GraphDriver = "", ""
		res.DaemonJSON.Changed, res.DaemonJSON.Diff = false, ""
		return res, nil
	}
	if req.DryRun || !changed {
		return res, nil
	}
	wr, err := req.ConfigFile.Update(out)
	if err != nil {
		return res, err
	}
	res.DaemonJSON.Path = wr.Path
	res.DaemonJSON.Written = wr.Written
	res.DaemonJSON.Backup = wr.Backup
	res.DaemonJSON.RemovedTemps = append(res.DaemonJSON.RemovedTemps, wr.RemovedTemps...)
	doc, err := json.MarshalIndent(res, "", "  ")
	if err == nil {
		if p, err := req.ConfigFile.SaveReport(append(doc, '\n')); err == nil {
			res.DaemonJSON.Report = p
		} else {
			res.Warnings = append(res.Warnings, fmt.Sprintf("keep the run's report: %v", err))
		}
	}
	return res, nil
}

func where(f dockerflags.Finding) string {
	s := fmt.Sprintf("%s:%d", f.File, f.Line)
	if f.Via != "" {
		s += " (via " + f.Via + ")"
	}
	return s
}

func mergeProve(a, b *ProveResult) *ProveResult {
	if a == nil {
		return b
	}
	a.Inits = append(a.Inits, b.Inits...)
	for k, v := range b.Benchmarks {
		a.Benchmarks[k] = v
	}
	a.BenchLines = append(a.BenchLines, b.BenchLines...)
	return a
}

// storageOptsFor are the options each driver is initialised with: those
// daemon.json would hold if it were chosen (the existing ones that belong
// to it, the policy's, graphprobe's own), less override_kernel_check,
// which is for old dockerd's version check where graphprobe's drivers
// test.
func storageOptsFor(d *Decision, names []string, existing []string, dv version.Docker) map[string][]string {
	out := map[string][]string{}
	for _, n := range names {
		if c := d.Candidate(n); c != nil {
			for _, o := range daemonjson.StorageOpts(existing, n, dv, c.StorageOpts).Opts {
				if !strings.Contains(o, "override_kernel_check") {
					out[n] = append(out[n], o)
				}
			}
		}
	}
	return out
}

// graphprobeOpts are the options graphprobe itself adds for a driver.
func graphprobeOpts(d *Decision, name string) []string {
	var out []string
	if c := d.Candidate(name); c != nil {
		for _, o := range c.OwnOpts {
			if !strings.Contains(o, "override_kernel_check") {
				out = append(out, o)
			}
		}
	}
	return out
}

type userOpt struct{ opt, from string }

// userStorageOpts are the options of a driver that the user set: in
// daemon.json, or in the policy.
func userStorageOpts(d *Decision, name string, existing []string, pol *policy.Policy, dv version.Docker) []userOpt {
	var out []userOpt
	for _, o := range daemonjson.StorageOpts(existing, name, dv, nil).Opts {
		out = append(out, userOpt{o, "daemon.json"})
	}
	for _, o := range pol.StorageOpts[name] {
		out = append(out, userOpt{o, "policy"})
	}
	return out
}

func sizesFrom(pol *policy.Policy, mode string) bench.Sizes {
	s := bench.DefaultSizes(mode)
	b := pol.Benchmark
	if len(b.ChainLengths) > 0 {
		s.ChainLengths = b.ChainLengths
	}
	if len(b.MountDepths) > 0 {
		s.MountDepths = b.MountDepths
	}
	if len(b.CopyUpSizes) > 0 {
		s.CopyUpSizes = b.CopyUpSizes
	}
	if b.SmallFiles > 0 {
		s.SmallFiles = b.SmallFiles
	}
	if len(b.StatDepths) > 0 {
		s.StatDepths = b.StatDepths
	}
	if b.ReaddirSize > 0 {
		s.ReaddirSize = b.ReaddirSize
	}
	if b.ImageFiles > 0 {
		s.ImageFiles = b.ImageFiles
	}
	if b.Samples > 0 {
		s.Samples = b.Samples
	}
	return s
}

// environment describes where the benchmark ran.
func environment(r *probe.Report) map[string]string {
	env := map[string]string{
		"kernel":     r.Kernel.Release,
		"backingFs":  r.DataRoot.Filesystem,
		"dataRoot":   r.DataRoot.Path,
		"probedPath": r.DataRoot.ProbedPath,
		"time":       time.Now().UTC().Format(time.RFC3339),
	}
	var params []string
	for k, v := range r.OverlayParameters {
		params = append(params, k+"="+v)
	}
	sort.Strings(params)
	if len(params) > 0 {
		env["overlayParameters"] = strings.Join(params, ",")
	}
	if f := r.Facts[probe.FactFuseOverlayfs]; f.Yes() {
		env["fuseOverlayfs"] = f.Detail
	}
	return env
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
