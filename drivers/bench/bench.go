package bench

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Modes of a run.
const (
	Quick = "quick"
	Full  = "full"
	Off   = "off"
)

// Sizes are the sizes the suite uses; the policy may change them.
type Sizes struct {
	ChainLengths []int   // layers created in a chain on the image
	MountDepths  []int   // layers under a new container's first start
	CopyUpSizes  []int64 // first-write copy-up
	SmallFiles   int     // creates and deletes
	StatDepths   []int   // stat/open through layers
	ReaddirSize  int     // entries merged across layers
	ImageFiles   int     // files of the image every layer test builds on
	Samples      int     // measured samples per item (after one warm-up)
}

// DefaultSizes are the suite's sizes for a mode. Full is the whole suite;
// quick keeps every kind of measurement at sizes that fit in about a second
// per driver on a disk where creating and removing a file costs a
// millisecond (the deep mount, the 64 MiB copy-up and the large file counts
// are full-only). Both build the layer items on an image of ImageFiles
// files; quick's 200 keep a boot's run as cheap as before, and vfs, which
// copies the image into every layer, still pays for it there.
func DefaultSizes(mode string) Sizes {
	if mode == Full {
		return Sizes{
			ChainLengths: []int{1, 8, 32},
			MountDepths:  []int{1, 20, 128},
			CopyUpSizes:  []int64{4 << 10, 1 << 20, 64 << 20},
			SmallFiles:   10000,
			StatDepths:   []int{1, 20},
			ReaddirSize:  1000,
			ImageFiles:   1000,
			Samples:      5,
		}
	}
	return Sizes{
		ChainLengths: []int{1, 8},
		MountDepths:  []int{1, 20},
		CopyUpSizes:  []int64{4 << 10, 1 << 20},
		SmallFiles:   200,
		StatDepths:   []int{1, 20},
		ReaddirSize:  200,
		ImageFiles:   200,
		Samples:      2,
	}
}

// Benchmark is one driver's benchmark run.
type Benchmark struct {
	// Mode is "quick" or "full".
	Mode    string   `json:"mode"`
	Results []Result `json:"results"`
	// Score is the weighted score of the suite (lower is faster), used by
	// the fastest strategy; relative to the other drivers of the run.
	Score          float64 `json:"score"`
	DurationMillis float64 `json:"durationMillis"`
	// Error says why the benchmark stopped early, "" when it completed.
	Error string `json:"error,omitempty"`
	// Notes say what was skipped and why (a small filesystem, the budget).
	Notes []string `json:"notes,omitempty"`
}

// Result is one measurement: the median of repeated samples and their
// spread.
type Result struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	// Median of the samples.
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	// Spread is (max-min)/median, 0 for a single sample.
	Spread  float64 `json:"spread"`
	Samples int     `json:"samples"`
}

// Groups are the suite's groups of results, which a policy weighs for the
// fastest strategy: "create" (layers made on the image), "mount" (a
// container's first start), "copyup", "smallfiles", "stat" (stat and open
// through layers), "readdir", and what one layer costs, "inodes" and
// "bytes".
var Groups = []string{"create", "mount", "copyup", "smallfiles", "stat", "readdir", "inodes", "bytes"}

// Group is the group of a result name, "" for a result that is not
// weighed (the control write after a copy-up).
func Group(name string) string {
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

// ErrNoSpace stops a benchmark on a filesystem too small for it.
var ErrNoSpace = errors.New("not enough free space for the benchmark")

// errNoSample is a run that had nothing to measure: no sample, no failure.
var errNoSample = errors.New("nothing measured")

// summarize turns samples into a result.
func summarize(name, unit string, samples []float64) Result {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	r := Result{Name: name, Unit: unit, Samples: len(s)}
	if len(s) == 0 {
		return r
	}
	r.Min, r.Max = s[0], s[len(s)-1]
	if len(s)%2 == 1 {
		r.Median = s[len(s)/2]
	} else {
		r.Median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if r.Median != 0 && len(s) > 1 {
		r.Spread = (r.Max - r.Min) / math.Abs(r.Median)
	}
	return r
}

// line formats a sample as a Go benchmark line that benchstat reads.
func line(driver string, r Result, v float64) string {
	name := "Benchmark" + strings.ToUpper(r.Name[:1]) + r.Name[1:]
	parts := strings.SplitN(name, "/", 2)
	name = parts[0] + "/driver=" + driver
	if len(parts) > 1 {
		name += "/" + parts[1]
	}
	return fmt.Sprintf("%s 1 %.0f %s", name, v, r.Unit)
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
