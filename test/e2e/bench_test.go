package e2e

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/dockertest"
)

// BenchmarkDockerdStart measures the alternative to graphprobe's probe:
// starting dockerd to see which driver it picks. start-ms is exec to the
// first API answer, info-ms one `docker info`, stop-ms SIGTERM to exit
// (dockerd waits for its containerd), on a fresh data-root each time.
func BenchmarkDockerdStart(b *testing.B) {
	dockertest.Ensure(b)
	var start, info, stop time.Duration
	for i := 0; i < b.N; i++ {
		d := dockertest.Start(b, dockertest.Options{DataRoot: filepath.Join(b.TempDir(), "docker")})
		t0 := time.Now()
		d.Info(b)
		info += time.Since(t0)
		d.Stop(b)
		start += d.StartDuration
		stop += d.StopDuration
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(start), "start-ms/op")
	b.ReportMetric(ms(info), "info-ms/op")
	b.ReportMetric(ms(start+info), "start+info-ms/op")
	b.ReportMetric(ms(stop), "stop-ms/op")
}
