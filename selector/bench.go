package selector

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/graphprobe/graphprobe/drivers"
	"golang.org/x/sys/unix"
)

// Bench modes.
const (
	BenchQuick = "quick"
	BenchFull  = "full"
	BenchOff   = "off"
)

// BenchSizes are the sizes the suite uses; the policy may change them.
type BenchSizes struct {
	ChainLengths []int   // layer chain create
	MountDepths  []int   // mount+unmount against depth
	CopyUpSizes  []int64 // first-write copy-up
	SmallFiles   int     // creates and deletes
	StatDepths   []int   // stat/open through layers
	ReaddirSize  int     // entries merged across layers
	ImageFiles   int     // files of the image under the inode/bytes test
	Samples      int     // measured samples per item (after one warm-up)
}

// DefaultSizes are the suite's sizes for a mode. Full is the whole suite;
// quick keeps every kind of measurement at sizes that fit in about a second
// per driver on a disk where creating and removing a file costs a
// millisecond (the deep mount, the 64 MiB copy-up and the large file counts
// are full-only).
func DefaultSizes(mode string) BenchSizes {
	if mode == BenchFull {
		return BenchSizes{
			ChainLengths: []int{1, 8, 32},
			MountDepths:  []int{1, 20, 128},
			CopyUpSizes:  []int64{4 << 10, 1 << 20, 64 << 20},
			SmallFiles:   10000,
			StatDepths:   []int{1, 20},
			ReaddirSize:  1000,
			ImageFiles:   1000,
			Samples:      5,
		}
	}
	return BenchSizes{
		ChainLengths: []int{1, 8},
		MountDepths:  []int{1, 20},
		CopyUpSizes:  []int64{4 << 10, 1 << 20},
		SmallFiles:   200,
		StatDepths:   []int{1, 20},
		ReaddirSize:  200,
		ImageFiles:   200,
		Samples:      2,
	}
}

// benchItem is one measurement of the suite, run for every driver in turn.
type benchItem struct {
	name string
	unit string
	// weightKey groups items for the fastest strategy's weights
	// ("create", "mount", "copyup", "smallfiles", "stat", "readdir",
	// "inodes", "bytes").
	weightKey string
	// samples overrides the mode's sample count (1 for costly items).
	samples int
	// companion names a second result each run records in
	// scratch[companion] (the control write after a copy-up).
	companion     string
	companionUnit string
	// needs is the free space (bytes, inodes) the item needs.
	needBytes  uint64
	needInodes uint64
	setup      func(b *benchDriver) error
	run        func(b *benchDriver) (float64, error)
	teardown   func(b *benchDriver)
}

// benchDriver is one driver's state during a benchmark run.
type benchDriver struct {
	name    string
	d       drivers.Driver
	home    string
	next    int
	scratch map[string]any // per-item state
	notes   []string
	err     error
	start   time.Time
}

func (b *benchDriver) id(prefix string) string {
	b.next++
	return fmt.Sprintf("%s%06d", prefix, b.next)
}

