package selector

import (
	"strings"
	"testing"

	_ "github.com/graphprobe/graphprobe/drivers" // registry
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/version"
)

// host is a compact description of a probe report.
type host struct {
	release   string
	fs        string
	dtype     *bool
	overlay   *bool
	multi     *bool
	multiHow  probe.Method
	aufs      probe.ModuleState
	fuse      bool
	btrfs     bool
	devmapper bool
	prior     []string
}

var yes, no = probe.Bool(true), probe.Bool(false)

func (h host) report() *probe.Report {
	r := &probe.Report{
		SchemaVersion: 1,
		Kernel:        probe.Kernel{Release: h.release},
		DataRoot:      probe.DataRoot{Path: "/var/lib/docker", Filesystem: h.fs, DType: h.dtype},
		Facts:         map[string]probe.Fact{},
		PriorDrivers:  h.prior,
	}
	if kv, err := version.ParseKernel(h.release); err == nil {
		r.Kernel.Version = kv.String()
	}
	method := h.multiHow
	if method == "" {
		method = probe.MethodMountTest
	}
	r.Facts[probe.FactOverlay] = probe.Fact{Supported: h.overlay, Method: probe.MethodFile, Module: probe.ModuleBuiltin}
	r.Facts[probe.FactMultiLowerdir] = probe.Fact{Supported: h.multi, Method: method}
	r.Facts[probe.FactDType] = probe.Fact{Supported: h.dtype, Method: probe.MethodMountTest}
	aufs := probe.Fact{Method: probe.MethodFile, Module: h.aufs}
	switch {
	case h.aufs.Available():
		aufs.Supported = yes
	case h.aufs == probe.ModuleAbsent || h.aufs == "":
		aufs.Supported = no
		aufs.Module = probe.ModuleAbsent
	}
	r.Facts[probe.FactAufs] = aufs
	r.Facts[probe.FactFuseOverlayfs] = probe.Fact{Supported: probe.Bool(h.fuse), Method: probe.MethodFile}
	r.Facts[probe.FactBtrfs] = probe.Fact{Supported: probe.Bool(h.btrfs), Method: probe.MethodFile}
	r.Facts[probe.FactZfs] = probe.Fact{Supported: no, Method: probe.MethodFile}
	r.Facts[probe.FactDevicemapper] = probe.Fact{Supported: probe.Bool(h.devmapper), Method: probe.MethodFile}
	return r
}

var (
	modernExt4 = host{release: "5.15.0-91-generic", fs: "extfs", dtype: yes, overlay: yes, multi: yes, fuse: true}
	btrfsRoot  = host{release: "6.5.0", fs: "btrfs", dtype: yes, overlay: yes, multi: yes, btrfs: true}
	xenial     = host{release: "4.4.0-210-generic", fs: "extfs", dtype: yes, overlay: yes, multi: yes, aufs: probe.ModuleLoadable}
	trusty     = host{release: "3.13.0-170-generic", fs: "extfs", dtype: yes, overlay: no, multi: no, aufs: probe.ModuleLoadable, devmapper: true}
	centos7    = host{release: "3.10.0-1160.el7.x86_64", fs: "xfs", dtype: yes, overlay: yes, multi: yes, multiHow: probe.MethodInferred, devmapper: true}
	centos72   = host{release: "3.10.0-327.el7.x86_64", fs: "xfs", dtype: no, overlay: yes, multi: no, devmapper: true}
	dind       = host{release: "5.15.0-91-generic", fs: "overlayfs", dtype: yes, overlay: yes, multi: yes, fuse: true}
	noDType    = host{release: "6.1.0-26-amd64", fs: "extfs", dtype: no, overlay: yes, multi: yes}
)

func with(h host, f func(*host)) host { f(&h); return h }

