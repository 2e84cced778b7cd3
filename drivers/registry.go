package drivers

import (
	"fmt"
	"sort"
	"sync"
)

// Info is what graphprobe knows of a driver without running it.
type Info struct {
	Name string `json:"name"`
	// MinKernel is the oldest upstream kernel the driver runs on, "" if none.
	MinKernel string `json:"minKernel,omitempty"`
	// RefusedBackingFS are backing filesystems (Docker's names) the driver
	// refuses at init.
	RefusedBackingFS []string `json:"refusedBackingFS,omitempty"`
	// RequiredBackingFS is the one backing filesystem the driver needs
	// (btrfs, zfs), "" if any will do.
	RequiredBackingFS string `json:"requiredBackingFS,omitempty"`
	// AddedIn is the first Docker release that ships the driver.
	AddedIn string `json:"addedIn"`
	// RemovedIn is the first Docker release without it, "" while shipped.
	RemovedIn string `json:"removedIn,omitempty"`
	// Snapshotter is the containerd snapshotter that takes its place in
	// the containerd image store.
	Snapshotter string `json:"snapshotter,omitempty"`
	// Requires says what the host needs, for people.
	Requires string `json:"requires"`
	// Implemented is true when graphprobe can initialise and benchmark it.
	Implemented bool `json:"implemented"`
}

// known lists every graph driver Docker shipped on Linux since 17.03.
var known = []Info{
	{
		Name: "overlay2", MinKernel: "4.0", AddedIn: "1.12", Snapshotter: "overlayfs",
		RefusedBackingFS: []string{"aufs", "ecryptfs", "nfs", "overlayfs", "zfs"},
		Requires:         "overlay with multiple lower layers (kernel 4.0, or RHEL/CentOS 7.3 3.10.0-514), a data-root with d_type",
	},
	{
		Name: "fuse-overlayfs", MinKernel: "4.18", AddedIn: "20.10", Snapshotter: "fuse-overlayfs",
		Requires: "the fuse-overlayfs binary, /dev/fuse, kernel 4.18",
	},
	{
		Name: "btrfs", AddedIn: "1.0", Snapshotter: "btrfs", RequiredBackingFS: "btrfs",
		Requires: "the data-root on btrfs",
	},
	{
		Name: "zfs", AddedIn: "1.7", Snapshotter: "zfs", RequiredBackingFS: "zfs",
		Requires: "the data-root on a zfs dataset, /dev/zfs and the zfs utilities",
	},
	{
		Name: "aufs", AddedIn: "0.7", RemovedIn: "24.0", Snapshotter: "aufs",
		RefusedBackingFS: []string{"aufs", "btrfs", "ecryptfs"},
		Requires:         "the aufs module (Ubuntu and Debian kernels only)",
	},
	{
		Name: "overlay", MinKernel: "3.18", AddedIn: "1.4", RemovedIn: "24.0", Snapshotter: "overlayfs",
		RefusedBackingFS: []string{"aufs", "ecryptfs", "nfs", "overlayfs", "zfs"},
		Requires:         "overlay (kernel 3.18), a data-root with d_type",
	},
	{
		Name: "devicemapper", AddedIn: "0.7", RemovedIn: "25.0", Snapshotter: "devmapper",
		Requires: "device-mapper thin provisioning (dm_thin_pool), /dev/mapper/control",
	},
	{
		Name: "vfs", AddedIn: "0.7", Snapshotter: "native",
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
			i.RefusedBackingFS = append([]string(nil), i.RefusedBackingFS...)
			mu.Lock()
			_, i.Implemented = inits[name]
			mu.Unlock()
			return i, true
		}
	}
	return Info{}, false
}

// All returns every known driver, in the order of the newest Docker's
// priority list followed by the removed ones.
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
