package selector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/probe"
	"golang.org/x/sys/unix"
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
	Sizes BenchSizes
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

// ProveResult is what Prove found.
type ProveResult struct {
	Inits      []InitResult                `json:"inits"`
	Benchmarks map[string]*DriverBenchmark `json:"benchmarks"`
	// BenchLines are the results as Go benchmark lines (benchstat reads them).
	BenchLines  []string          `json:"-"`
	Environment map[string]string `json:"environment"`
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

// Prove initialises drivers in a 0700 scratch home on the data-root's
// filesystem and benchmarks them, all inside a private mount namespace:
// when Prove returns (also on error or cancellation) every mount is gone
// and the scratch home is removed; if the process is killed, the kernel
// drops the namespace's mounts and the next run removes the scratch home.
func Prove(ctx context.Context, req ProveRequest) (*ProveResult, error) {
	res := &ProveResult{Benchmarks: map[string]*DriverBenchmark{}, Environment: map[string]string{}}
	if req.Mode == "" {
		req.Mode = BenchQuick
	}
	if req.Sizes.Samples == 0 {
		req.Sizes = DefaultSizes(req.Mode)
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

	var live []*benchDriver
	defer func() {
		for _, b := range live {
			ns.Do(b.d.Cleanup)
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
		live = append(live, &benchDriver{name: name, d: d, home: home, scratch: map[string]any{}})
		if !req.All {
			break
		}
	}
	if req.Mode == BenchOff || len(live) == 0 {
		return res, nil
	}
	if err := runSuite(ctx, ns, req, live, res); err != nil {
		return res, err
	}
	return res, nil
}

// minFree is below what any benchmark can run in.
const (
	minFreeBytes  = 8 << 20
	minFreeInodes = 2000
)

// runSuite runs every item for every driver, interleaved round-robin so
// that a noisy machine disturbs all drivers alike: a warm-up run, then the
// samples.
func runSuite(ctx context.Context, ns *hostsys.MountNS, req ProveRequest, live []*benchDriver, res *ProveResult) error {
	scratchDir := filepath.Dir(live[0].home)
	if freeB, freeI, err := freeSpace(scratchDir); err == nil && (freeB < minFreeBytes || freeI < minFreeInodes) {
		return fmt.Errorf("%w: %s has %s and %d inodes free (the benchmark needs at least %s and %d); free space, or rerun with --bench off",
			ErrNoSpace, scratchDir, humanSize(int64(freeB)), freeI, humanSize(minFreeBytes), minFreeInodes)
	}
	items := suite(req.Sizes)
	samples := map[string]map[string][]float64{} // driver -> result -> samples
	units := map[string]string{}
	var order []string
	for _, b := range live {
		samples[b.name] = map[string][]float64{}
		b.start = time.Now()
	}
	progress := func(format string, args ...any) {
		if req.Progress != nil {
			fmt.Fprintf(req.Progress, format+"\n", args...)
		}
	}
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}

		order = append(order, it.name)
		units[it.name] = it.unit
		if it.companion != "" {
			order = append(order, it.companion)
			units[it.companion] = it.companionUnit
		}
		freeB, freeI, err := freeSpace(scratchDir)
		if err != nil {
			return err
		}
		if freeB < it.needBytes+minFreeBytes || freeI < it.needInodes+minFreeInodes {
			for _, b := range live {
				b.note(fmt.Sprintf("%s skipped: it needs %s and %d inodes, %s and %d are free", it.name, humanSize(int64(it.needBytes)), it.needInodes, humanSize(int64(freeB)), freeI))
			}
			continue
		}
		n := req.Sizes.Samples
		if it.samples > 0 {
			n = it.samples
		}
		active := live[:0:0]
		for _, b := range live {
			if b.err != nil {
				continue
			}
			if it.imageLayers != nil {
				// What the item's layers cost depends on the driver:
				// the image's setup measures one.
				if err := ns.Do(func() error { return imageSetup(req.Sizes.ImageFiles)(b) }); err != nil {
					b.fail(it.name, err)
					continue
				}
				layers := it.imageLayers(b)
				needB, needI := uint64(layers)*b.layerBytes, uint64(layers)*b.layerInodes
				freeB, freeI, err := freeSpace(scratchDir)
				if err != nil {
					return err
				}
				if freeB < needB+minFreeBytes || (freeI > 0 && freeI < needI+minFreeInodes) {
					b.note(fmt.Sprintf("%s skipped: its %d layers on the image need %s and %d inodes here, %s and %d are free", it.name, layers, humanSize(int64(needB)), needI, humanSize(int64(freeB)), freeI))
					continue
				}
			}
			if it.setup != nil {
				if err := ns.Do(func() error { return it.setup(b) }); err != nil {
					b.fail(it.name, err)
					continue
				}
			}
			active = append(active, b)
		}
		// Warm-up, unmeasured; then the samples, driver after driver.
		for round := -1; round < n; round++ {
			for _, b := range active {
				if b.err != nil || ctx.Err() != nil {
					continue
				}
				if round >= 1 && req.Budget > 0 && time.Since(b.start) > req.Budget {
					continue
				}
				progress("bench %-15s %-32s [%d/%d] item %d/%d", b.name, it.name, max(round+1, 0), n, i+1, len(items))
				var v float64
				err := ns.Do(func() error {
					var err error
					v, err = it.run(b)
					return err
				})
				if errors.Is(err, errNoSample) {
					continue
				}
				if err != nil {
					b.fail(it.name, err)
					continue
				}
				if round >= 0 {
					samples[b.name][it.name] = append(samples[b.name][it.name], v)
					if it.companion != "" {
						if c, ok := b.scratch[it.companion].(float64); ok {
							samples[b.name][it.companion] = append(samples[b.name][it.companion], c)
						}
					}
				}
			}
		}
		for _, b := range active {
			if it.teardown != nil {
				ns.Do(func() error { it.teardown(b); return nil })
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	for _, b := range live {
		db := &DriverBenchmark{Mode: req.Mode, DurationMillis: float64(time.Since(b.start).Microseconds()) / 1000}
		if b.err != nil {
			db.Error = b.err.Error()
		}
		db.Notes = b.notes
		for _, name := range order {
			if s := samples[b.name][name]; len(s) > 0 {
				r := summarize(name, units[name], s)
				db.Results = append(db.Results, r)
				for _, v := range s {
					res.BenchLines = append(res.BenchLines, benchLine(b.name, r, v))
				}
			}
		}
		res.Benchmarks[b.name] = db
	}
	return nil
}

func (b *benchDriver) fail(item string, err error) {
	if b.err == nil {
		if errors.Is(err, unix.ENOSPC) {
			err = fmt.Errorf("%w (no space left on the data-root's filesystem)", err)
		}
		b.err = fmt.Errorf("%s: %w", item, err)
	}
}

func (b *benchDriver) note(s string) { b.notes = append(b.notes, s) }

// DefaultWeights weigh the suite's groups for the fastest strategy: the
// operations a container start and a build do most count most.
var DefaultWeights = map[string]float64{
	"create": 1, "mount": 2, "copyup": 1, "smallfiles": 1, "stat": 1, "readdir": 0.5, "inodes": 0.5, "bytes": 0.5,
}

// weightKey finds the group of a result name.
func weightKey(name string) string {
	switch {
	case strings.HasPrefix(name, "write-after-copyup"):
		return ""
	case strings.HasPrefix(name, "open/"):
		return "stat"
	case strings.HasPrefix(name, "start/"):
		// A container's first start: its layer's create and mount.
		return "mount"
	}
	k, _, _ := strings.Cut(name, "/")
	return k
}

// Score gives each benchmarked driver a weighted geometric mean of its
// medians relative to the best driver per result (1.0 = best everywhere),
// and a typical spread.
func Score(benchmarks map[string]*DriverBenchmark, weights map[string]float64) (score, spread map[string]float64) {
	if weights == nil {
		weights = DefaultWeights
	}
	best := map[string]float64{}
	for _, db := range benchmarks {
		for _, r := range db.Results {
			if r.Samples == 0 {
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
			w := weights[weightKey(r.Name)]
			if r.Samples == 0 || w == 0 {
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

// ChooseFastest picks among benchmarked drivers: the first in priority
// order, unless another is faster by a margin larger than the measured
// spread. It returns the driver and why.
func ChooseFastest(priority []string, benchmarks map[string]*DriverBenchmark, weights map[string]float64) (string, string) {
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