func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		host    host
		docker  string
		opts    Options
		driver  string // graph driver chosen
		written string // storage-driver value, defaults to driver
		store   string
		optsOut []string
		refusal string
		reason  string // substring of the reason
	}{
		{name: "modern ext4, 20.10", host: modernExt4, docker: "20.10.24", driver: "overlay2", store: StoreGraphDriver, reason: "priority order"},
		{name: "modern ext4, 29 uses the containerd store", host: modernExt4, docker: "29.0.0", driver: "overlay2", written: "overlayfs", store: StoreContainerd},
		{name: "modern ext4, 29, policy keeps graph drivers", host: modernExt4, docker: "29.0.0", opts: Options{ImageStore: StoreGraphDriver}, driver: "overlay2", store: StoreGraphDriver},
		{name: "modern ext4, 29, prior overlay2 keeps graph drivers", host: with(modernExt4, func(h *host) { h.prior = []string{"overlay2"} }), docker: "29.0.0", driver: "overlay2", store: StoreGraphDriver, reason: "prior state"},
		{name: "modern ext4, 29, configured overlay2 stays a graph driver", host: modernExt4, docker: "29.0.0", opts: Options{Configured: Configured{StorageDriver: "overlay2"}}, driver: "overlay2", store: StoreGraphDriver, reason: "already configured"},
		{name: "btrfs root, 20.10 picks btrfs first", host: btrfsRoot, docker: "20.10.24", driver: "btrfs", store: StoreGraphDriver},
		{name: "btrfs root, 23.0 prefers overlay2", host: btrfsRoot, docker: "23.0.6", driver: "overlay2", store: StoreGraphDriver},
		{name: "xenial, 17.03 picks aufs", host: xenial, docker: "17.03.2", driver: "aufs"},
		{name: "xenial, 17.09 picks overlay2", host: xenial, docker: "17.09.1", driver: "overlay2"},
		{name: "xenial, 24.0 picks overlay2", host: xenial, docker: "24.0.7", driver: "overlay2"},
		{name: "trusty, 17.03 picks aufs", host: trusty, docker: "17.03.2", driver: "aufs"},
		{name: "trusty, 19.03 picks aufs over overlay", host: trusty, docker: "19.03.15", driver: "aufs"},
		{name: "trusty, 24.0 falls to devicemapper", host: trusty, docker: "24.0.7", driver: "devicemapper"},
		{name: "trusty, 25.0 falls to vfs", host: trusty, docker: "25.0.3", driver: "vfs"},
		{name: "centos 7.9, 17.03 needs override_kernel_check", host: centos7, docker: "17.03.2", driver: "overlay2", optsOut: []string{"overlay2.override_kernel_check=true"}},
		{name: "centos 7.9, 17.06 needs override_kernel_check", host: centos7, docker: "17.06.2", driver: "overlay2", optsOut: []string{"overlay2.override_kernel_check=true"}},
		{name: "centos 7.9, 18.09 tests instead", host: centos7, docker: "18.09.9", driver: "overlay2", optsOut: []string{}},
		{name: "centos 7.9, 24.0 never gets override_kernel_check", host: centos7, docker: "24.0.7", driver: "overlay2", optsOut: []string{}},
		{name: "centos 7.2 xfs ftype=0 falls to devicemapper", host: centos72, docker: "19.03.15", driver: "devicemapper"},
		{name: "dind on overlayfs, 20.10 uses fuse-overlayfs", host: dind, docker: "20.10.24", driver: "fuse-overlayfs"},
		{name: "dind on overlayfs without fuse, 20.10 falls to vfs", host: with(dind, func(h *host) { h.fuse = false }), docker: "20.10.24", driver: "vfs"},
		{name: "dind on overlayfs, 29 runs the fuse-overlayfs graph driver", host: dind, docker: "29.0.0", driver: "fuse-overlayfs", written: "fuse-overlayfs", store: StoreGraphDriver, reason: "overlayfs snapshotter, which fails here"},
		{name: "dind on overlayfs without fuse, 29 uses the native snapshotter", host: with(dind, func(h *host) { h.fuse = false }), docker: "29.0.0", driver: "vfs", written: "native", store: StoreContainerd},
		{name: "no d_type, 29 keeps vfs in graph-driver mode", host: noDType, docker: "29.0.0", driver: "vfs", written: "vfs", store: StoreGraphDriver, reason: "containerd image store cannot start"},
		{name: "no d_type, containerd store asked for", host: noDType, docker: "29.0.0", opts: Options{ImageStore: StoreContainerd}, reason: "was asked for"},
		{name: "prior vfs data would be hidden", host: with(modernExt4, func(h *host) { h.prior = []string{"vfs"} }), docker: "25.0.3", refusal: "prior-state"},
		{name: "prior vfs data, vfs chosen", host: with(modernExt4, func(h *host) { h.prior = []string{"vfs"} }), docker: "25.0.3", opts: Options{Driver: "vfs"}, driver: "vfs"},
		{name: "prior vfs data, forced", host: with(modernExt4, func(h *host) { h.prior = []string{"vfs"} }), docker: "25.0.3", opts: Options{Force: true}, driver: "overlay2"},
		{name: "containerd store switched on over overlay2 data", host: with(modernExt4, func(h *host) { h.prior = []string{"overlay2"} }), docker: "28.5.2", opts: Options{Configured: Configured{ContainerdSnapshotter: boolPtr(true)}}, refusal: "prior-state"},
		{name: "no d_type, 25 falls to vfs", host: noDType, docker: "25.0.3", driver: "vfs"},
		{name: "no d_type, 17.03 only warns and runs overlay2", host: noDType, docker: "17.03.2", driver: "overlay2"},
		{name: "no d_type, 17.12 refuses it", host: noDType, docker: "17.12.1", driver: "vfs"},
		{name: "prior aufs after the module went", host: with(xenial, func(h *host) { h.aufs = probe.ModuleAbsent; h.prior = []string{"aufs"} }), docker: "20.10.24", refusal: "prior-state"},
		{name: "prior aufs, forced", host: with(xenial, func(h *host) { h.aufs = probe.ModuleAbsent; h.prior = []string{"aufs"} }), docker: "20.10.24", opts: Options{Force: true}, driver: "overlay2"},
		{name: "prior aufs on docker 24", host: with(xenial, func(h *host) { h.prior = []string{"aufs"} }), docker: "24.0.7", refusal: "prior-state"},
		{name: "prior aufs kept on 20.10", host: with(xenial, func(h *host) { h.prior = []string{"aufs"} }), docker: "20.10.24", driver: "aufs", reason: "prior state"},
		{name: "several prior drivers", host: with(modernExt4, func(h *host) { h.prior = []string{"overlay2", "aufs"} }), docker: "20.10.24", refusal: "several-prior"},
		{name: "several prior drivers, one removed in 25", host: with(modernExt4, func(h *host) { h.prior = []string{"overlay2", "aufs"} }), docker: "25.0.3", driver: "overlay2", reason: "prior state"},
		{name: "prior overlay only, docker 24", host: with(modernExt4, func(h *host) { h.prior = []string{"overlay"} }), docker: "24.0.7", refusal: "prior-state"},
		{name: "several prior drivers, forced", host: with(modernExt4, func(h *host) { h.prior = []string{"overlay2", "aufs"} }), docker: "20.10.24", opts: Options{Force: true}, driver: "overlay2"},
		{name: "--driver vfs", host: modernExt4, docker: "20.10.24", opts: Options{Driver: "vfs"}, driver: "vfs", reason: "--driver"},
		{name: "--driver vfs over prior overlay2", host: with(modernExt4, func(h *host) { h.prior = []string{"overlay2"} }), docker: "20.10.24", opts: Options{Driver: "vfs"}, refusal: "prior-state"},
		{name: "--driver vfs over prior overlay2, forced", host: with(modernExt4, func(h *host) { h.prior = []string{"overlay2"} }), docker: "20.10.24", opts: Options{Driver: "vfs", Force: true}, driver: "vfs"},
		{name: "--driver aufs on 24 fails", host: xenial, docker: "24.0.7", opts: Options{Driver: "aufs"}, driver: "", reason: "removed in Docker 24.0"},
		{name: "--driver overlay2 without d_type fails", host: noDType, docker: "20.10.24", opts: Options{Driver: "overlay2"}, driver: "", reason: "without d_type"},
		{name: "configured snapshotter name on 24 is rewritten", host: modernExt4, docker: "24.0.7", opts: Options{Configured: Configured{StorageDriver: "overlayfs"}}, driver: "overlay2", store: StoreGraphDriver, reason: `the configured storage-driver "overlayfs" is rewritten as "overlay2" (the graph driver's name) for the graph-driver image store that Docker 24.0.7 uses here; overlay2 can run here`},
		{name: "configured graph driver, policy asks for the containerd store", host: modernExt4, docker: "29.0.0", opts: Options{ImageStore: StoreContainerd, Configured: Configured{StorageDriver: "overlay2"}}, driver: "overlay2", written: "overlayfs", store: StoreContainerd, reason: `the configured storage-driver "overlay2" is rewritten as "overlayfs" (its containerd snapshotter's name) for the containerd image store asked for (imageStore containerd)`},
		{name: "configured graph driver, policy asks for the containerd store on 28", host: modernExt4, docker: "28.5.2", opts: Options{ImageStore: StoreContainerd, Configured: Configured{StorageDriver: "overlay2"}}, driver: "overlay2", written: "overlayfs", store: StoreContainerd, reason: "rewritten as \"overlayfs\""},
		{name: "configured graph driver, feature switched off for the graph-driver store", host: modernExt4, docker: "29.0.0", opts: Options{ImageStore: StoreGraphDriver, Configured: Configured{StorageDriver: "overlay2", ContainerdSnapshotter: boolPtr(true)}}, driver: "overlay2", store: StoreGraphDriver, reason: "features.containerd-snapshotter is set to false for the graph-driver image store asked for (imageStore graphdriver)"},
		{name: "configured driver kept", host: btrfsRoot, docker: "20.10.24", opts: Options{Configured: Configured{StorageDriver: "overlay2"}}, driver: "overlay2", reason: "already configured"},
		{name: "configured driver broken, no data", host: noDType, docker: "20.10.24", opts: Options{Configured: Configured{StorageDriver: "overlay2"}}, driver: "vfs"},
		{name: "configured driver broken, with data", host: with(noDType, func(h *host) { h.prior = []string{"overlay2"} }), docker: "20.10.24", opts: Options{Configured: Configured{StorageDriver: "overlay2"}}, refusal: "configured-driver"},
		{name: "policy priority", host: btrfsRoot, docker: "20.10.24", opts: Options{Priority: []string{"overlay2"}}, driver: "overlay2", reason: "policy"},
		{name: "policy excludes every driver that can run", host: modernExt4, docker: "25.0.3", opts: Options{Exclude: []string{"overlay2", "fuse-overlayfs", "vfs"}}, driver: "", reason: "the policy leaves no storage driver for Docker 25.0.3: overlay2, fuse-overlayfs and vfs can run on this host, but the policy excludes them or leaves them out of its priority list; allow one of them"},
		{name: "policy excludes the only driver that can run", host: noDType, docker: "25.0.3", opts: Options{Exclude: []string{"vfs"}}, driver: "", reason: "vfs can run on this host, but the policy excludes it or leaves it out of its priority list; allow it"},
		{name: "nothing runs, policy excludes nothing that could", host: noDType, docker: "25.0.3", opts: Options{Exclude: []string{"overlay2"}, Failed: map[string]string{"vfs": "mkdir: read-only file system"}}, driver: "", reason: "no storage driver can run on this host"},
		{name: "policy exclude", host: modernExt4, docker: "20.10.24", opts: Options{Exclude: []string{"overlay2"}}, driver: "fuse-overlayfs"},
		{name: "init failure moves on", host: modernExt4, docker: "20.10.24", opts: Options{Failed: map[string]string{"overlay2": "mount: invalid argument"}}, driver: "fuse-overlayfs"},
		{name: "29, prior fuse-overlayfs configured keeps graph mode", host: with(dind, func(h *host) { h.prior = []string{"fuse-overlayfs"} }), docker: "29.0.0", opts: Options{Configured: Configured{StorageDriver: "fuse-overlayfs"}}, driver: "fuse-overlayfs", store: StoreGraphDriver},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.host.report(), version.MustDocker(tt.docker), tt.opts)
			if tt.refusal != "" {
				if d.Refusal == nil || d.Refusal.Kind != tt.refusal {
					t.Fatalf("refusal = %+v, want kind %s (driver %q, reason %q)", d.Refusal, tt.refusal, d.Driver, d.Reason)
				}
				if d.Driver != "" {
					t.Errorf("driver = %q with a refusal", d.Driver)
				}
				return
			}
			if d.Refusal != nil {
				t.Fatalf("unexpected refusal %+v", d.Refusal)
			}
			if d.Driver != tt.driver {
				t.Fatalf("driver = %q (%s), want %q\n%s", d.Driver, d.Reason, tt.driver, dump(d))
			}
			written := tt.written
			if written == "" {
				written = tt.driver
			}
			if d.Driver != "" && d.StorageDriver != written {
				t.Errorf("storage-driver = %q, want %q", d.StorageDriver, written)
			}
			if tt.store != "" && d.ImageStore != tt.store {
				t.Errorf("image store = %q, want %q", d.ImageStore, tt.store)
			}
			if tt.optsOut != nil && strings.Join(d.StorageOpts, ",") != strings.Join(tt.optsOut, ",") {
				t.Errorf("storage-opts = %q, want %q", d.StorageOpts, tt.optsOut)
			}
			if tt.reason != "" && !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to mention %q", d.Reason, tt.reason)
			}
		})
	}
}

