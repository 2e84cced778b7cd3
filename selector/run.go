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

// Run sequences the pipeline and does its I/O: it scans how dockerd is
// started, decides, proves on a live host (Prove), applies the strategy
// (Choose), merges the change into daemon.json (Apply) and writes it,
// unless dry-run or bench-only. Errors are runtime errors (exit 1); the
// result's Outcome says whether the run found no driver or refused.
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
		res.Strategy = string(policy.StrategyPriority)
	}
	in := PolicyInputs(pol, req.DockerVersion, req.ImageStore)
	in.Driver, in.Force = req.Driver, req.Force
	var existing []string
	if req.Config != nil {
		existing = req.Config.StorageOpts
	}
	if !req.BenchOnly {
		in.Configured = ConfiguredIn(req.Config)
		// dockerd flags that would clash with daemon.json, or override it.
		fl := req.Flags
		if fl == nil {
			root := req.RootPrefix
			if root == "" {
				root = "/"
			}
			var err error
			if fl, err = dockerflags.Scan(root); err != nil {
				return nil, err
			}
		}
		res.DockerFlags = fl.Findings
		res.Warnings = append(res.Warnings, fl.Warnings...)
		in.Flags = fl.Findings
	}

	d := Decide(r, req.DockerVersion, in)
	mode := req.Bench
	if mode == "" {
		mode = bench.Quick
	}
	res.Bench = mode
	var prove *ProveResult
	if r.Mode == "live" && !req.Proven && (req.BenchOnly || d.NeedsProof(res.Strategy)) {
		all := req.BenchOnly || res.Strategy == string(policy.StrategyFastest)
		var err error
		d, prove, err = Prove(ctx, d, ProveOptions{
			All: all, Drivers: req.BenchDrivers, Mode: mode, Sizes: sizesFrom(pol, mode), Budget: pol.Benchmark.Budget,
			ConfiguredOpts: existing, LoadModules: req.LoadModules, Progress: req.Progress, Exec: req.Exec,
		})
		if err != nil {
			return res, err
		}
		if all && !req.BenchOnly {
			if d, err = Choose(d, res.Strategy, prove.Benchmarks, pol.Weights); err != nil {
				return res, err
			}
		}
	}
	if prove != nil {
		res.Warnings = append(res.Warnings, prove.Warnings...)
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
	res.ImageStore = string(d.ImageStore)
	if req.BenchOnly {
		return res, nil
	}
	res.DaemonJSON = &DaemonJSONResult{Path: req.ConfigFile.Path}
	if !req.DryRun {
		// Leftovers of a killed run go even when this run writes nothing.
		if removed, err := req.ConfigFile.RemoveStaleTemps(); err == nil {
			res.DaemonJSON.RemovedTemps = removed
		}
	}
	w := d.Write
	if w == nil {
		return res, nil
	}
	res.GraphDriver, res.Driver = d.Driver, d.StorageDriver
	if w.Opts != nil {
		res.StorageOpts = w.Opts
	}
	res.DroppedOpts = w.Dropped
	res.ContainerdSnapshotter = d.SetContainerdSnapshotter
	applied, err := Apply(d, req.ConfigFile, req.Config)
	if err != nil {
		return res, err
	}
	if d.Refusal != nil || w.LeaveAlone {
		return res, nil
	}
	res.DaemonJSON.Changed, res.DaemonJSON.Diff = applied.Changed, applied.Diff
	if req.DryRun || !applied.Changed {
		return res, nil
	}
	wr, err := req.ConfigFile.Update(applied.Content)
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
