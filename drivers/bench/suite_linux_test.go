package bench

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/drivers"
	_ "github.com/graphprobe/graphprobe/drivers/vfs"
	"github.com/graphprobe/graphprobe/internal/testutil"
)

// TestGroup maps every item of the suite to one of Groups, so that no
// measurement the suite charges is silently weighed 0, and the control
// after a copy-up to none.
func TestGroup(t *testing.T) {
	for _, mode := range []string{Quick, Full} {
		for _, it := range suite(DefaultSizes(mode)) {
			if got := Group(it.name); got != it.group || !slices.Contains(Groups, got) {
				t.Errorf("%s: Group %q, item says %q", it.name, got, it.group)
			}
			if it.companion != "" && Group(it.companion) != "" {
				t.Errorf("%s: the control %s is weighed", it.name, it.companion)
			}
		}
	}
}

// TestRunVFS runs a small suite on vfs: every item gives a result, and
// every sample a line.
func TestRunVFS(t *testing.T) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Ext4, 256)
	home := fs.Dir + "/vfs"
	d, err := drivers.Init("vfs", home, drivers.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Cleanup()
	sz := Sizes{ChainLengths: []int{2}, MountDepths: []int{2}, CopyUpSizes: []int64{4 << 10}, SmallFiles: 20, StatDepths: []int{2}, ReaddirSize: 20, ImageFiles: 20, Samples: 1}
	out, err := Run(context.Background(), Request{Mode: Quick, Sizes: sz}, []Target{{Name: "vfs", Driver: d, Home: home}})
	if err != nil {
		t.Fatal(err)
	}
	b := out.Benchmarks["vfs"]
	if b == nil || b.Error != "" || len(b.Notes) > 0 {
		t.Fatalf("benchmark %+v", b)
	}
	want := []string{
		"create/layers=2/image=20", "start/depth=2/image=20", "stat/depth=2", "open/depth=2",
		"copyup/size=4KiB", "write-after-copyup/size=4KiB", "smallfiles/n=20", "readdir/entries=20",
		"inodes/container-layer/image=20", "bytes/container-layer/image=20", "inodes/image-layer/image=20", "bytes/image-layer/image=20",
	}
	var got []string
	lines := 0
	for _, r := range b.Results {
		got = append(got, r.Name)
		lines += r.Samples
		if r.Samples != 1 {
			t.Errorf("%s: %d samples, want 1", r.Name, r.Samples)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
	if len(out.Lines) != lines {
		t.Errorf("%d lines for %d samples", len(out.Lines), lines)
	}
	for _, l := range out.Lines {
		if !strings.HasPrefix(l, "Benchmark") || !strings.Contains(l, "/driver=vfs") {
			t.Errorf("line %q", l)
		}
	}
}