func TestDecideContainerdFeature(t *testing.T) {
	// dockerd 29 reads the name of a graph driver it has (fuse-overlayfs,
	// btrfs, zfs, overlay2, vfs) as that graph driver: no feature key is
	// needed, and none is written.
	d := Decide(with(dind, func(h *host) { h.prior = []string{"fuse-overlayfs"} }).report(), version.MustDocker("29.0.0"), Options{})
	if d.Driver != "fuse-overlayfs" || d.ImageStore != StoreGraphDriver {
		t.Fatalf("driver %q store %q", d.Driver, d.ImageStore)
	}
	if d.SetContainerdSnapshotter != nil {
		t.Fatalf("SetContainerdSnapshotter = %v, want unset", *d.SetContainerdSnapshotter)
	}
	d = Decide(btrfsRoot.report(), version.MustDocker("29.0.0"), Options{Priority: []string{"btrfs"}})
	if d.StorageDriver != "btrfs" || d.ImageStore != StoreGraphDriver || d.SetContainerdSnapshotter != nil {
		t.Fatalf("btrfs: %+v", d)
	}
	// overlay2 in the containerd store on 29: "overlayfs" alone does it.
	d = Decide(modernExt4.report(), version.MustDocker("29.0.0"), Options{})
	if d.SetContainerdSnapshotter != nil {
		t.Fatalf("SetContainerdSnapshotter = %v, want unset", *d.SetContainerdSnapshotter)
	}
}

