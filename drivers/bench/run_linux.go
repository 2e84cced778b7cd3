package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/graphprobe/graphprobe/drivers"
	"golang.org/x/sys/unix"
)

// Target is one initialised driver to benchmark, with the home it was
// initialised on.
type Target struct {
	Name   string
	Driver drivers.Driver
	Home   string
}

// Request says how to run the suite.
type Request struct {
	// Mode is quick or full.
	Mode  string
	Sizes Sizes
	// Budget caps the wall time per driver (0: none).
	Budget time.Duration
	// Progress receives progress lines (nil: none).
	Progress io.Writer
	// Do runs fn where the drivers were initialised (a private mount
	// namespace's thread): every driver call and every measurement goes
	// through it.
	Do func(fn func() error) error
}

// Outcome is what a run measured.
type Outcome struct {
	// Benchmarks maps a driver's name to its run.
	Benchmarks map[string]*Benchmark
	// Lines are every sample as a Go benchmark line, driver after driver.
	Lines []string
}

// minFree is below what any benchmark can run in.
const (
	minFreeBytes  = 8 << 20
	minFreeInodes = 2000
)

// Run runs every item for every target, interleaved round-robin so that
// a noisy machine disturbs all drivers alike: a warm-up run, then the
// samples. The targets' homes share one filesystem, whose free space every
// item checks first. An error (the context's, a filesystem too small for
// any item: ErrNoSpace) stops the run with no outcome; a driver's failure
// stops only that driver's run, and its Benchmark says why.
func Run(ctx context.Context, req Request, targets []Target) (*Outcome, error) {
	if len(targets) == 0 {
		return &Outcome{Benchmarks: map[string]*Benchmark{}}, nil
	}
	if req.Sizes.Samples == 0 {
		req.Sizes = DefaultSizes(req.Mode)
	}
	do := req.Do
	if do == nil {
		do = func(fn func() error) error { return fn() }
	}
	live := make([]*driver, len(targets))
	for i, t := range targets {
		live[i] = &driver{name: t.Name, d: t.Driver, home: t.Home, scratch: map[string]any{}}
	}
	scratchDir := filepath.Dir(live[0].home)
	if freeB, freeI, err := freeSpace(scratchDir); err == nil && (freeB < minFreeBytes || freeI < minFreeInodes) {
		return nil, fmt.Errorf("%w: %s has %s and %d inodes free (the benchmark needs at least %s and %d); free space, or rerun with --bench off",
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
			return nil, err
		}

		order = append(order, it.name)
		units[it.name] = it.unit
		if it.companion != "" {
			order = append(order, it.companion)
			units[it.companion] = it.companionUnit
		}
		freeB, freeI, err := freeSpace(scratchDir)
		if err != nil {
			return nil, err
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
				if err := do(func() error { return imageSetup(req.Sizes.ImageFiles)(b) }); err != nil {
					b.fail(it.name, err)
					continue
				}
				layers := it.imageLayers(b)
				needB, needI := uint64(layers)*b.layerBytes, uint64(layers)*b.layerInodes
				freeB, freeI, err := freeSpace(scratchDir)
				if err != nil {
					return nil, err
				}
				if freeB < needB+minFreeBytes || (freeI > 0 && freeI < needI+minFreeInodes) {
					b.note(fmt.Sprintf("%s skipped: its %d layers on the image need %s and %d inodes here, %s and %d are free", it.name, layers, humanSize(int64(needB)), needI, humanSize(int64(freeB)), freeI))
					continue
				}
			}
			if it.setup != nil {
				if err := do(func() error { return it.setup(b) }); err != nil {
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
				err := do(func() error {
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
				do(func() error { it.teardown(b); return nil })
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	out := &Outcome{Benchmarks: map[string]*Benchmark{}}
	for _, b := range live {
		db := &Benchmark{Mode: req.Mode, DurationMillis: float64(time.Since(b.start).Microseconds()) / 1000}
		if b.err != nil {
			db.Error = b.err.Error()
		}
		db.Notes = b.notes
		for _, name := range order {
			if s := samples[b.name][name]; len(s) > 0 {
				r := summarize(name, units[name], s)
				db.Results = append(db.Results, r)
				for _, v := range s {
					out.Lines = append(out.Lines, line(b.name, r, v))
				}
			}
		}
		out.Benchmarks[b.name] = db
	}
	return out, nil
}

// fail records a driver's first failure, which ends its run.
func (b *driver) fail(name string, err error) {
	if b.err == nil {
		if errors.Is(err, unix.ENOSPC) {
			err = fmt.Errorf("%w (no space left on the data-root's filesystem)", err)
		}
		b.err = fmt.Errorf("%s: %w", name, err)
	}
}

func (b *driver) note(s string) { b.notes = append(b.notes, s) }
