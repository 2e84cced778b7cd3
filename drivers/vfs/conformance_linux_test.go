package vfs

import (
	"testing"

	"github.com/graphprobe/graphprobe/drivers/drivertest"
	"github.com/graphprobe/graphprobe/internal/testutil"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, Name, drivertest.OnFS(t, testutil.Ext4, 0))
}

// TestLayerInodeCost pins down what vfs costs: a layer on an image takes
// one inode for every inode of the image (files, directories, symlinks)
// plus its own root, since every layer is a full copy.
func TestLayerInodeCost(t *testing.T) {
	testutil.RequiresRoot(t)
	home := drivertest.OnFS(t, testutil.Ext4, 0)(t)
	d := drivertest.Init(t, Name, home)
	must(t, d.Create("image", ""))
	img, err := drivertest.TarBytes(drivertest.ImageEntries(1000)...)
	must(t, err)
	if _, err := d.ApplyDiff("image", "", bytesReader(img)); err != nil {
		t.Fatal(err)
	}
	before := freeInodes(t, home)
	must(t, d.Create("layer", "image"))
	used := before - freeInodes(t, home)
	if want := uint64(drivertest.ImageInodes(1000) + 1); used != want {
		t.Errorf("a vfs layer on a %d-inode image used %d inodes, want %d", drivertest.ImageInodes(1000), used, want)
	}
}

func BenchmarkVFS(b *testing.B) {
	drivertest.Bench(b, Name, drivertest.OnFS(b, testutil.Ext4, 0))
}