func TestEligibilityReasons(t *testing.T) {
	tests := []struct {
		name, driver, docker string
		host                 host
		want                 string // substring of a reason
		hint                 string // substring of a hint
	}{
		{"xfs without d_type", "overlay2", "20.10.24", with(centos72, func(h *host) { h.multi = yes }), "without d_type", "ftype=1"},
		{"ext4 without d_type", "overlay2", "20.10.24", noDType, "without d_type", "tune2fs -O filetype"},
		{"old kernel", "overlay2", "20.10.24", with(modernExt4, func(h *host) { h.release = "3.19.0"; h.multi = no }), "multiple lower layers", ""},
		{"no aufs module", "aufs", "20.10.24", modernExt4, "aufs is not available", "aufs"},
		{"aufs removed", "aufs", "24.0.0", xenial, "removed in Docker 24.0", "overlay2"},
		{"overlay removed", "overlay", "24.0.0", xenial, "removed in Docker 24.0", ""},
		{"devicemapper removed", "devicemapper", "25.0.0", trusty, "removed in Docker 25.0", ""},
		{"fuse-overlayfs too new", "fuse-overlayfs", "19.03.15", dind, "20.10 and later", "upgrade Docker"},
		{"overlay on overlayfs", "overlay2", "20.10.24", dind, "cannot use overlayfs as overlay's upper layer", "fuse-overlayfs"},
		{"overlay on overlayfs, 19.03", "overlay2", "19.03.15", dind, "backing filesystem overlayfs is unsupported", "fuse-overlayfs"},
		{"aufs on btrfs", "aufs", "17.03.2", with(btrfsRoot, func(h *host) { h.aufs = probe.ModuleLoaded }), "backing filesystem btrfs", ""},
		{"btrfs not on btrfs", "btrfs", "20.10.24", with(modernExt4, func(h *host) {}), "", ""},
		{"overlay2 on old btrfs, 19.03", "overlay2", "19.03.15", with(btrfsRoot, func(h *host) { h.release = "4.4.0" }), "needs kernel 4.7", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := eligibility(tt.host.report(), version.MustDocker(tt.docker), tt.driver)
			if v.eligible {
				t.Fatalf("%s eligible, want rejected", tt.driver)
			}
			if !strings.Contains(strings.Join(v.reasons, "|"), tt.want) {
				t.Errorf("reasons = %q, want %q", v.reasons, tt.want)
			}
			if !strings.Contains(strings.Join(v.hints, "|"), tt.hint) {
				t.Errorf("hints = %q, want %q", v.hints, tt.hint)
			}
		})
	}
}

