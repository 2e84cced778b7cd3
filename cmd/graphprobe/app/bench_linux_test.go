package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// TestBenchCommand benchmarks two drivers side by side on a real
// filesystem, and checks the document and the benchstat lines.
func TestBenchCommand(t *testing.T) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Ext4, 512)
	lines := filepath.Join(t.TempDir(), "bench.txt")
	out, errOut, code := runCLI(t, "bench", "overlay2", "vfs", "btrfs", "--bench", "quick", "--data-root", filepath.Join(fs.Dir, "docker"),
		"--config", filepath.Join(t.TempDir(), "none.json"), "--format", "json", "--benchstat", lines)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	validate(t, loadSchema(t, "select.schema.json"), out)
	var doc struct {
		Warnings   []string
		DaemonJSON *json.RawMessage `json:"daemonJSON"`
		Candidates []struct {
			Driver      string
			Initialized bool
			Benchmark   *struct {
				Results []struct {
					Name    string
					Median  float64
					Samples int
				}
				Score float64
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.DaemonJSON != nil && string(*doc.DaemonJSON) != "null" {
		t.Errorf("bench reported a daemon.json: %s", *doc.DaemonJSON)
	}
	got := map[string]int{}
	for _, c := range doc.Candidates {
		if c.Benchmark == nil {
			continue
		}
		if !c.Initialized || c.Benchmark.Score < 1 {
			t.Errorf("%s: initialised %v, score %v", c.Driver, c.Initialized, c.Benchmark.Score)
		}
		for _, r := range c.Benchmark.Results {
			if r.Samples < 1 || r.Median < 0 {
				t.Errorf("%s %s: %+v", c.Driver, r.Name, r)
			}
		}
		got[c.Driver] = len(c.Benchmark.Results)
	}
	if got["overlay2"] == 0 || got["vfs"] == 0 || len(got) != 2 {
		t.Fatalf("benchmarked %v, want overlay2 and vfs", got)
	}
	// btrfs was named but cannot run on ext4: said, not silently dropped.
	if want := "btrfs was not benchmarked: the data-root is on extfs, not btrfs"; !slices.Contains(doc.Warnings, want) {
		t.Errorf("warnings %q, want %q", doc.Warnings, want)
	}
	data, err := os.ReadFile(lines)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^Benchmark[A-Z][A-Za-z-]*/driver=(overlay2|vfs)(/[^ ]+)? 1 [0-9]+ [a-zA-Z/-]+$`)
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if !line.MatchString(l) {
			t.Errorf("not a benchstat line: %q", l)
		}
	}
	// The inode cost per image layer is the point of overlay2 over vfs.
	if !strings.Contains(string(data), "BenchmarkInodes/driver=vfs/image-layer") {
		t.Errorf("no inode figures for vfs:\n%s", data)
	}
	entries, _ := os.ReadDir(fs.Dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".graphprobe-") {
			t.Errorf("scratch %s left behind", e.Name())
		}
	}
}

// TestSelectFastest runs the fastest strategy for real: every eligible
// driver is initialised and benchmarked, and the choice says why.
func TestSelectFastest(t *testing.T) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Ext4, 512)
	cfg := filepath.Join(t.TempDir(), "daemon.json")
	doc, out, errOut, code := selectJSON(t, "--strategy", "fastest", "--dry-run", "--docker-version", "25.0.5",
		"--data-root", filepath.Join(fs.Dir, "docker"), "--config", cfg, "--lock-file", filepath.Join(t.TempDir(), "lock"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var full struct {
		Reason     string
		Candidates []struct {
			Driver    string
			Eligible  bool
			Benchmark *json.RawMessage
		}
	}
	json.Unmarshal([]byte(out), &full)
	benched := 0
	for _, c := range full.Candidates {
		if c.Eligible && c.Benchmark != nil && string(*c.Benchmark) != "null" {
			benched++
		}
	}
	if benched < 2 {
		t.Errorf("fastest benchmarked %d eligible drivers, want every one (at least overlay2 and vfs)", benched)
	}
	if doc.Driver == "" || !strings.Contains(full.Reason, "fastest") {
		t.Errorf("driver %q, reason %q", doc.Driver, full.Reason)
	}
}

// TestSelectFastestChargesContainers: on plain ext4, vfs looked fastest
// when layers were timed empty, since it does its copying when a layer is
// created. Charged for a container on a real image (its layer made on the
// image, its first start, its copy-ups, its inodes and bytes), vfs must
// not win, and the report must show what each driver was charged.
func TestSelectFastestChargesContainers(t *testing.T) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Ext4, 512)
	_, out, errOut, code := selectJSON(t, "--strategy", "fastest", "--dry-run", "--docker-version", "24.0.7",
		"--data-root", filepath.Join(fs.Dir, "docker"), "--config", filepath.Join(t.TempDir(), "daemon.json"),
		"--lock-file", filepath.Join(t.TempDir(), "lock"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		Driver     string
		Reason     string
		Candidates []struct {
			Driver    string
			Benchmark *struct {
				Results []struct {
					Name   string
					Median float64
				}
				Score float64
				Error string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Driver == "vfs" || doc.Driver == "" {
		t.Errorf("fastest chose %q: %s", doc.Driver, doc.Reason)
	}
	// The layer items name the image they build on: image=N files.
	imageRE := regexp.MustCompile(`/image=([0-9]+)$`)
	imageFiles := 0
	charged := map[string]map[string]float64{} // driver -> charge -> median
	for _, c := range doc.Candidates {
		if c.Benchmark == nil {
			continue
		}
		if c.Benchmark.Error != "" {
			t.Errorf("%s: %s", c.Driver, c.Benchmark.Error)
		}
		m := map[string]float64{}
		for _, r := range c.Benchmark.Results {
			kind, _, _ := strings.Cut(r.Name, "/")
			onImage := imageRE.FindStringSubmatch(r.Name)
			if onImage != nil {
				imageFiles, _ = strconv.Atoi(onImage[1])
			}
			switch {
			case onImage != nil && (kind == "create" || kind == "start"), kind == "copyup":
				m[kind] += r.Median
			case onImage != nil && strings.HasPrefix(r.Name, kind+"/container-layer/") && (kind == "inodes" || kind == "bytes"):
				m[kind] = r.Median
			}
		}
		charged[c.Driver] = m
		t.Logf("%s: score %.2f, charged %v", c.Driver, c.Benchmark.Score, m)
	}
	for _, d := range []string{"overlay2", "vfs"} {
		for _, kind := range []string{"create", "start", "copyup", "inodes", "bytes"} {
			if _, ok := charged[d][kind]; !ok {
				t.Errorf("%s: no %s figure on the image in the report", d, kind)
			}
		}
	}
	// vfs copies the image into every layer: its inode figure is
	// deterministic, unlike the times.
	if in := charged["vfs"]["inodes"]; imageFiles == 0 || in < float64(imageFiles) {
		t.Errorf("vfs charged %v inodes per container layer on a %d-file image, want at least the image's files", in, imageFiles)
	}
}

// TestBenchNothingRuns names only drivers that cannot run on ext4: nothing
// is benchmarked, and that is exit 3 with the reason per driver, not a
// silent success.
func TestBenchNothingRuns(t *testing.T) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Ext4, 64)
	out, errOut, code := runCLI(t, "bench", "zfs", "btrfs", "--bench", "quick", "--data-root", filepath.Join(fs.Dir, "docker"),
		"--config", filepath.Join(t.TempDir(), "none.json"), "--docker-version", "24.0.7")
	if code != ExitNoDriver {
		t.Fatalf("exit %d, want %d\n%s%s", code, ExitNoDriver, out, errOut)
	}
	// The zfs reasons go on with what this host lacks (/dev/zfs, the binary).
	if !strings.HasPrefix(errOut, "graphprobe: bench: nothing was benchmarked, no driver named could run here (zfs: the data-root is on extfs, not zfs") ||
		!strings.HasSuffix(errOut, "; btrfs: the data-root is on extfs, not btrfs)\n") {
		t.Errorf("stderr %q", errOut)
	}
	if !strings.Contains(out, "warning: zfs was not benchmarked") || !strings.Contains(out, "warning: btrfs was not benchmarked") {
		t.Errorf("output does not say what was not benchmarked:\n%s", out)
	}
}
