package probe

import (
	"context"
	"os"
	"testing"
)

// BenchmarkProbeLive is a whole live probe with every mount test, on the
// default data-root (or GRAPHPROBE_BENCH_DATA_ROOT).
func BenchmarkProbeLive(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the live probe's mount tests need root")
	}
	dr := os.Getenv("GRAPHPROBE_BENCH_DATA_ROOT")
	if dr == "" {
		dr = DefaultDataRoot
	}
	b.ReportAllocs()
	for b.Loop() {
		r, err := Run(context.Background(), Options{DataRoot: dr, PriorDirs: testPriorDirs})
		if err != nil {
			b.Fatal(err)
		}
		if !r.Facts[FactMultiLowerdir].Known() {
			b.Fatalf("multi-lowerdir not tested: %+v", r.Facts[FactMultiLowerdir])
		}
	}
}

// BenchmarkProbeFixture is a probe of a captured host.
func BenchmarkProbeFixture(b *testing.B) {
	dir := b.TempDir()
	for p, content := range xenialTree() {
		full := dir + "/" + p
		os.MkdirAll(full[:len(full)-len(baseName(p))], 0o755)
		os.WriteFile(full, []byte(content), 0o644)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(context.Background(), Options{RootPrefix: dir, PriorDirs: testPriorDirs}); err != nil {
			b.Fatal(err)
		}
	}
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