func TestParseDockerVersion(t *testing.T) {
	for in, want := range map[string]string{
		"20.10.24": "20.10.24", "17.03": "17.03.0", "17.03.2-ce": "17.03.2", "v24.0.7": "24.0.7",
		"25.0.3": "25.0.3", "29": "29.0.0", "20.10.24+dfsg1": "20.10.24",
	} {
		v, err := ParseDockerVersion(in)
		if err != nil || v.String() != want {
			t.Errorf("ParseDockerVersion(%q) = %v, %v; want %s", in, v, err, want)
		}
	}
	for in, want := range map[string]string{
		"":        `parse docker version "": want MAJOR[.MINOR[.PATCH]], such as 20.10.24`,
		"latest":  `parse docker version "latest": want MAJOR[.MINOR[.PATCH]], such as 20.10.24`,
		"1.13.1":  "docker version 1.13.1: graphprobe knows Docker 17.03 and later",
		"20.10.x": `parse docker version "20.10.x": want MAJOR[.MINOR[.PATCH]], such as 20.10.24`,
		"1.2.3.4": `parse docker version "1.2.3.4": want MAJOR[.MINOR[.PATCH]], such as 20.10.24`,
	} {
		if _, err := ParseDockerVersion(in); err == nil || err.Error() != want {
			t.Errorf("ParseDockerVersion(%q) err = %v, want %q", in, err, want)
		}
	}
}

