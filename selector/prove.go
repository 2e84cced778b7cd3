package selector

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/bench"
	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/probe"
)

// ProveRequest says which drivers to initialise and benchmark.
type ProveRequest struct {
	// Drivers are the eligible drivers, most preferred first.
	Drivers []string
	// All initialises (and benchmarks) every driver; otherwise drivers are
	// initialised in order until one succeeds, as dockerd does, and only
	// that one is benchmarked.
	All bool
	// Mode is quick, full or off (initialise only).
	Mode  string
	Sizes bench.Sizes
	// Budget caps the benchmark's wall time per driver (0: none).
	Budget      time.Duration
	StorageOpts map[string][]string
	// WarnNoDType: the release only warns about a backing filesystem
	// without d_type (Docker before 17.12).
	WarnNoDType bool
	// Modules maps a driver to the kernel module to load before its init.
	Modules map[string]string
	// LoadModules allows modprobe (select's default, as dockerd does).
	LoadModules bool
	// ScratchParent is where the scratch home goes: the data-root, or its
	// nearest existing parent, so that the benchmark runs on the data-root's
	// filesystem.
	ScratchParent string
	// Progress receives progress lines (nil: none).
	Progress io.Writer
	// Exec runs modprobe.
	Exec probe.ExecFunc
}

