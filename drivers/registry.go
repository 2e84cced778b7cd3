package drivers

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Info is what graphprobe knows of a driver without running it. It is one
// of the two tables the rest of graphprobe derives from (the other is
// selector's release table): eligibility, daemon.json option ownership,
// prior state, the drivers command, completions and the man page read it.
type Info struct {
	Name string `json:"name"`
	// MinKernel is the oldest upstream kernel the driver runs on, "" if none.
	MinKernel string `json:"minKernel,omitempty"`
	// RefusedBackingFS are backing filesystems (Docker's names) the driver
	// refuses at init.
	RefusedBackingFS []string `json:"refusedBackingFS,omitempty"`
	// KernelRefusedFS are the backing filesystems among RefusedBackingFS
	// that the kernel itself refuses (overlay cannot put its upper layer
	// on them), so a test mount fails whatever dockerd checks by name.
	KernelRefusedFS []string `json:"-"`
	// RequiredBackingFS is the one backing filesystem the driver needs
	// (btrfs, zfs), "" if any will do.
	RequiredBackingFS string `json:"requiredBackingFS,omitempty"`
	// AddedIn is the first Docker release that ships the driver.
	AddedIn string `json:"addedIn"`
	// RemovedIn is the first Docker release without it, "" while shipped.
	RemovedIn string `json:"removedIn,omitempty"`
	// Snapshotter is the containerd snapshotter that takes its place in
	// the containerd image store, as storage-driver names it. Only
	// overlayfs and native qualify: dockerd 29 reads the names it also has
	// as graph drivers (fuse-overlayfs, btrfs, zfs) as those graph drivers
	// (seen with dockerd 29.7.2), and aufs and devicemapper have none.
	Snapshotter string `json:"snapshotter,omitempty"`
	// SnapshotterAlias is a containerd snapshotter name that a user may
	// write in storage-driver and whose rules are this driver's, though
	// graphprobe never chooses it (containerd's devmapper needs a thin
	// pool configured in containerd, not in daemon.json).
	SnapshotterAlias string `json:"-"`
	// ForcesGraphDriverMode is true when the name in storage-driver puts
	// dockerd 29+ into graph-driver mode on its own (without
	// features.containerd-snapshotter): every graph driver dockerd 29
	// still has.
	ForcesGraphDriverMode bool `json:"forcesGraphDriverMode,omitempty"`
	// OptionPrefixes are the storage-opt key prefixes the driver owns;
	// dockerd hands every storage-opt to the driver in use, which refuses
	// keys it does not know ("overlay2: unknown option dm.basesize").
	OptionPrefixes []string `json:"optionPrefixes"`
	// OptionKeys are bare storage-opt keys the driver owns (vfs: size).
	OptionKeys []string `json:"optionKeys,omitempty"`
	// Fact is the probe fact (probe.Fact*) that says whether the host can
	// run the driver, "" when it always can.
	Fact string `json:"fact,omitempty"`
	// PriorDir is the directory under the data-root whose entries are the
	// driver's images and containers: its own name, except vfs, which
	// dockerd makes (empty) as soon as vfs starts, so only vfs/dir counts.
	PriorDir string `json:"priorDir"`
	// Requires says what the host needs, for people.
	Requires string `json:"requires"`
	// Implemented is true when graphprobe can initialise and benchmark it.
	Implemented bool `json:"implemented"`
}

// overlayRefused are the backing filesystems overlay and overlay2 refuse
// by name (daemon/graphdriver/overlayutils), and of those the ones the
// kernel refuses as overlay's upper layer.
var (
	overlayRefused       = []string{"aufs", "ecryptfs", "nfs", "overlayfs", "zfs"}
	overlayKernelRefused = []string{"aufs", "nfs", "overlayfs"}
)

