package selector

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/drivers/bench"
)

// benchmark makes a driver's benchmark from name → median; units follow
// the suite's (bytes items are B/layer, the others counts or ns).
func benchmark(medians map[string]float64) *bench.Benchmark {
	db := &bench.Benchmark{Mode: bench.Quick}
	for name, m := range medians {
		unit := "ns/op"
		switch {
		case strings.HasPrefix(name, "bytes/"):
			unit = "B/layer"
		case strings.HasPrefix(name, "inodes/"):
			unit = "inodes/layer"
		}
		db.Results = append(db.Results, bench.Result{Name: name, Unit: unit, Median: m, Min: m, Max: m, Samples: 2})
	}
	return db
}

// Figures as `select --strategy fastest --bench quick` printed them on a
// loop ext4 (kernel 6.18): overlay2 and vfs on the suite's 200-file quick
// image. vfs copies the image when a layer is created, so it is the faster
// of the two to write into a file it already copied, and to stat, open,
// readdir and create small files; it pays for that in every layer made on
// the image, every container's start, and the space and inodes each layer
// takes.
var (
	overlay2Figures = map[string]float64{
		"create/layers=1/image=200":        209.2e3,
		"create/layers=8/image=200":        230.1e3,
		"start/depth=1/image=200":          509.8e3,
		"start/depth=20/image=200":         503.7e3,
		"stat/depth=1":                     2.7e3,
		"open/depth=1":                     4.6e3,
		"stat/depth=20":                    3.7e3,
		"open/depth=20":                    6.1e3,
		"copyup/size=4KiB":                 1.62e6,
		"write-after-copyup/size=4KiB":     4.3e3,
		"copyup/size=1MiB":                 4.63e6,
		"write-after-copyup/size=1MiB":     4.5e3,
		"smallfiles/n=200":                 95.7e3,
		"readdir/entries=200":              131.8e3,
		"inodes/container-layer/image=200": 6,
		"bytes/container-layer/image=200":  20 << 10,
		"inodes/image-layer/image=200":     8,
		"bytes/image-layer/image=200":      28 << 10,
	}
	vfsFigures = map[string]float64{
		"create/layers=1/image=200":        10.14e6,
		"create/layers=8/image=200":        38.95e6,
		"start/depth=1/image=200":          17.39e6,
		"start/depth=20/image=200":         15.79e6,
		"stat/depth=1":                     2.7e3,
		"open/depth=1":                     4.5e3,
		"stat/depth=20":                    4.1e3,
		"open/depth=20":                    5.0e3,
		"copyup/size=4KiB":                 228.9e3,
		"write-after-copyup/size=4KiB":     3.4e3,
		"copyup/size=1MiB":                 516.9e3,
		"write-after-copyup/size=1MiB":     3.3e3,
		"smallfiles/n=200":                 56.2e3,
		"readdir/entries=200":              82.8e3,
		"inodes/container-layer/image=200": 243,
		"bytes/container-layer/image=200":  892 << 10,
		"inodes/image-layer/image=200":     245,
		"bytes/image-layer/image=200":      900 << 10,
	}
)

// withFigures returns figures with some medians replaced.
func withFigures(figures map[string]float64, set map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range figures {
		out[k] = v
	}
	for k, v := range set {
		out[k] = v
	}
	return out
}

// TestChooseFastestChargesPerContainer: a driver that is fast everywhere
// except in what it costs per container (its containers' first start, its
// layers' creation on the image, their inodes and bytes) must lose, in
// either priority order, under the default weights and under policies that
// weigh only time or only a container's start.
func TestChooseFastestChargesPerContainer(t *testing.T) {
	tests := []struct {
		name     string
		costly   map[string]float64 // fast at copy-up and stat, costly per container
		priority []string
		weights  map[string]float64
	}{
		{"measured figures", vfsFigures, []string{"vfs", "overlay2"}, nil},
		{"measured figures, overlay2 first", vfsFigures, []string{"overlay2", "vfs"}, nil},
		{"time only", vfsFigures, []string{"vfs", "overlay2"},
			map[string]float64{"create": 1, "mount": 2, "copyup": 1, "smallfiles": 1, "stat": 1, "readdir": 0.5}},
		{"start only", vfsFigures, []string{"vfs", "overlay2"}, map[string]float64{"mount": 1}},
		{"space only", vfsFigures, []string{"vfs", "overlay2"}, map[string]float64{"inodes": 1, "bytes": 1}},
		// Creating the layer costs as little as overlay2's; the copy
		// happens at first start.
		{"cheap create, costly start", withFigures(vfsFigures, map[string]float64{
			"create/layers=1/image=200": 250e3, "create/layers=8/image=200": 250e3,
		}), []string{"vfs", "overlay2"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			benchmarks := map[string]*bench.Benchmark{"overlay2": benchmark(overlay2Figures), "vfs": benchmark(tt.costly)}
			got, why := ChooseFastest(tt.priority, benchmarks, tt.weights)
			score, _ := Score(benchmarks, tt.weights)
			if got != "overlay2" {
				t.Errorf("ChooseFastest = %s (%s), want overlay2; scores %v", got, why, score)
			}
			if score["vfs"] <= score["overlay2"] {
				t.Errorf("score vfs %.2f <= overlay2 %.2f: the per-container costs are not charged", score["vfs"], score["overlay2"])
			}
		})
	}
}

// TestDefaultWeights weighs every group of the suite, so that no
// measurement the suite charges is silently weighed 0 by default.
func TestDefaultWeights(t *testing.T) {
	var keys []string
	for k := range DefaultWeights {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	groups := slices.Sorted(slices.Values(bench.Groups))
	if !slices.Equal(keys, groups) {
		t.Errorf("DefaultWeights weigh %v, the suite's groups are %v", keys, groups)
	}
}

// A per-layer cost below zero (another writer freed inodes on the scratch
// filesystem between the two counts) is no figure of the driver: it is
// left out, and no score is NaN, which JSON cannot carry.
func TestScoreSkipsNegativeCosts(t *testing.T) {
	benchmarks := map[string]*bench.Benchmark{
		"overlay2": benchmark(map[string]float64{"create/layers=1/image=200": 200e3, "inodes/container-layer/image=200": -5}),
		"vfs":      benchmark(map[string]float64{"create/layers=1/image=200": 400e3, "inodes/container-layer/image=200": 201}),
	}
	score, _ := Score(benchmarks, nil)
	for name, s := range score {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			t.Fatalf("score of %s = %v", name, s)
		}
	}
	if score["overlay2"] != 1 {
		t.Errorf("overlay2 is best at the one scorable result: score %v, want 1", score["overlay2"])
	}
	// vfs: twice overlay2's create time (weight 1); its inode figure is
	// the only one left, so the best (weight 0.5).
	if want := math.Exp((1*math.Log(2) + 0.5*math.Log(1)) / 1.5); math.Abs(score["vfs"]-want) > 1e-4 {
		t.Errorf("vfs score %v, want %v", score["vfs"], want)
	}
}