// chain creates n empty layers on top of parent and returns their ids,
// bottom first. Each layer gets one small file so that the stack is real.
func (b *benchDriver) chain(parent string, n int, withFile bool) ([]string, error) {
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
func (b *benchDriver) apply(id, parent string, r io.ReadCloser) error {
	_, err := b.d.ApplyDiff(id, parent, r)
	r.Close()
	return err
}

// removeChain removes layers top first.
func (b *benchDriver) removeChain(ids []string) {
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

// suite builds the benchmark items for the sizes.
func suite(sz BenchSizes) []*benchItem {
	var items []*benchItem
	for _, n := range sz.ChainLengths {
		n := n
		items = append(items, &benchItem{
			name: fmt.Sprintf("create/layers=%d", n), unit: "ns/layer", weightKey: "create",
			needInodes: uint64(n) * 16,
			run: func(b *benchDriver) (float64, error) {
				start := time.Now()
				ids, err := b.chain("", n, false)
				el := time.Since(start)
				b.removeChain(ids)
				if err != nil {
					return 0, err
				}
				return float64(el.Nanoseconds()) / float64(n), nil
			},
		})
	}
	for _, depth := range sz.MountDepths {
		depth := depth
		key := fmt.Sprintf("mount-%d", depth)
		items = append(items, &benchItem{
			name: fmt.Sprintf("mount/depth=%d", depth), unit: "ns/op", weightKey: "mount",
			needInodes: uint64(depth) * 16,
			setup: func(b *benchDriver) error {
				ids, err := b.chain("", depth, true)
				b.scratch[key] = ids
				return err
			},
			run: func(b *benchDriver) (float64, error) {
				ids := b.scratch[key].([]string)
				top := ids[len(ids)-1]
				return timed(5, func(int) error {
					if _, err := b.d.Get(top); err != nil {
						return err
					}
					return b.d.Put(top)
				})
			},
			teardown: func(b *benchDriver) { b.removeChain(asIDs(b.scratch[key])) },
		})
	}
	for _, size := range sz.CopyUpSizes {
		size := size
		key := fmt.Sprintf("copyup-%d", size)
		samples := 0
		if size >= 16<<20 {
			samples = 1
		}
		first := &benchItem{
			name: "copyup/size=" + humanSize(size), unit: "ns/op", weightKey: "copyup", samples: samples,
			companion: "write-after-copyup/size=" + humanSize(size), companionUnit: "ns/op",
			needBytes: uint64(size) * 3,
			setup: func(b *benchDriver) error {
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
			run: func(b *benchDriver) (float64, error) {
				base := asIDs(b.scratch[key])[0]
				child := b.id("c")
				if err := b.d.Create(child, base); err != nil {
					return 0, err
				}
				defer b.d.Remove(child)
				root, err := b.d.Get(child)
				if err != nil {
					return 0, err
				}
				defer b.d.Put(child)
				// Overlay copies the file up when it is opened for
				// writing, so the open is part of the first write. The
				// second write is the control, recorded by the companion.
				start := time.Now()
				f, err := os.OpenFile(filepath.Join(root, "file"), os.O_WRONLY, 0)
				if err != nil {
					return 0, err
				}
				defer f.Close()
				if _, err := f.WriteAt([]byte{'x'}, 0); err != nil {
					return 0, err
				}
				firstNs := float64(time.Since(start).Nanoseconds())
				start = time.Now()
				if _, err := f.WriteAt([]byte{'y'}, 1); err != nil {
					return 0, err
				}
				b.scratch["write-after-copyup/size="+humanSize(size)] = float64(time.Since(start).Nanoseconds())
				return firstNs, nil
			},
			teardown: func(b *benchDriver) { b.removeChain(asIDs(b.scratch[key])) },
		}
		items = append(items, first)
	}
	items = append(items, &benchItem{
		name: fmt.Sprintf("smallfiles/n=%d", sz.SmallFiles), unit: "ns/file", weightKey: "smallfiles",
		needInodes: uint64(sz.SmallFiles) * 2, needBytes: uint64(sz.SmallFiles) * 4096,
		setup: func(b *benchDriver) error {
			ids, err := b.chain("", 2, true)
			b.scratch["smallfiles"] = ids
			return err
		},
		run: func(b *benchDriver) (float64, error) {
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
		teardown: func(b *benchDriver) { b.removeChain(asIDs(b.scratch["smallfiles"])) },
	})
	for _, depth := range sz.StatDepths {
		depth := depth
		key := fmt.Sprintf("stat-%d", depth)
		setup := func(b *benchDriver) error {
			if _, ok := b.scratch[key]; ok {
				return nil
			}
			ids, err := b.chain("", depth, true)
			b.scratch[key] = ids
			return err
		}
		items = append(items, &benchItem{
			name: fmt.Sprintf("stat/depth=%d", depth), unit: "ns/op", weightKey: "stat",
			setup: setup,
			run: func(b *benchDriver) (float64, error) {
				return throughTop(b, asIDs(b.scratch[key]), func(path string) error {
					var st unix.Stat_t
					return unix.Stat(path, &st)
				})
			},
		}, &benchItem{
			name: fmt.Sprintf("open/depth=%d", depth), unit: "ns/op", weightKey: "stat",
			setup: setup,
			run: func(b *benchDriver) (float64, error) {
				return throughTop(b, asIDs(b.scratch[key]), func(path string) error {
					fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
					if err == nil {
						unix.Close(fd)
					}
					return err
				})
			},
			teardown: func(b *benchDriver) { b.removeChain(asIDs(b.scratch[key])); delete(b.scratch, key) },
		})
	}
	items = append(items, &benchItem{
		name: fmt.Sprintf("readdir/entries=%d", sz.ReaddirSize), unit: "ns/op", weightKey: "readdir",
		needInodes: uint64(sz.ReaddirSize) * 2,
		setup: func(b *benchDriver) error {
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
		run: func(b *benchDriver) (float64, error) {
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
		teardown: func(b *benchDriver) { b.removeChain(asIDs(b.scratch["readdir"])) },
	})
	// Inodes and bytes one layer costs on top of an image: a container
	// layer (Create) and an image layer (ApplyDiff of a one-file diff).
	for _, kind := range []string{"container", "image"} {
		kind := kind
		items = append(items, &benchItem{
			name: fmt.Sprintf("inodes/%s-layer/image=%d", kind, sz.ImageFiles), unit: "inodes/layer", weightKey: "inodes", samples: 1,
			needInodes: uint64(sz.ImageFiles) * 4,
			setup:      imageSetup(sz.ImageFiles),
			run: func(b *benchDriver) (float64, error) {
				in, by, err := layerCost(b, kind)
				b.scratch["bytes-"+kind] = by
				return in, err
			},
			teardown: func(b *benchDriver) {},
		}, &benchItem{
			name: fmt.Sprintf("bytes/%s-layer/image=%d", kind, sz.ImageFiles), unit: "B/layer", weightKey: "bytes", samples: 1,
			run: func(b *benchDriver) (float64, error) {
				v, _ := b.scratch["bytes-"+kind].(float64)
				return v, nil
			},
			teardown: func(b *benchDriver) {
				if kind == "image" {
					b.removeChain(asIDs(b.scratch["image"]))
					delete(b.scratch, "image")
				}
			},
		})
	}
	return items
}

func imageSetup(files int) func(b *benchDriver) error {
	return func(b *benchDriver) error {
		if _, ok := b.scratch["image"]; ok {
			return nil
		}
		base := b.id("img")
		if err := b.d.Create(base, ""); err != nil {
			return err
		}
		b.scratch["image"] = []string{base}
		return b.apply(base, "", imageTar(files))
	}
}

// layerCost measures the inodes and bytes a new layer on the image costs.
func layerCost(b *benchDriver, kind string) (float64, float64, error) {
	base := asIDs(b.scratch["image"])[0]
	sync := func() { unix.Sync() }
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
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	return st.Files - st.Ffree, (st.Blocks - st.Bfree) * uint64(st.Bsize), nil
}

func throughTop(b *benchDriver, ids []string, fn func(path string) error) (float64, error) {
	top := ids[len(ids)-1]
	root, err := b.d.Get(top)
	if err != nil {
		return 0, err
	}
	defer b.d.Put(top)
	// layer000 lives in the bottom layer.
	path := filepath.Join(root, "layer000")
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

func humanSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// summarize turns samples into a result.
func summarize(name, unit string, samples []float64) BenchResult {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	r := BenchResult{Name: name, Unit: unit, Samples: len(s)}
	if len(s) == 0 {
		return r
	}
	r.Min, r.Max = s[0], s[len(s)-1]
	if len(s)%2 == 1 {
		r.Median = s[len(s)/2]
	} else {
		r.Median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if r.Median != 0 && len(s) > 1 {
		r.Spread = (r.Max - r.Min) / math.Abs(r.Median)
	}
	return r
}

// ErrNoSpace stops a benchmark on a filesystem too small for it.
var ErrNoSpace = errors.New("not enough free space for the benchmark")

// freeSpace is the free bytes and inodes of the filesystem holding dir. A
// filesystem that allocates inodes as it goes (btrfs) reports 0 total and
// 0 free: it has no inode limit, and freeSpace says so with the largest
// count.
func freeSpace(dir string) (bytes, inodes uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	inodes = st.Ffree
	if st.Files == 0 {
		inodes = math.MaxUint64
	}
	return st.Bavail * uint64(st.Bsize), inodes, nil
}

// benchLine formats a result as a Go benchmark line that benchstat reads.
func benchLine(driver string, r BenchResult, v float64) string {
	name := "Benchmark" + strings.ToUpper(r.Name[:1]) + r.Name[1:]
	parts := strings.SplitN(name, "/", 2)
	name = parts[0] + "/driver=" + driver
	if len(parts) > 1 {
		name += "/" + parts[1]
	}
	return fmt.Sprintf("%s 1 %.0f %s", name, v, r.Unit)
}
