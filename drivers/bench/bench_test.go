package bench

import (
	"testing"
)

// TestLine pins the Go benchmark line format that benchstat and make
// bench read: the driver goes after the first element of the name.
func TestLine(t *testing.T) {
	tests := []struct {
		name   string
		driver string
		r      Result
		v      float64
		want   string
	}{
		{"nested name", "overlay2", Result{Name: "create/layers=1/image=200", Unit: "ns/layer"}, 209200.4, "BenchmarkCreate/driver=overlay2/layers=1/image=200 1 209200 ns/layer"},
		{"flat name", "vfs", Result{Name: "x", Unit: "ns/op"}, 3, "BenchmarkX/driver=vfs 1 3 ns/op"},
		{"bytes", "vfs", Result{Name: "bytes/image-layer/image=200", Unit: "B/layer"}, 921600, "BenchmarkBytes/driver=vfs/image-layer/image=200 1 921600 B/layer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := line(tt.driver, tt.r, tt.v); got != tt.want {
				t.Errorf("line = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name    string
		samples []float64
		want    Result
	}{
		{"none", nil, Result{Name: "n", Unit: "u"}},
		{"one", []float64{5}, Result{Name: "n", Unit: "u", Median: 5, Min: 5, Max: 5, Samples: 1}},
		{"even", []float64{4, 1, 3, 2}, Result{Name: "n", Unit: "u", Median: 2.5, Min: 1, Max: 4, Spread: 1.2, Samples: 4}},
		{"odd", []float64{30, 10, 20}, Result{Name: "n", Unit: "u", Median: 20, Min: 10, Max: 30, Spread: 1, Samples: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize("n", "u", tt.samples); got != tt.want {
				t.Errorf("summarize(%v) = %+v, want %+v", tt.samples, got, tt.want)
			}
		})
	}
}
