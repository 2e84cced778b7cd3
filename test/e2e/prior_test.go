package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/internal/dockertest"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector"
	"github.com/graphprobe/graphprobe/version"
)

// predict runs graphprobe's probe and decision for dockerd 20.10 on a
// data-root.
func predict(t *testing.T, dataRoot string) *selector.Decision {
	t.Helper()
	r, err := probe.Run(context.Background(), probe.Options{DataRoot: dataRoot, PriorDirs: drivers.PriorDirs()})
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	return selector.Decide(r, version.MustDocker(dockerd20), selector.Options{})
}

// populate starts dockerd with a configured driver and imports an image,
// leaving that driver's directory non-empty: prior state.
func populate(t *testing.T, dataRoot, driver string) {
	t.Helper()
	d := dockertest.Start(t, dockertest.Options{DataRoot: dataRoot, StorageDriver: driver})
	d.Import(t, writeImageTarball(t), "graphprobe/e2e:prior-"+driver)
	d.Stop(t)
}

// TestDockerdPriorState: a non-empty driver directory under the data-root
// decides dockerd's driver before its priority list does; two of them, or
// one whose driver cannot start, stop dockerd. graphprobe must keep the
// prior driver in the first case and refuse (exit 4) in the others.
func TestDockerdPriorState(t *testing.T) {
	dockertest.Ensure(t)
	fs := testutil.NewFS(t, testutil.Ext4, 0)
	dataRoot := filepath.Join(fs.Dir, "docker")

	t.Run("one-prior-driver-wins", func(t *testing.T) {
		// overlay comes after overlay2 in 20.10's list; its data keeps it.
		populate(t, dataRoot, "overlay")
		dec := predict(t, dataRoot)
		d := dockertest.Start(t, dockertest.Options{DataRoot: dataRoot})
		info := d.Info(t)
		d.Stop(t)
		if info.Driver != "overlay" {
			t.Errorf("dockerd picked %s over the prior overlay data", info.Driver)
		}
		var used []string
		for _, e := range dockertest.AtLevel(dockertest.ParseLog(d.Log()), "info") {
			if strings.HasPrefix(e.Msg, "[graphdriver] using prior storage driver: ") {
				used = append(used, e.Line)
			}
		}
		if len(used) != 1 || !strings.HasSuffix(used[0], `msg="[graphdriver] using prior storage driver: overlay"`) {
			t.Errorf("want one log line naming the prior driver overlay, got %q", used)
		}
		for _, l := range used {
			t.Logf("dockerd log: %s", l)
		}
		if dec.Driver != info.Driver {
			t.Errorf("graphprobe predicts %s (refusal %+v), dockerd picked %s", dec.Driver, dec.Refusal, info.Driver)
		}
	})

	t.Run("several-prior-drivers", func(t *testing.T) {
		populate(t, dataRoot, "overlay2") // now overlay and overlay2 hold data
		dec := predict(t, dataRoot)
		ref := dockertest.StartExpectFailure(t, dockertest.Options{DataRoot: dataRoot})
		t.Logf("dockerd exit %d: %s", ref.ExitCode, ref.Reason)
		// 20.10 lists the drivers in map order: either order is dockerd's.
		wantA := "failed to start daemon: error initializing graphdriver: " + dataRoot + " contains several valid graphdrivers: overlay2, overlay; Please cleanup or explicitly choose storage driver (-s <DRIVER>)"
		wantB := strings.Replace(wantA, "overlay2, overlay;", "overlay, overlay2;", 1)
		if ref.Reason != wantA && ref.Reason != wantB {
			t.Errorf("dockerd said\n  %q\nwant\n  %q", ref.Reason, wantA)
		}
		if dec.Driver != "" || dec.Refusal == nil || dec.Refusal.Kind != "several-prior" {
			t.Errorf("graphprobe: driver %q refusal %+v, want the several-prior refusal", dec.Driver, dec.Refusal)
		}
	})

	// The prior driver cannot start: aufs after a kernel upgrade dropped
	// its module, btrfs data on a data-root that is no longer btrfs.
	// dockerd stops rather than let the images vanish.
	for _, tc := range []struct {
		driver, err string
	}{
		{"aufs", "driver not supported"},
		{"btrfs", "prerequisites for driver not satisfied (wrong filesystem?)"},
	} {
		t.Run("prior-"+tc.driver+"-fails", func(t *testing.T) {
			if tc.driver == "aufs" && aufsLoadable(t) {
				t.Skip("aufs can be loaded on this kernel")
			}
			root := filepath.Join(fs.Dir, "docker-"+tc.driver)
			if err := os.MkdirAll(filepath.Join(root, tc.driver, "layers"), 0o700); err != nil {
				t.Fatal(err)
			}
			dec := predict(t, root)
			ref := dockertest.StartExpectFailure(t, dockertest.Options{DataRoot: root})
			t.Logf("dockerd exit %d: %s", ref.ExitCode, ref.Reason)
			for _, e := range dockertest.AtLevel(ref.Entries, "error") {
				t.Logf("dockerd log: %s", e.Line)
			}
			if want := "failed to start daemon: error initializing graphdriver: " + tc.err; ref.Reason != want {
				t.Errorf("dockerd said\n  %q\nwant\n  %q", ref.Reason, want)
			}
			line := "[graphdriver] prior storage driver " + tc.driver + " failed: " + tc.err
			found := false
			for _, e := range dockertest.AtLevel(ref.Entries, "error") {
				found = found || e.Msg == line
			}
			if !found {
				t.Errorf("no error line %q", line)
			}
			if dec.Driver != "" || dec.Refusal == nil || dec.Refusal.Kind != "prior-state" {
				t.Errorf("graphprobe: driver %q refusal %+v, want the prior-state refusal", dec.Driver, dec.Refusal)
			}
		})
	}
}
