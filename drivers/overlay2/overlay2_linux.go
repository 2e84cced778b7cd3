package overlay2

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/archive"
	"github.com/graphprobe/graphprobe/drivers/internal/ovl"
)

// Name is the driver's name as Docker spells it.
const Name = "overlay2"

func init() { drivers.Register(Name, Init) }

// Driver is an initialised overlay2 home.
type Driver struct {
	// Layers: the overlay2 layout, its mounts and its diffs.
	*ovl.Layers
	// kernel mounts the stacks in this process; tests set its Method.
	kernel    *ovl.Kernel
	backingFS string
	metacopy  bool
	// options go into every mount's data ("index=off").
	options []string

	diffOnce sync.Once
	// naiveReason is why native diff cannot be used, "" when it can.
	naiveReason string
	// forceNaive makes Diff and ApplyDiff take the naive path (tests).
	forceNaive bool
}

// Init checks that the host can run overlay2 in home and prepares the home.
func Init(home string, opts drivers.Options) (drivers.Driver, error) {
	o, err := parseOptions(opts.StorageOpts)
	if err != nil {
		return nil, err
	}
	// Two lowers: overlay2 needs multiple lower layers.
	host, err := ovl.CheckHost(Name, home, 2, opts.WarnNoDType)
	if err != nil {
		return nil, err
	}
	if o.size != "" {
		if err := ovl.CheckProjectQuota(Name, host.Dir, host.BackingFS); err != nil {
			return nil, fmt.Errorf("%s: storage option overlay2.size=%s: %w", Name, o.size, err)
		}
	}
	metacopy, err := ovl.UsingMetacopy(host.Dir, host.Options)
	if err != nil {
		return nil, fmt.Errorf("%s: check for metacopy: %w", Name, err)
	}
	layout := ovl.Layout{Home: home}
	if err := layout.Init(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	d := &Driver{
		kernel:    &ovl.Kernel{Method: ovl.Auto, Mounter: opts.Mounter},
		backingFS: host.BackingFS, metacopy: metacopy, options: host.Options,
	}
	// A diff on a layer's own parent is its diff/ as it is, in and out,
	// where the kernel allows native diff.
	d.Layers = ovl.NewLayers(ovl.LayersConfig{
		Driver: Name, Layout: layout, Backend: d.kernel, Options: host.Options, Sweep: opts.Mounter == nil,
		Whiteouts: archive.WhiteoutOverlay, ApplyDirect: d.NativeDiff, DiffDirect: d.NativeDiff,
	})
	return d, nil
}

// options are the storage options overlay2 was given.
type options struct {
	// size is overlay2.size: a per-container size limit.
	size string
}

// parseOptions accepts the storage options dockerd accepts for overlay2.
func parseOptions(opts []string) (options, error) {
	var o options
	for _, opt := range opts {
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			return o, fmt.Errorf("%s: storage option %q: want key=value", Name, opt)
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "overlay2.override_kernel_check":
			// Ignored by dockerd since 19.03.7: the test mount decides.
			if _, err := strconv.ParseBool(v); err != nil {
				return o, fmt.Errorf("%s: storage option %s: %w", Name, opt, err)
			}
		case "overlay2.size":
			if _, err := drivers.ParseSize(v); err != nil {
				return o, fmt.Errorf("%s: storage option %s: %w", Name, opt, err)
			}
			o.size = v
		case "overlay2.mountopt":
			// Extra options for every container mount (nodev, ...):
			// accepted as dockerd accepts them; graphprobe's scratch
			// layers are mounted without them.
			if strings.TrimSpace(v) == "" {
				return o, fmt.Errorf("%s: storage option %s: empty mount options", Name, opt)
			}
		default:
			return o, fmt.Errorf("%s: unknown storage option %s", Name, k)
		}
	}
	return o, nil
}

func (d *Driver) Name() string { return Name }

// Status gives the rows `docker info` shows for overlay2.
func (d *Driver) Status() [][2]string {
	return [][2]string{
		{"Backing Filesystem", d.backingFS},
		{"Supports d_type", "true"},
		{"Using metacopy", strconv.FormatBool(d.metacopy)},
		{"Native Overlay Diff", strconv.FormatBool(d.NativeDiff())},
		{"userxattr", "false"},
	}
}

// NativeDiff reports whether Diff tars diff/ as it is. It is decided on
// first use, by a test mount in the home, as Docker does.
func (d *Driver) NativeDiff() bool {
	d.diffOnce.Do(func() {
		if err := ovl.NativeDiff(d.Home(), d.options); err != nil {
			d.naiveReason = err.Error()
		}
	})
	return d.naiveReason == "" && !d.forceNaive
}
