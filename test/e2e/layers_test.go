package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/dockertest"
	"github.com/graphprobe/graphprobe/internal/testutil"
)

// dockerdContainer runs dockerd with the given driver on a fresh ext4,
// imports imageEntries as an image, creates (does not start) a container
// of it and stops dockerd. It returns the data-root and the container's
// layer chain as dockerd left them on disk, for a graph driver of
// graphprobe's to open.
func dockerdContainer(t *testing.T, c *dockertest.Cache, driver string) (string, dockertest.Layers) {
	t.Helper()
	fs := testutil.NewFS(t, testutil.Ext4, 0)
	dataRoot := filepath.Join(fs.Dir, "docker")
	cfg := writeConfig(t, map[string]any{"storage-driver": driver})
	d := dockertest.Start(t, dockertest.Options{Cache: c, DataRoot: dataRoot, ConfigFile: cfg})
	if got := d.Info(t).Driver; got != driver {
		t.Fatalf("dockerd runs %s, configured %s", got, driver)
	}
	image := d.Import(t, writeImageTarball(t), "graphprobe/e2e:layers")
	id := d.CreateContainer(t, image, "/opt/tool/bin/run")
	d.Stop(t)
	l := d.Layers(t, id)
	t.Logf("container %.12s on %s: rw %s, init %s, image %v", id, l.Driver, l.RW, l.Init, l.Image)
	return dataRoot, l
}

var shortLink = regexp.MustCompile(`^[A-Z0-9]{26}$`)

// TestDockerImportLayers imports a tarball into dockerd's overlay2,
// fuse-overlayfs and overlay drivers, creates a container and checks the
// layers on disk after
// dockerd stopped: the layout graphprobe's drivers of the same names write
// and must be able to open, which they then do (crossCheck).
func TestDockerImportLayers(t *testing.T) {
	for _, c := range dockertest.EnsureAll(t) {
		t.Run(c.Release.Name, func(t *testing.T) { testDockerImportLayers(t, c) })
	}
}

func testDockerImportLayers(t *testing.T, c *dockertest.Cache) {
	// fuse-overlayfs is a copy of overlay2 with the mount done by the
	// fuse-overlayfs program: same layout. Docker 29 runs both as graph
	// drivers when named in storage-driver.
	for _, driver := range []string{"overlay2", "fuse-overlayfs"} {
		t.Run(driver, func(t *testing.T) {
			if driver == "fuse-overlayfs" {
				testutil.RequiresTool(t, "fuse-overlayfs")
			}
			dataRoot, l := dockerdContainer(t, c, driver)
			checkOverlay2Layout(t, filepath.Join(dataRoot, driver), l)
			crossCheck(t, c, dataRoot, l)
		})
	}
	if c.Release.Name != "20.10" {
		return // overlay was removed in 24
	}
	t.Run("overlay", func(t *testing.T) {
		dataRoot, l := dockerdContainer(t, c, "overlay")
		home := filepath.Join(dataRoot, "overlay")
		if l.Driver != "overlay" || len(l.Image) != 1 || l.Init != l.RW+"-init" {
			t.Fatalf("layers %+v: want overlay, one image layer, init layer <rw>-init", l)
		}
		img, init, rw := l.Image[0], l.Init, l.RW
		// A base layer is a full tree in root/.
		checkImageTree(t, filepath.Join(home, img, "root"))
		// Container layers sit on the nearest layer with a root/: both name
		// the image layer, and rw starts as a copy of init's upper.
		for _, id := range []string{init, rw} {
			if got := mustRead(t, filepath.Join(home, id, "lower-id")); got != img {
				t.Errorf("%s/lower-id = %q, want the image layer %s", id, got, img)
			}
			if _, err := os.Stat(filepath.Join(home, id, "root")); !os.IsNotExist(err) {
				t.Errorf("%s has a root/ (%v)", id, err)
			}
			checkInitLayer(t, filepath.Join(home, id, "upper"))
		}
		crossCheck(t, c, dataRoot, l)
	})
}

// crossCheck opens dockerd's layers with graphprobe's driver of the same
// name, once graphprobe has one.
func crossCheck(t *testing.T, c *dockertest.Cache, dataRoot string, l dockertest.Layers) {
	if graphprobeDrivers[l.Driver] {
		t.Run("graphprobe-opens", func(t *testing.T) { checkGraphprobeOpens(t, c, dataRoot, l) })
	}
}

// checkInitLayer checks the files dockerd's init layer adds to every
// container, which a driver opening the container's layer shows too.
func checkInitLayer(t *testing.T, dir string) {
	t.Helper()
	for _, p := range []string{".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "dev/console", "proc", "sys"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
			t.Errorf("init layer: %v", err)
		}
	}
	if got, err := os.Readlink(filepath.Join(dir, "etc/mtab")); err != nil || got != "/proc/mounts" {
		t.Errorf("init layer etc/mtab -> %q (%v), want /proc/mounts", got, err)
	}
}

// checkOverlay2Layout checks the layout dockerd's overlay2 (and its copy,
// fuse-overlayfs) gives an image layer and a container's init and rw
// layers in home.
func checkOverlay2Layout(t *testing.T, home string, l dockertest.Layers) {
	t.Helper()
	if filepath.Base(home) != l.Driver || len(l.Image) != 1 || l.Init != l.RW+"-init" {
		t.Fatalf("layers %+v: want %s, one image layer, init layer <rw>-init", l, filepath.Base(home))
	}
	img, init, rw := l.Image[0], l.Init, l.RW
	// The image layer holds the tarball as it was.
	checkImageTree(t, filepath.Join(home, img, "diff"))
	links := map[string]string{}
	for _, id := range l.Chain() {
		link := strings.TrimSpace(mustRead(t, filepath.Join(home, id, "link")))
		if !shortLink.MatchString(link) {
			t.Errorf("%s/link = %q, want 26 characters of [A-Z0-9]", id, link)
		}
		if got, err := os.Readlink(filepath.Join(home, "l", link)); err != nil || got != "../"+id+"/diff" {
			t.Errorf("l/%s -> %q (%v), want ../%s/diff", link, got, err, id)
		}
		links[id] = "l/" + link
	}
	// lower lists the short links of every layer below, nearest first;
	// a base layer has none.
	if _, err := os.Stat(filepath.Join(home, img, "lower")); !os.IsNotExist(err) {
		t.Errorf("base layer has a lower file (%v)", err)
	}
	if got, want := mustRead(t, filepath.Join(home, init, "lower")), links[img]; got != want {
		t.Errorf("init lower = %q, want %q", got, want)
	}
	if got, want := mustRead(t, filepath.Join(home, rw, "lower")), links[init]+":"+links[img]; got != want {
		t.Errorf("rw lower = %q, want %q", got, want)
	}
	// A layer that has a child is marked committed.
	for _, id := range []string{img, init} {
		if _, err := os.Stat(filepath.Join(home, id, "committed")); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	for _, id := range []string{init, rw} {
		if !mustStat(t, filepath.Join(home, id, "work")).IsDir() {
			t.Errorf("%s/work is not a directory", id)
		}
	}
	checkInitLayer(t, filepath.Join(home, init, "diff"))
	if ents, err := os.ReadDir(filepath.Join(home, rw, "diff")); err != nil || len(ents) != 0 {
		t.Errorf("rw diff of a container never started: %d entries (%v)", len(ents), err)
	}
}
