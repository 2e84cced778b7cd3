package drivertest

import (
	"fmt"
	"testing"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/internal/hostsys"
)

// Stack builds a base layer and depth layers on it, each adding one file
// (layers/NNN), and returns their ids, the top last. Ids start with prefix.
func Stack(t testing.TB, d drivers.Driver, prefix string, depth int) []string {
	t.Helper()
	var ids []string
	parent := ""
	for i := 0; i <= depth; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		apply(t, d, id, parent, Dir("layers", 0o755), File(fmt.Sprintf("layers/%03d", i), id, 0o644))
		ids = append(ids, id)
		parent = id
	}
	return ids
}

// ImageEntries is an image of files regular files spread over files/10
// directories, with files/10 symlinks: what a layer on top of it costs
// in inodes depends on the driver (none for overlay2, one per directory
// and symlink for overlay, one per file for vfs).
func ImageEntries(files int) []Entry {
	dirs := max(files/10, 1)
	es := []Entry{Dir("usr", 0o755)}
	for i := range dirs {
		es = append(es, Dir(fmt.Sprintf("usr/d%03d", i), 0o755))
	}
	for i := range files {
		es = append(es, File(fmt.Sprintf("usr/d%03d/f%04d", i%dirs, i), "content", 0o644))
	}
	for i := range files / 10 {
		es = append(es, Symlink(fmt.Sprintf("usr/d%03d/link%04d", i%dirs, i), fmt.Sprintf("f%04d", i)))
	}
	return es
}

// ImageInodes is how many inodes ImageEntries(files) takes in a full tree.
func ImageInodes(files int) int {
	return len(ImageEntries(files))
}

// BenchGetPut measures Get and Put of layer id: a mount and an unmount
// for drivers that mount.
func BenchGetPut(b *testing.B, d drivers.Driver, id string) {
	b.Helper()
	for b.Loop() {
		if _, err := d.Get(id); err != nil {
			b.Fatal(err)
		}
		if err := d.Put(id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchCreate measures Create of an empty layer on a base layer.
func BenchCreate(b *testing.B, d drivers.Driver) {
	b.Helper()
	apply(b, d, "create-base", "", File("f", "x", 0o644))
	var made []string
	removeAll := func() {
		for _, id := range made {
			if err := d.Remove(id); err != nil {
				b.Fatal(err)
			}
		}
		made = made[:0]
	}
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("create-%d", i)
		i++
		if err := d.Create(id, "create-base"); err != nil {
			b.Fatal(err)
		}
		made = append(made, id)
		if len(made) == 256 {
			// Keep the filesystem's inodes from running out.
			b.StopTimer()
			removeAll()
			b.StartTimer()
		}
	}
	b.StopTimer()
	removeAll()
}

// BenchCreateOnImage measures Create of a container layer on an image of
// files files, and its first Get: what a new container costs before it
// runs. vfs copies the image here, which an empty base (BenchCreate)
// hides.
func BenchCreateOnImage(b *testing.B, d drivers.Driver, files int) {
	b.Helper()
	apply(b, d, "image", "", ImageEntries(files)...)
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("container-%d", i)
		i++
		if err := d.Create(id, "image"); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Get(id); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := d.Put(id); err != nil {
			b.Fatal(err)
		}
		if err := d.Remove(id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchLayerInodes measures making an image layer (Create and ApplyDiff
// of a one-file diff) on top of an image of files files, and reports the
// inodes of home's filesystem each such layer consumes as
// "inodes/layer", and the image's own inode count as "image-inodes".
func BenchLayerInodes(b *testing.B, d drivers.Driver, files int) {
	b.Helper()
	img, err := TarBytes(ImageEntries(files)...)
	if err != nil {
		b.Fatal(err)
	}
	diff, err := TarBytes(Dir("etc", 0o755), File("etc/hostname", "layer", 0o644))
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Create("image", ""); err != nil {
		b.Fatal(err)
	}
	if _, err := d.ApplyDiff("image", "", readerOf(img)); err != nil {
		b.Fatal(err)
	}
	var used uint64
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("layer-%d", i)
		i++
		before := freeInodes(b, d.Home())
		if err := d.Create(id, "image"); err != nil {
			b.Fatal(err)
		}
		if _, err := d.ApplyDiff(id, "image", readerOf(diff)); err != nil {
			b.Fatal(err)
		}
		used += before - freeInodes(b, d.Home())
		b.StopTimer()
		if err := d.Remove(id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	// btrfs allocates inodes dynamically and reports no counts: no
	// metric rather than a misleading zero.
	if total := totalInodes(b, d.Home()); total > 0 {
		b.ReportMetric(float64(used)/float64(b.N), "inodes/layer")
	}
	b.ReportMetric(float64(ImageInodes(files)), "image-inodes")
}

func totalInodes(b *testing.B, dir string) uint64 {
	st, err := hostsys.Statfs(dir)
	if err != nil {
		b.Fatal(err)
	}
	return st.Inodes
}

func freeInodes(b *testing.B, dir string) uint64 {
	st, err := hostsys.Statfs(dir)
	if err != nil {
		b.Fatal(err)
	}
	return st.InodesFree
}

// Bench runs the standard benchmarks of driver name side by side: create
// of an empty layer, create and first Get of a container layer on a
// 1,000-file image, Get+Put of a container layer on an image of 1 and of
// 128 (or the driver's maximum) layers, and the inodes of a layer on a
// 1,000-file image.
func Bench(b *testing.B, name string, newHome HomeFunc, opts ...Option) {
	c := newConfig(name, opts)
	deep := c.deep
	if deep == 0 {
		deep = 128
	}
	b.Run("create", func(b *testing.B) {
		BenchCreate(b, c.initDriver(b, name, newHome(b)))
	})
	b.Run("create-start/files=1000", func(b *testing.B) {
		BenchCreateOnImage(b, c.initDriver(b, name, newHome(b)), 1000)
	})
	for _, depth := range []int{1, deep} {
		b.Run(fmt.Sprintf("get-put/depth=%d", depth), func(b *testing.B) {
			d := c.initDriver(b, name, newHome(b))
			// A container layer on an image of depth layers: what
			// docker run mounts.
			ids := Stack(b, d, "stack", depth-1)
			if err := d.Create("container", ids[len(ids)-1]); err != nil {
				b.Fatal(err)
			}
			BenchGetPut(b, d, "container")
		})
	}
	b.Run("layer-inodes/files=1000", func(b *testing.B) {
		BenchLayerInodes(b, c.initDriver(b, name, newHome(b)), 1000)
	})
}
