package bench

import (
	"archive/tar"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/internal/hostsys"
	"golang.org/x/sys/unix"
)

// item is one measurement of the suite, run for every driver in turn.
type item struct {
	name string
	unit string
	// group is the item's entry of Groups, which Group must give for
	// its name.
	group string
	// samples overrides the mode's sample count (1 for costly items).
	samples int
	// companion names a second result each run records in
	// scratch[companion] (the control write after a copy-up).
	companion     string
	companionUnit string
	// needs is the free space (bytes, inodes) the item needs.
	needBytes  uint64
	needInodes uint64
	// imageLayers is how many layers on the image the item will make
	// for a driver and hold at once: each needs what a layer on the image
	// costs the driver, which imageSetup measures (a full copy for vfs, a
	// few inodes for overlay2). Nil: none.
	imageLayers func(b *driver) int
	setup       func(b *driver) error
	run         func(b *driver) (float64, error)
	teardown    func(b *driver)
}

// driver is one driver's state during a benchmark run.
type driver struct {
	name string
	d    drivers.Driver
	home string
	// layerInodes and layerBytes are what one layer on the image costs
	// on the filesystem, measured by imageSetup.
	layerInodes, layerBytes uint64
	next                    int
	scratch                 map[string]any // per-item state
	notes                   []string
	err                     error
	start                   time.Time
}

func (b *driver) id(prefix string) string {
	b.next++
	return fmt.Sprintf("%s%06d", prefix, b.next)
}

// chain creates n empty layers on top of parent and returns their ids,
// bottom first. Each layer gets one small file so that the stack is real.
func (b *driver) chain(parent string, n int, withFile bool) ([]string, error) {
	var ids []string
	for i := 0; i < n; i++ {
		id := b.id("l")
		if err := b.d.Create(id, parent); err != nil {
			return ids, fmt.Errorf("create layer %d of %d: %w", i+1, n, err)
		}
		if withFile {
			if err := b.apply(id, parent, tarOf(map[string][]byte{fmt.Sprintf("layer%03d", i): []byte("x")})); err != nil {
				return ids, fmt.Errorf("apply layer %d of %d: %w", i+1, n, err)
			}
		}
		ids = append(ids, id)
		parent = id
	}
	return ids, nil
}

// apply applies a layer tar and closes it.
func (b *driver) apply(id, parent string, r io.ReadCloser) error {
	_, err := b.d.ApplyDiff(id, parent, r)
	r.Close()
	return err
}

// removeChain removes layers top first.
func (b *driver) removeChain(ids []string) {
	for i := len(ids) - 1; i >= 0; i-- {
		_ = b.d.Remove(ids[i])
	}
}

// tarOf streams a small layer tar. The caller must Close the reader, which
// also stops the writer when ApplyDiff gave up early.
func tarOf(files map[string][]byte) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			tw.Write(files[n])
		}
		pw.CloseWithError(tw.Close())
	}()
	return pr
}

// imageTar streams an image of n files in n/10 directories with a symlink
// per directory, like a small distribution image. The caller must Close it.
func imageTar(n int) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		epoch := time.Unix(0, 0)
		dirs := max(n/10, 1)
		for d := 0; d < dirs; d++ {
			dir := fmt.Sprintf("usr/share/d%03d/", d)
			if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: epoch}); err != nil {
				pw.CloseWithError(err)
				return
			}
			tw.WriteHeader(&tar.Header{Name: dir + "link", Linkname: "f0", Typeflag: tar.TypeSymlink, ModTime: epoch})
			for f := 0; f < n/dirs; f++ {
				body := []byte(strconv.Itoa(f))
				tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%sf%d", dir, f), Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: epoch})
				tw.Write(body)
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	return pr
}

func timed(n int, fn func(i int) error) (float64, error) {
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := fn(i); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n), nil
}