// InitResult is one driver's initialisation.
type InitResult struct {
	Driver string `json:"driver"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	// NotSupported is true for the not-supported class of errors, on which
	// dockerd moves to the next driver; on any other error dockerd stops.
	NotSupported bool `json:"notSupported,omitempty"`
	// Skipped says why no init was tried (the driver is then decided on
	// availability alone).
	Skipped string `json:"skipped,omitempty"`
}

// ProveResult is what Trial (and Prove) found.
type ProveResult struct {
	Inits      []InitResult                `json:"inits"`
	Benchmarks map[string]*bench.Benchmark `json:"benchmarks"`
	// BenchLines are the results as Go benchmark lines (benchstat reads them).
	BenchLines  []string          `json:"-"`
	Environment map[string]string `json:"environment"`
	// Warnings are init failures that would stop dockerd rather than
	// make it move on (Prove).
	Warnings []string `json:"-"`
}

// Init returns the init result of a driver.
func (p *ProveResult) Init(name string) *InitResult {
	for i := range p.Inits {
		if p.Inits[i].Driver == name {
			return &p.Inits[i]
		}
	}
	return nil
}

// Trial initialises drivers in a 0700 scratch home on the data-root's
// filesystem and benchmarks them, all inside a private mount namespace:
// when Trial returns (also on error or cancellation) every mount is gone
// and the scratch home is removed; if the process is killed, the kernel
// drops the namespace's mounts and the next run removes the scratch home.
func Trial(ctx context.Context, req ProveRequest) (*ProveResult, error) {
	res := &ProveResult{Benchmarks: map[string]*bench.Benchmark{}, Environment: map[string]string{}}
	if req.Mode == "" {
		req.Mode = bench.Quick
	}
	if req.Sizes.Samples == 0 {
		req.Sizes = bench.DefaultSizes(req.Mode)
	}
	if req.Exec == nil {
		req.Exec = func(ctx context.Context, name string, args ...string) ([]byte, error) {
			return nil, fmt.Errorf("no command runner to run %s", name)
		}
	}
	if _, err := hostsys.RemoveStaleScratch(req.ScratchParent, "bench"); err != nil {
		return nil, err
	}
	scratch, err := hostsys.MakeScratch(req.ScratchParent, "bench")
	if err != nil {
		return nil, err
	}
	ns, err := hostsys.NewMountNS()
	if err != nil {
		os.RemoveAll(scratch)
		return nil, fmt.Errorf("initialise drivers: %w (needs root)", err)
	}
	// Last in, first out: drivers clean up, the namespace ends, then the
	// scratch home goes.
	defer os.RemoveAll(scratch)
	defer ns.Close()

	var live []bench.Target
	defer func() {
		for _, t := range live {
			ns.Do(t.Driver.Cleanup)
		}
	}()
	for _, name := range req.Drivers {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		ir := InitResult{Driver: name}
		if info, ok := drivers.Lookup(name); ok && !info.Implemented {
			ir.Skipped = fmt.Sprintf("graphprobe has no %s implementation to initialise; decided on the probe's facts", name)
			res.Inits = append(res.Inits, ir)
			if !req.All {
				break
			}
			continue
		}
		if mod := req.Modules[name]; mod != "" {
			if !req.LoadModules {
				ir.Skipped = fmt.Sprintf("the %s module is loadable but not loaded, and --no-load-modules forbids loading it; decided on availability", mod)
				res.Inits = append(res.Inits, ir)
				if !req.All {
					break
				}
				continue
			}
			if out, err := req.Exec(ctx, "modprobe", mod); err != nil {
				ir.Error = fmt.Sprintf("modprobe %s: %v: %s", mod, err, strings.TrimSpace(string(out)))
				res.Inits = append(res.Inits, ir)
				continue
			}
		}
		home := filepath.Join(scratch, name)
		var d drivers.Driver
		err := ns.Do(func() error {
			var err error
			d, err = drivers.Init(name, home, drivers.Options{StorageOpts: req.StorageOpts[name], WarnNoDType: req.WarnNoDType})
			return err
		})
		if err != nil {
			ir.Error = err.Error()
			ir.NotSupported = drivers.IsNotSupported(err)
			res.Inits = append(res.Inits, ir)
			continue
		}
		ir.OK = true
		res.Inits = append(res.Inits, ir)
		live = append(live, bench.Target{Name: name, Driver: d, Home: home})
		if !req.All {
			break
		}
	}
	if req.Mode == bench.Off || len(live) == 0 {
		return res, nil
	}
	out, err := bench.Run(ctx, bench.Request{Mode: req.Mode, Sizes: req.Sizes, Budget: req.Budget, Progress: req.Progress, Do: ns.Do}, live)
	if err != nil {
		return res, err
	}
	res.Benchmarks, res.BenchLines = out.Benchmarks, out.Lines
	return res, nil
}

// DefaultWeights weigh the suite's groups for the fastest strategy: the
// operations a container start and a build do most count most.
var DefaultWeights = map[string]float64{
	"create": 1, "mount": 2, "copyup": 1, "smallfiles": 1, "stat": 1, "readdir": 0.5, "inodes": 0.5, "bytes": 0.5,
}

// Score gives each benchmarked driver a weighted geometric mean of its
// medians relative to the best driver per result (1.0 = best everywhere),
// and a typical spread. A result below zero is left out: only the
// per-layer costs can be, when another writer freed space or inodes on the
// scratch filesystem between the two counts, and such a figure says
// nothing of the driver (its logarithm would make the score NaN).
func Score(benchmarks map[string]*bench.Benchmark, weights map[string]float64) (score, spread map[string]float64) {
	if weights == nil {
		weights = DefaultWeights
	}
	best := map[string]float64{}
	for _, db := range benchmarks {
		for _, r := range db.Results {
			if !scorable(r) {
				continue
			}
			if b, ok := best[r.Name]; !ok || r.Median < b {
				best[r.Name] = r.Median
			}
		}
	}
	score, spread = map[string]float64{}, map[string]float64{}
	for name, db := range benchmarks {
		var sum, wsum float64
		var spreads []float64
		for _, r := range db.Results {
			w := weights[bench.Group(r.Name)]
			if !scorable(r) || w == 0 {
				continue
			}
			eps := 1.0
			if strings.HasPrefix(r.Unit, "B/") {
				eps = 4096
			}
			ratio := (r.Median + eps) / (best[r.Name] + eps)
			sum += w * math.Log(ratio)
			wsum += w
			if r.Samples > 1 {
				spreads = append(spreads, r.Spread)
			}
		}
		if wsum > 0 {
			score[name] = math.Exp(sum / wsum)
		}
		sort.Float64s(spreads)
		if len(spreads) > 0 {
			spread[name] = spreads[len(spreads)/2]
		}
		db.Score = score[name]
	}
	return score, spread
}

func scorable(r bench.Result) bool {
	return r.Samples > 0 && r.Median >= 0 && !math.IsInf(r.Median, 0) && !math.IsNaN(r.Median)
}

// ChooseFastest picks among benchmarked drivers: the first in priority
// order, unless another is faster by a margin larger than the measured
// spread. It returns the driver and why.
func ChooseFastest(priority []string, benchmarks map[string]*bench.Benchmark, weights map[string]float64) (string, string) {
	score, spread := Score(benchmarks, weights)
	var preferred string
	for _, n := range priority {
		if _, ok := score[n]; ok {
			preferred = n
			break
		}
	}
	if preferred == "" {
		return "", "no driver was benchmarked"
	}
	fastest := preferred
	for n, s := range score {
		if s < score[fastest] || (s == score[fastest] && n < fastest) {
			fastest = n
		}
	}
	if fastest == preferred {
		return preferred, fmt.Sprintf("the fastest benchmarked driver (score %.2f) and first in priority order", score[preferred])
	}
	margin := score[preferred]/score[fastest] - 1
	noise := math.Max(spread[preferred], spread[fastest])
	if margin > noise {
		return fastest, fmt.Sprintf("faster than %s by %.0f%% (score %.2f vs %.2f), more than the measured spread of %.0f%%", preferred, margin*100, score[fastest], score[preferred], noise*100)
	}
	return preferred, fmt.Sprintf("first in priority order; %s was faster by %.0f%%, within the measured spread of %.0f%%", fastest, margin*100, noise*100)
}