// known lists every graph driver Docker shipped on Linux since 17.03, in
// Docker 23.0's priority order (the last release that shipped them all):
// the drivers still shipped are then in the newest release's order.
var known = []Info{
	{
		Name: "overlay2", MinKernel: "4.0", AddedIn: "1.12", Snapshotter: "overlayfs", ForcesGraphDriverMode: true,
		RefusedBackingFS: overlayRefused, KernelRefusedFS: overlayKernelRefused,
		OptionPrefixes: []string{"overlay2."}, Fact: "overlay", PriorDir: "overlay2",
		Requires: "overlay with multiple lower layers (kernel 4.0, or RHEL/CentOS 7.3 3.10.0-514), a data-root with d_type",
	},
	{
		Name: "fuse-overlayfs", MinKernel: "4.18", AddedIn: "20.10", ForcesGraphDriverMode: true,
		OptionPrefixes: []string{"fuse-overlayfs."}, Fact: "fuse-overlayfs", PriorDir: "fuse-overlayfs",
		Requires: "the fuse-overlayfs binary, /dev/fuse, kernel 4.18",
	},
	{
		Name: "btrfs", AddedIn: "1.0", RequiredBackingFS: "btrfs", ForcesGraphDriverMode: true,
		OptionPrefixes: []string{"btrfs."}, Fact: "btrfs", PriorDir: "btrfs",
		Requires: "the data-root on btrfs",
	},
	{
		Name: "zfs", AddedIn: "1.7", RequiredBackingFS: "zfs", ForcesGraphDriverMode: true,
		OptionPrefixes: []string{"zfs."}, Fact: "zfs", PriorDir: "zfs",
		Requires: "the data-root on a zfs dataset, /dev/zfs and the zfs utilities",
	},
	{
		Name: "aufs", AddedIn: "0.7", RemovedIn: "24.0",
		RefusedBackingFS: []string{"aufs", "btrfs", "ecryptfs"},
		OptionPrefixes:   []string{"aufs."}, Fact: "aufs", PriorDir: "aufs",
		Requires: "the aufs module (Ubuntu and Debian kernels only)",
	},
	{
		Name: "overlay", MinKernel: "3.18", AddedIn: "1.4", RemovedIn: "24.0", Snapshotter: "overlayfs",
		RefusedBackingFS: overlayRefused, KernelRefusedFS: overlayKernelRefused,
		OptionPrefixes: []string{"overlay."}, Fact: "overlay", PriorDir: "overlay",
		Requires: "overlay (kernel 3.18), a data-root with d_type",
	},
	{
		Name: "devicemapper", AddedIn: "0.7", RemovedIn: "25.0", SnapshotterAlias: "devmapper",
		OptionPrefixes: []string{"dm."}, Fact: "devicemapper", PriorDir: "devicemapper",
		Requires: "device-mapper thin provisioning (dm_thin_pool), /dev/mapper/control",
	},
	{
		Name: "vfs", AddedIn: "0.7", Snapshotter: "native", ForcesGraphDriverMode: true,
		OptionPrefixes: []string{"vfs."}, OptionKeys: []string{"size"}, PriorDir: "vfs/dir",
		Requires: "nothing: it copies every layer in full, slow and space-hungry",
	},
}

var (
	mu    sync.Mutex
	inits = map[string]InitFunc{}
)

// Register makes a driver's init available; called from the driver
// package's init function.
func Register(name string, fn InitFunc) {
	// Checked before taking mu: Lookup takes it too.
	if _, ok := Lookup(name); !ok {
		panic("drivers: Register of unknown driver " + name)
	}
	mu.Lock()
	defer mu.Unlock()
	if _, ok := inits[name]; ok {
		panic("drivers: Register called twice for " + name)
	}
	inits[name] = fn
}

// Lookup returns the registry entry of name.
func Lookup(name string) (Info, bool) {
	for _, i := range known {
		if i.Name == name {
			i.RefusedBackingFS = slices.Clone(i.RefusedBackingFS)
			i.KernelRefusedFS = slices.Clone(i.KernelRefusedFS)
			i.OptionPrefixes = slices.Clone(i.OptionPrefixes)
			i.OptionKeys = slices.Clone(i.OptionKeys)
			mu.Lock()
			_, i.Implemented = inits[name]
			mu.Unlock()
			return i, true
		}
	}
	return Info{}, false
}

// All returns every known driver, in Docker 23.0's priority order, so that
// the ones still shipped are in the newest release's order (selector's
// tests hold the two tables to that).
func All() []Info {
	out := make([]Info, 0, len(known))
	for _, k := range known {
		i, _ := Lookup(k.Name)
		out = append(out, i)
	}
	return out
}

// Names returns the known driver names, sorted.
func Names() []string {
	var n []string
	for _, k := range known {
		n = append(n, k.Name)
	}
	sort.Strings(n)
	return n
}

// Init initialises the named driver in home.
func Init(name, home string, opts Options) (Driver, error) {
	mu.Lock()
	fn, ok := inits[name]
	mu.Unlock()
	if !ok {
		if _, known := Lookup(name); known {
			return nil, NotSupported(name, ErrNotSupported, "", "graphprobe has no implementation of %s to initialise", name)
		}
		return nil, fmt.Errorf("unknown storage driver %q", name)
	}
	return fn(home, opts)
}

// OptionOwner names the driver whose storage-opt prefix key (lower-cased)
// carries, "" if none does; for messages about another driver's option.
func OptionOwner(key string) string {
	for _, i := range known {
		for _, p := range i.OptionPrefixes {
			if strings.HasPrefix(key, p) {
				return i.Name
			}
		}
	}
	return ""
}

// OwnsOption reports whether the storage-opt key (lower-cased, trimmed)
// is one of driver's own. Unknown drivers own nothing.
func OwnsOption(driver, key string) bool {
	i, ok := Lookup(driver)
	if !ok {
		return false
	}
	for _, p := range i.OptionPrefixes {
		if strings.HasPrefix(key, p) && len(key) > len(p) {
			return true
		}
	}
	return slices.Contains(i.OptionKeys, key)
}

// ForStorageDriver maps a storage-driver value to the driver whose rules
// decide whether it can run: a snapshotter name maps to its graph driver
// twin (the first in table order: overlayfs is overlay2's, not overlay's);
// any other name maps to itself.
func ForStorageDriver(name string) string {
	for _, i := range known {
		if name != "" && (i.Snapshotter == name || i.SnapshotterAlias == name) {
			return i.Name
		}
	}
	return name
}

// PriorDirs returns every driver's prior-state dir (Info.PriorDir), in the
// order of the drivers' names, for probe.Options.PriorDirs.
func PriorDirs() []string {
	var out []string
	for _, n := range Names() {
		i, _ := Lookup(n)
		out = append(out, i.PriorDir)
	}
	return out
}