// imageInodes is about how many inodes imageTar(files) takes as a full
// tree (files, a directory and a symlink per ten files, and the parents):
// what vfs copies for every layer made on the image.
func imageInodes(files int) uint64 { return uint64(files) + 2*uint64(max(files/10, 1)) + 4 }

// suite builds the benchmark items for the sizes.
//
// Every time a driver spends on a container is charged where it falls, on
// a real image: vfs copies the whole parent when a layer is created, and
// overlay2 pays at mount and at the first write instead. So layers are
// created on the image (create), a container's first start is its layer's
// create and mount together (start), and a copy-up is timed from the
// container layer's create to the end of the first write (copyup): a
// driver cannot look fast by doing its work in an untimed step.
func suite(sz Sizes) []*item {
	var items []*item
	imgInodes := imageInodes(sz.ImageFiles)
	imgBytes := uint64(sz.ImageFiles) * 4096
	// The image itself, for the first item that makes it.
	needInodes, needBytes := imgInodes, imgBytes
	for _, n := range sz.ChainLengths {
		n := n
		items = append(items, &item{
			name: fmt.Sprintf("create/layers=%d/image=%d", n, sz.ImageFiles), unit: "ns/layer", group: "create",
			needInodes: needInodes, needBytes: needBytes, imageLayers: func(*driver) int { return n },
			setup: imageSetup(sz.ImageFiles),
			run: func(b *driver) (float64, error) {
				start := time.Now()
				ids, err := b.chain(b.image(), n, false)
				el := time.Since(start)
				b.removeChain(ids)
				if err != nil {
					return 0, err
				}
				return float64(el.Nanoseconds()) / float64(n), nil
			},
		})
	}
	// One image of each depth at a time, shared by the start, stat and
	// open items of that depth: vfs holds a copy of the image per layer.
	depths := slices.Concat(sz.MountDepths, sz.StatDepths)
	slices.Sort(depths)
	for _, depth := range slices.Compact(depths) {
		// The stack's depth-1 layers and a container's, unless the
		// stack is there already.
		layers := func(b *driver) int {
			if _, ok := b.scratch[fmt.Sprintf("stack-%d", depth)]; ok {
				return 1
			}
			return depth
		}
		setup := func(b *driver) error {
			if err := imageSetup(sz.ImageFiles)(b); err != nil {
				return err
			}
			_, err := b.stack(depth)
			return err
		}
		var group []*item
		if slices.Contains(sz.MountDepths, depth) {
			group = append(group, &item{
				name: fmt.Sprintf("start/depth=%d/image=%d", depth, sz.ImageFiles), unit: "ns/op", group: "mount",
				needInodes: needInodes, needBytes: needBytes, imageLayers: layers, setup: setup,
				run: func(b *driver) (float64, error) {
					top, err := b.stack(depth)
					if err != nil {
						return 0, err
					}
					return containerStart(b, top)
				},
			})
		}
		if slices.Contains(sz.StatDepths, depth) {
			group = append(group, &item{
				name: fmt.Sprintf("stat/depth=%d", depth), unit: "ns/op", group: "stat",
				needInodes: needInodes, needBytes: needBytes, imageLayers: layers, setup: setup,
				run: func(b *driver) (float64, error) {
					return throughTop(b, depth, func(path string) error {
						var st unix.Stat_t
						return unix.Stat(path, &st)
					})
				},
			}, &item{
				name: fmt.Sprintf("open/depth=%d", depth), unit: "ns/op", group: "stat",
				setup: setup,
				run: func(b *driver) (float64, error) {
					return throughTop(b, depth, func(path string) error {
						fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
						if err == nil {
							unix.Close(fd)
						}
						return err
					})
				},
			})
		}
		group[len(group)-1].teardown = func(b *driver) { b.removeStack(depth) }
		items = append(items, group...)
	}
	for _, size := range sz.CopyUpSizes {
		size := size
		key := fmt.Sprintf("copyup-%d", size)
		samples := 0
		if size >= 16<<20 {
			samples = 1
		}
		first := &item{
			name: "copyup/size=" + humanSize(size), unit: "ns/op", group: "copyup", samples: samples,
			companion: "write-after-copyup/size=" + humanSize(size), companionUnit: "ns/op",
			needBytes: uint64(size) * 3,
			setup: func(b *driver) error {
				base := b.id("base")
				if err := b.d.Create(base, ""); err != nil {
					return err
				}
				b.scratch[key] = []string{base}
				root, err := b.d.Get(base)
				if err != nil {
					return err
				}
				defer b.d.Put(base)
				return writeFile(filepath.Join(root, "file"), size)
			},
			run: func(b *driver) (float64, error) {
				base := asIDs(b.scratch[key])[0]
				child := b.id("c")
				// From the container layer's create to the end of the
				// first write: vfs copies the file at create, overlay
				// when the file is opened for writing.
				start := time.Now()
				if err := b.d.Create(child, base); err != nil {
					return 0, err
				}
				defer b.d.Remove(child)
				root, err := b.d.Get(child)
				if err != nil {
					return 0, err
				}
				defer b.d.Put(child)
				f, err := os.OpenFile(filepath.Join(root, "file"), os.O_WRONLY, 0)
				if err != nil {
					return 0, err
				}
				defer f.Close()
				if _, err := f.WriteAt([]byte{'x'}, 0); err != nil {
					return 0, err
				}
				firstNs := float64(time.Since(start).Nanoseconds())
				// The second write is the control, recorded by the
				// companion.
				start = time.Now()
				if _, err := f.WriteAt([]byte{'y'}, 1); err != nil {
					return 0, err
				}
				b.scratch["write-after-copyup/size="+humanSize(size)] = float64(time.Since(start).Nanoseconds())
				return firstNs, nil
			},
			teardown: func(b *driver) { b.removeChain(asIDs(b.scratch[key])) },
		}
		items = append(items, first)
	}
	items = append(items, &item{
		name: fmt.Sprintf("smallfiles/n=%d", sz.SmallFiles), unit: "ns/file", group: "smallfiles",
		needInodes: uint64(sz.SmallFiles) * 2, needBytes: uint64(sz.SmallFiles) * 4096,
		setup: func(b *driver) error {
			ids, err := b.chain("", 2, true)
			b.scratch["smallfiles"] = ids
			return err
		},
		run: func(b *driver) (float64, error) {
			ids := asIDs(b.scratch["smallfiles"])
			top := ids[len(ids)-1]
			root, err := b.d.Get(top)
			if err != nil {
				return 0, err
			}
			defer b.d.Put(top)
			dir := filepath.Join(root, "small")
			if err := os.Mkdir(dir, 0o755); err != nil {
				return 0, err
			}
			defer os.RemoveAll(dir)
			start := time.Now()
			for i := 0; i < sz.SmallFiles; i++ {
				fd, err := unix.Open(filepath.Join(dir, strconv.Itoa(i)), unix.O_CREAT|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
				if err != nil {
					return 0, &os.PathError{Op: "create", Path: dir, Err: err}
				}
				unix.Write(fd, []byte("x"))
				unix.Close(fd)
			}
			for i := 0; i < sz.SmallFiles; i++ {
				if err := unix.Unlink(filepath.Join(dir, strconv.Itoa(i))); err != nil {
					return 0, &os.PathError{Op: "unlink", Path: dir, Err: err}
				}
			}
			return float64(time.Since(start).Nanoseconds()) / float64(sz.SmallFiles), nil
		},
		teardown: func(b *driver) { b.removeChain(asIDs(b.scratch["smallfiles"])) },
	})
	items = append(items, &item{
		name: fmt.Sprintf("readdir/entries=%d", sz.ReaddirSize), unit: "ns/op", group: "readdir",
		needInodes: uint64(sz.ReaddirSize) * 2,
		setup: func(b *driver) error {
			const layers = 10
			parent := ""
			var ids []string
			for l := 0; l < layers; l++ {
				id := b.id("r")
				if err := b.d.Create(id, parent); err != nil {
					return err
				}
				ids = append(ids, id)
				files := map[string][]byte{}
				for i := l; i < sz.ReaddirSize; i += layers {
					files[fmt.Sprintf("dir/e%05d", i)] = nil
				}
				if err := b.apply(id, parent, tarOf(files)); err != nil {
					b.scratch["readdir"] = ids
					return err
				}
				parent = id
			}
			b.scratch["readdir"] = ids
			return nil
		},
		run: func(b *driver) (float64, error) {
			ids := asIDs(b.scratch["readdir"])
			top := ids[len(ids)-1]
			root, err := b.d.Get(top)
			if err != nil {
				return 0, err
			}
			defer b.d.Put(top)
			return timed(3, func(int) error {
				entries, err := os.ReadDir(filepath.Join(root, "dir"))
				if err == nil && len(entries) != sz.ReaddirSize {
					err = fmt.Errorf("readdir merged %d entries, want %d", len(entries), sz.ReaddirSize)
				}
				return err
			})
		},
		teardown: func(b *driver) { b.removeChain(asIDs(b.scratch["readdir"])) },
	})
	// Inodes and bytes one layer costs on top of an image: a container
	// layer (Create) and an image layer (ApplyDiff of a one-file diff).
	for _, kind := range []string{"container", "image"} {
		kind := kind
		items = append(items, &item{
			name: fmt.Sprintf("inodes/%s-layer/image=%d", kind, sz.ImageFiles), unit: "inodes/layer", group: "inodes", samples: 1,
			needInodes: needInodes, needBytes: needBytes, imageLayers: func(*driver) int { return 1 },
			setup: imageSetup(sz.ImageFiles),
			run: func(b *driver) (float64, error) {
				in, by, err := layerCost(b, kind)
				b.scratch["bytes-"+kind] = by
				return in, err
			},
			teardown: func(b *driver) {},
		}, &item{
			name: fmt.Sprintf("bytes/%s-layer/image=%d", kind, sz.ImageFiles), unit: "B/layer", group: "bytes", samples: 1,
			run: func(b *driver) (float64, error) {
				v, ok := b.scratch["bytes-"+kind].(float64)
				if !ok {
					// The inodes item that measures both was skipped.
					return 0, errNoSample
				}
				return v, nil
			},
			teardown: func(b *driver) {
				if kind == "image" {
					b.removeChain(asIDs(b.scratch["image"]))
					delete(b.scratch, "image")
				}
			},
		})
	}
	return items
}

// image is the id of the image layer that imageSetup made.
func (b *driver) image() string { return asIDs(b.scratch["image"])[0] }

// imageFile is a file of imageTar's, in the image's bottom layer.
const imageFile = "usr/share/d000/f0"

// stack returns the top of an image of depth layers: the image and depth-1
// one-file layers on it, made on first use. The start, stat and open items
// of a depth share it.
func (b *driver) stack(depth int) (string, error) {
	key := fmt.Sprintf("stack-%d", depth)
	ids, ok := b.scratch[key].([]string)
	if !ok {
		var err error
		ids, err = b.chain(b.image(), depth-1, true)
		b.scratch[key] = ids
		if err != nil {
			return "", err
		}
	}
	if len(ids) == 0 {
		return b.image(), nil
	}
	return ids[len(ids)-1], nil
}

func (b *driver) removeStack(depth int) {
	key := fmt.Sprintf("stack-%d", depth)
	b.removeChain(asIDs(b.scratch[key]))
	delete(b.scratch, key)
}

// imageSetup makes the image the layer tests build on, once per driver; the
// last item of the suite removes it.
func imageSetup(files int) func(b *driver) error {
	return func(b *driver) error {
		if _, ok := b.scratch["image"]; ok {
			return nil
		}
		base := b.id("img")
		if err := b.d.Create(base, ""); err != nil {
			return err
		}
		b.scratch["image"] = []string{base}
		if err := b.apply(base, "", imageTar(files)); err != nil {
			return err
		}
		in, by, err := layerCost(b, "container")
		b.layerInodes, b.layerBytes = uint64(max(in, 0))+16, uint64(max(by, 0))+64<<10
		return err
	}
}

// layerCost measures the inodes and bytes a new layer on the image costs.
func layerCost(b *driver, kind string) (float64, float64, error) {
	base := b.image()
	// Only the scratch filesystem's counts are read, so only it is
	// flushed: a global sync would wait for every other filesystem's
	// dirty pages on a busy host.
	sync := func() {
		if fd, err := unix.Open(b.home, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
			unix.Syncfs(fd)
			unix.Close(fd)
		}
	}
	sync()
	i0, b0, err := usage(b.home)
	if err != nil {
		return 0, 0, err
	}
	id := b.id("cost")
	if err := b.d.Create(id, base); err != nil {
		return 0, 0, err
	}
	defer b.d.Remove(id)
	if kind == "image" {
		if err := b.apply(id, base, tarOf(map[string][]byte{"etc/added": []byte("x")})); err != nil {
			return 0, 0, err
		}
	}
	sync()
	i1, b1, err := usage(b.home)
	if err != nil {
		return 0, 0, err
	}
	return float64(int64(i1) - int64(i0)), float64(int64(b1) - int64(b0)), nil
}

// usage is the used inodes and bytes of the filesystem holding dir.
func usage(dir string) (inodes, bytes uint64, err error) {
	st, err := hostsys.Statfs(dir)
	if err != nil {
		return 0, 0, err
	}
	return st.Inodes - st.InodesFree, (st.Blocks - st.BlocksFree) * st.BlockSize, nil
}

// containerStart times a new container's first start on the image whose
// top layer is top: its layer is created and mounted. Unmount and removal
// are not timed.
func containerStart(b *driver, top string) (float64, error) {
	const ops = 2
	var total time.Duration
	for i := 0; i < ops; i++ {
		id := b.id("s")
		start := time.Now()
		if err := b.d.Create(id, top); err != nil {
			return 0, err
		}
		_, err := b.d.Get(id)
		total += time.Since(start)
		if err == nil {
			err = b.d.Put(id)
		}
		if rerr := b.d.Remove(id); err == nil {
			err = rerr
		}
		if err != nil {
			return 0, err
		}
	}
	return float64(total.Nanoseconds()) / ops, nil
}

// throughTop times fn on a file of the image's bottom layer, looked up
// through the top of the image of depth layers.
func throughTop(b *driver, depth int, fn func(path string) error) (float64, error) {
	top, err := b.stack(depth)
	if err != nil {
		return 0, err
	}
	root, err := b.d.Get(top)
	if err != nil {
		return 0, err
	}
	defer b.d.Put(top)
	path := filepath.Join(root, imageFile)
	return timed(1000, func(int) error { return fn(path) })
}

func asIDs(v any) []string {
	ids, _ := v.([]string)
	return ids
}

// writeFile writes size bytes with a small buffer: the 64 MiB copy-up test
// must not hold the file in memory.
func writeFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// freeSpace is the free bytes and inodes of the filesystem holding dir. A
// filesystem that allocates inodes as it goes (btrfs) reports 0 total and
// 0 free: it has no inode limit, and freeSpace says so with the largest
// count.
func freeSpace(dir string) (bytes, inodes uint64, err error) {
	st, err := hostsys.Statfs(dir)
	if err != nil {
		return 0, 0, err
	}
	inodes = st.InodesFree
	if st.Inodes == 0 {
		inodes = math.MaxUint64
	}
	return st.BlocksAvail * st.BlockSize, inodes, nil
}
