package e2e

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/drivers"
	_ "github.com/graphprobe/graphprobe/drivers/fuseoverlayfs"
	_ "github.com/graphprobe/graphprobe/drivers/overlay"
	_ "github.com/graphprobe/graphprobe/drivers/overlay2"
	"github.com/graphprobe/graphprobe/internal/dockertest"
	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/internal/testutil"
)

// inNamespace runs fn on a private mount namespace thread, as graphprobe
// runs its drivers: whatever fn leaves mounted dies with the namespace.
func inNamespace(t *testing.T, fn func() error) {
	t.Helper()
	ns, err := hostsys.NewMountNS()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := ns.Do(fn); err != nil {
		t.Fatal(err)
	}
}

// checkGraphprobeOpens: graphprobe's graph driver of the same name opens
// the home dockerd wrote, mounts the image layer and the container's whole
// stack, shows every file of the image as dockerd stored it, and leaves
// the home so that dockerd still runs the container's layers afterwards.
func checkGraphprobeOpens(t *testing.T, c *dockertest.Cache, dataRoot string, l dockertest.Layers) {
	t.Helper()
	driver := l.Driver
	home := filepath.Join(dataRoot, driver)
	inNamespace(t, func() error {
		d, err := drivers.Init(driver, home, drivers.Options{})
		if err != nil {
			return err
		}
		defer d.Cleanup()
		for _, id := range l.Chain() {
			if !d.Exists(id) {
				t.Errorf("graphprobe's %s does not see dockerd's layer %s", driver, id)
			}
		}
		for _, id := range []string{l.Image[0], l.RW} {
			root, err := d.Get(id)
			if err != nil {
				return err
			}
			checkImageTree(t, root)
			if id == l.RW {
				checkInitLayer(t, root)
			}
			if err := d.Put(id); err != nil {
				return err
			}
		}
		return nil
	})

	cfg := writeConfig(t, map[string]any{"storage-driver": driver})
	d := dockertest.Start(t, dockertest.Options{Cache: c, DataRoot: dataRoot, ConfigFile: cfg})
	out := filepath.Join(t.TempDir(), "export.tar")
	d.Docker(t, "export", "--output", out, l.Container)
	d.Stop(t)
	t.Logf("dockerd restarted on the home in %s, exported the container, stopped in %s", d.StartDuration, d.StopDuration)
	checkExport(t, out)
}

// checkExport checks that a `docker export` tar holds every path of the
// image.
func checkExport(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read export: %v", err)
		}
		seen[strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = true
	}
	for _, e := range imageEntries {
		if !seen[e.Path] {
			t.Errorf("docker export lacks %s", e.Path)
		}
	}
}

// graphprobeDrivers are the drivers of graphprobe's that the cross tests
// compare with dockerd's (each imported above for its registration).
var graphprobeDrivers = map[string]bool{"overlay2": true, "overlay": true, "fuse-overlayfs": true}

// checkGraphprobeRefuses: where dockerd 20.10 refused a driver, graphprobe's
// driver of the same name refuses too, with a not-supported class error
// (so its selector moves on, as dockerd's automatic choice does) and, for
// d_type, with dockerd's own words and a remedy.
func checkGraphprobeRefuses(t *testing.T, kind, driver, dataRoot string, ref *dockertest.Refusal) {
	t.Helper()
	var initErr error
	inNamespace(t, func() error {
		d, err := drivers.Init(driver, filepath.Join(dataRoot, driver), drivers.Options{})
		if err == nil {
			d.Cleanup()
		}
		initErr = err
		return nil
	})
	t.Logf("graphprobe: %v", initErr)
	if initErr == nil {
		t.Fatalf("graphprobe's %s initialised where dockerd refused: %s", driver, ref.Reason)
	}
	if !drivers.IsNotSupported(initErr) {
		t.Errorf("graphprobe's refusal is not of the not-supported class: %v", initErr)
	}
	var nse *drivers.NotSupportedError
	if !errors.As(initErr, &nse) {
		t.Fatalf("graphprobe's refusal is not a *drivers.NotSupportedError: %T", initErr)
	}
	switch kind {
	case testutil.Ext4NoDType:
		// Same class (ErrNotSupported) and the same words.
		const phrase = "formatted without d_type support, which leads to incorrect behavior"
		if !strings.Contains(ref.Reason, phrase) || !strings.Contains(initErr.Error(), phrase) {
			t.Errorf("want both to say %q", phrase)
		}
		if !errors.Is(initErr, drivers.ErrNotSupported) {
			t.Errorf("graphprobe's class is %q, dockerd's NotSupportedError is %q", nse.Class, drivers.ErrNotSupported)
		}
		if !strings.Contains(initErr.Error(), "filetype") {
			t.Errorf("graphprobe's refusal gives no remedy (tune2fs -O filetype): %v", initErr)
		}
	case testutil.Overlay:
		// dockerd 20.10 finds out by its test mount and says only "driver
		// not supported"; graphprobe names the overlayfs backing
		// filesystem, as dockerd 17.x-19.03 did (ErrIncompatibleFS). Both
		// are not-supported: dockerd moves on to fuse-overlayfs, and so
		// does graphprobe's selector.
		if !strings.Contains(initErr.Error(), "overlayfs") {
			t.Errorf("graphprobe's refusal does not name overlayfs: %v", initErr)
		}
	}
}