func dump(d *Decision) string {
	var b strings.Builder
	for _, c := range d.Candidates {
		b.WriteString(c.Driver)
		if c.Eligible {
			b.WriteString(" eligible")
		}
		b.WriteString(": " + strings.Join(c.Reasons, "; ") + "\n")
	}
	return b.String()
}

func TestZfsBackingByRelease(t *testing.T) {
	// Docker before 20.10 refuses overlay2 on zfs by name; from 20.10 it
	// only tries a mount, which works on zfs 2.2 and later.
	zfs := host{release: "6.5.0", fs: "zfs", dtype: yes, overlay: yes, multi: yes}
	if v := eligibility(zfs.report(), version.MustDocker("19.03.15"), "overlay2"); v.eligible || !strings.Contains(strings.Join(v.reasons, "|"), "refuses it by name") {
		t.Errorf("19.03 on zfs: %+v", v)
	}
	if v := eligibility(zfs.report(), version.MustDocker("20.10.24"), "overlay2"); !v.eligible {
		t.Errorf("20.10 on zfs with a working test mount: %+v", v)
	}
	noMount := with(zfs, func(h *host) { h.multiHow = probe.MethodVersion })
	if v := eligibility(noMount.report(), version.MustDocker("25.0.3"), "overlay2"); !v.eligible || len(v.unverified) == 0 {
		t.Errorf("25 on zfs without a test mount: %+v, want eligible but unverified", v)
	}
	if v := eligibility(dind.report(), version.MustDocker("25.0.3"), "overlay2"); v.eligible || !strings.Contains(strings.Join(v.reasons, "|"), "upper layer") {
		t.Errorf("25 on overlayfs: %+v", v)
	}
}
