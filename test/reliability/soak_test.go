package reliability

import (
	"bytes"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/cmd/graphprobe/app"
	"github.com/graphprobe/graphprobe/internal/testutil"
)

// resources is what a leaking run would leave in the process or on the
// host.
type resources struct {
	fds, goroutines, threads int
	heap                     uint64 // live heap after two GCs
	heapObjects              uint64
	totalAlloc               uint64
	mounts, scratch, temps   []string
}

func measure(t *testing.T, h *host) resources {
	t.Helper()
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return resources{
		fds: len(fds), goroutines: runtime.NumGoroutine(), threads: threadCount(t),
		heap: ms.HeapAlloc, heapObjects: ms.HeapObjects, totalAlloc: ms.TotalAlloc,
		mounts: mountsOf(t, h.mountRoots()...), scratch: scratchIn(h.scratchDirs()...), temps: tempsIn(h.etc),
	}
}

func threadCount(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("no Threads: line in /proc/self/status")
	return 0
}

// TestRepeatedRunsDoNotLeak runs `select` 200 times in this process (the
// whole command through app.Run: lock, daemon.json, probe.Run, selector.Run
// with its mount namespace and benchmark) and compares the process and the
// host before and after. Every run changes daemon.json (the driver toggles
// between vfs and overlay2). Every 4th run benchmarks (--bench quick, about
// 0.7 s on a loop ext4: the tar streams, mounts and layer churn of the
// suite); the others initialise only (--bench off, about 50 ms), which
// keeps the test near a minute on 2 cores. The first 10 runs are a warm-up
// that lets the runtime and the os/signal machinery reach their steady
// state.
//
// Tolerances: descriptors, mounts, scratch dirs and temporary files must
// match exactly. Goroutines may be 2 above the start (a run's signal
// watcher and mount-namespace goroutine end just after the run returns,
// asynchronously) and threads 4 (the runtime keeps idle threads; a leaked
// namespace thread per run would add 190). The live heap may grow by 1
// MiB at most: one run allocates several MiB and keeps a result of tens of
// KiB, so a leak of even a small part of one run's result per run exceeds
// that over 190 runs.
func TestRepeatedRunsDoNotLeak(t *testing.T) {
	h := newHost(t, testutil.Ext4, 256)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	t.Setenv("TMPDIR", h.tmp)
	n, warm := 200, 10
	if testing.Short() {
		n = 40
	}
	driver := "vfs"
	quick := 0
	run := func(i int) {
		driver = map[string]string{"vfs": "overlay2", "overlay2": "vfs"}[driver]
		bench := "off"
		if i%4 == 0 {
			bench = "quick"
			quick++
		}
		var stdout, stderr bytes.Buffer
		code := app.Run(h.selectArgs("--driver", driver, "--bench", bench, "--format", "json"), &stdout, &stderr)
		if code != 0 {
			t.Fatalf("run %d: exit %d\n%s", i, code, stderr.String())
		}
		if got := string(readFile(t, h.config)); !strings.Contains(got, `"storage-driver": "`+driver+`"`) {
			t.Fatalf("run %d: daemon.json = %q", i, got)
		}
	}
	for i := 0; i < warm; i++ {
		run(i)
	}
	start := measure(t, h)
	began := time.Now()
	var heapSamples []string
	for i := warm; i < n; i++ {
		run(i)
		if (i-warm+1)%50 == 0 {
			m := measure(t, h)
			heapSamples = append(heapSamples, strconv.FormatUint(m.heap>>10, 10)+"KiB")
		}
	}
	end := measure(t, h)
	runs := n - warm
	t.Logf("%d runs after %d warm-up runs (%d with --bench quick) in %v; %.1f MiB allocated per run",
		runs, warm, quick, time.Since(began).Round(time.Second), float64(end.totalAlloc-start.totalAlloc)/float64(runs)/(1<<20))
	t.Logf("fds %d -> %d, goroutines %d -> %d, threads %d -> %d, live heap %d KiB -> %d KiB (every 50 runs: %s), heap objects %d -> %d",
		start.fds, end.fds, start.goroutines, end.goroutines, start.threads, end.threads,
		start.heap>>10, end.heap>>10, strings.Join(heapSamples, ", "), start.heapObjects, end.heapObjects)
	t.Logf("mounts %d -> %d, scratch dirs %d -> %d, temporary files %d -> %d",
		len(start.mounts), len(end.mounts), len(start.scratch), len(end.scratch), len(start.temps), len(end.temps))
	if end.fds != start.fds {
		t.Errorf("open descriptors %d -> %d over %d runs", start.fds, end.fds, runs)
	}
	if end.goroutines > start.goroutines+2 {
		t.Errorf("goroutines %d -> %d over %d runs", start.goroutines, end.goroutines, runs)
	}
	if end.threads > start.threads+4 {
		t.Errorf("threads %d -> %d over %d runs", start.threads, end.threads, runs)
	}
	if end.heap > start.heap+1<<20 {
		t.Errorf("live heap %d KiB -> %d KiB over %d runs", start.heap>>10, end.heap>>10, runs)
	}
	if !slices.Equal(end.mounts, start.mounts) || len(end.scratch) > 0 || len(end.temps) > 0 {
		t.Errorf("left on the host: mounts %q (were %q), scratch dirs %q, temporary files %q", end.mounts, start.mounts, end.scratch, end.temps)
	}
}
