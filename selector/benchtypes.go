package selector

// DriverBenchmark is one driver's benchmark run.
type DriverBenchmark struct {
	// Mode is "quick" or "full".
	Mode    string        `json:"mode"`
	Results []BenchResult `json:"results"`
	// Score is the weighted score of the suite (lower is faster), used by
	// the fastest strategy; relative to the other drivers of the run.
	Score          float64 `json:"score"`
	DurationMillis float64 `json:"durationMillis"`
	// Error says why the benchmark stopped early, "" when it completed.
	Error string `json:"error,omitempty"`
	// Notes say what was skipped and why (a small filesystem, the budget).
	Notes []string `json:"notes,omitempty"`
}

// BenchResult is one measurement: the median of repeated samples and their
// spread.
type BenchResult struct {
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
