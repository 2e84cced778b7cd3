package selector

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/drivers/bench"
	_ "github.com/graphprobe/graphprobe/drivers/vfs"
	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/internal/testutil"
)

// TestProveVFS runs the quick suite for vfs on ext4, and on btrfs, which
// reports 0 of 0 inodes (no limit, not none free).
func TestProveVFS(t *testing.T) {
	for _, kind := range []string{testutil.Ext4, testutil.Btrfs} {
		t.Run(kind, func(t *testing.T) { testProveVFS(t, kind) })
	}
}

func testProveVFS(t *testing.T, kind string) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, kind, 512)
	sz := bench.DefaultSizes(bench.Quick)
	sz.MountDepths = []int{1, 20}
	sz.CopyUpSizes = []int64{4 << 10, 1 << 20}
	// vfs copies the image into every layer: a small one keeps the test
	// short.
	sz.ImageFiles = 200
	res, err := Prove(context.Background(), ProveRequest{Drivers: []string{"vfs"}, Mode: bench.Quick, Sizes: sz, ScratchParent: fs.Dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Inits) != 1 || !res.Inits[0].OK {
		t.Fatalf("inits %+v", res.Inits)
	}
	db := res.Benchmarks["vfs"]
	if db == nil || db.Error != "" {
		t.Fatalf("benchmark %+v", db)
	}
	for _, r := range db.Results {
		t.Logf("%-40s %12.0f %s spread %.2f n=%d", r.Name, r.Median, r.Unit, r.Spread, r.Samples)
	}
	entries, _ := os.ReadDir(fs.Dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), hostsys.ScratchPrefix) {
			t.Errorf("scratch %s left", e.Name())
		}
	}
}
