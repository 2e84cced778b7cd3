package selector

import (
	"slices"
	"testing"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
	"github.com/graphprobe/graphprobe/version"
)

// TestTablesAgree holds the release table and drivers.Info to each other.
func TestTablesAgree(t *testing.T) {
	all := drivers.All()
	for i, r := range releases {
		if i > 0 && !releases[i-1].Since.Less(r.Since) {
			t.Errorf("row %s is not newer than row %s", r.Since, releases[i-1].Since)
		}
		if !r.Sample.IsZero() && ReleaseFor(r.Sample).Since != r.Since {
			t.Errorf("row %s: sample %s is governed by row %s", r.Since, r.Sample, ReleaseFor(r.Sample).Since)
		}
		if len(r.Priority) == 0 || r.Priority[len(r.Priority)-1] != "vfs" {
			t.Errorf("row %s: priority %v does not end with vfs, dockerd's last resort", r.Since, r.Priority)
		}
		for _, d := range r.Priority {
			if _, ok := drivers.Lookup(d); !ok {
				t.Errorf("row %s: priority names %s, which drivers.Info does not know", r.Since, d)
			}
			if ok, why := Ships(r.Since, d); !ok {
				t.Errorf("row %s: priority names %s, which it does not ship: %s", r.Since, d, why)
			}
		}
		for _, d := range all {
			shipped, _ := Ships(r.Since, d.Name)
			if shipped != slices.Contains(r.Priority, d.Name) {
				t.Errorf("row %s: ships %s = %v, but its priority is %v", r.Since, d.Name, shipped, r.Priority)
			}
		}
		if r.OverrideKernelCheckAllowed() && r.ContainerdStoreAvailable() {
			// Not a law of Docker, but of the releases modelled: 24.0 did both.
			t.Errorf("row %s: override_kernel_check allowed with the containerd store", r.Since)
		}
	}
	var shipped []string
	for _, d := range all {
		if d.RemovedIn == "" {
			shipped = append(shipped, d.Name)
		}
	}
	if last := releases[len(releases)-1]; !slices.Equal(last.Priority, shipped) {
		t.Errorf("drivers.All() lists the shipped drivers as %v, the newest priority is %v", shipped, last.Priority)
	}
	for _, d := range all {
		if r, ok := removedIn(d.Name); ok != (d.RemovedIn != "") || ok && r.Since.Line() != d.RemovedIn {
			t.Errorf("%s: drivers.Info says removed in %q, the release table %v %s", d.Name, d.RemovedIn, ok, r.Since)
		}
		added := version.MustDocker(d.AddedIn)
		if r, ok := addedIn(d.Name); ok && r.Since != added || !ok && !added.Less(OldestKnown) {
			t.Errorf("%s: drivers.Info says added in %s, the release table %v %s", d.Name, d.AddedIn, ok, r.Since)
		}
		if d.Snapshotter != "" && GraphDriverFor(d.Snapshotter) != d.Name && d.Name != "overlay" {
			t.Errorf("%s: snapshotter %s maps back to %s", d.Name, d.Snapshotter, GraphDriverFor(d.Snapshotter))
		}
		// dockerd 29 reads a name it has as a graph driver as that graph
		// driver: exactly the shipped drivers force graph-driver mode.
		shipped29, _ := Ships(NewestKnown, d.Name)
		if d.ForcesGraphDriverMode != shipped29 {
			t.Errorf("%s: forces graph-driver mode %v, shipped by the newest release %v", d.Name, d.ForcesGraphDriverMode, shipped29)
		}
		if d.Fact != "" && !slices.Contains(probeFacts, d.Fact) {
			t.Errorf("%s: fact %q is not a probe fact", d.Name, d.Fact)
		}
		if len(d.OptionPrefixes) == 0 || d.PriorDir == "" {
			t.Errorf("%s: no option prefix or prior-state dir", d.Name)
		}
		for _, fs := range d.KernelRefusedFS {
			if !slices.Contains(d.RefusedBackingFS, fs) {
				t.Errorf("%s: kernel-refused %s is not among the refused filesystems", d.Name, fs)
			}
		}
	}
}

var probeFacts = []string{probe.FactOverlay, probe.FactAufs, probe.FactFuseOverlayfs, probe.FactBtrfs, probe.FactZfs, probe.FactDevicemapper}

// TestEveryDriverHasARule: a registered driver without an eligibility
// rule would be rejected as unknown on every host.
func TestEveryDriverHasARule(t *testing.T) {
	for _, d := range drivers.All() {
		if _, ok := driverRules[d.Name]; !ok {
			t.Errorf("driver %s has no eligibility rule (driverRules)", d.Name)
		}
	}
	for n := range driverRules {
		if _, ok := drivers.Lookup(n); !ok {
			t.Errorf("eligibility rule for %s, which drivers.Info does not know", n)
		}
	}
}

func TestReleaseFor(t *testing.T) {
	for in, want := range map[string]string{
		"17.03.2": "17.03.0", "17.09.1": "17.09.0", "18.09.9": "17.12.0", "19.03.6": "17.12.0", "19.03.7": "19.03.7",
		"20.10.24": "20.10.0", "23.0.6": "23.0.0", "24.0.9": "24.0.0", "25.0.5": "25.0.0", "28.5.2": "25.0.0", "29.7.2": "29.0.0", "30.1.0": "29.0.0",
	} {
		if got := ReleaseFor(version.MustDocker(in)).Since.String(); got != want {
			t.Errorf("ReleaseFor(%s) = row %s, want %s", in, got, want)
		}
	}
	if got := ReleaseFor(version.Docker{}).Since; got != NewestKnown {
		t.Errorf("ReleaseFor(zero) = row %s, want the newest", got)
	}
	if !Newer(version.MustDocker("30.0")) || Newer(version.MustDocker("29.7.2")) {
		t.Error("Newer: 30.0 must be newer than any known, 29.7.2 not")
	}
	if got := LastShippedLine("24.0"); got != "23.0" {
		t.Errorf("LastShippedLine(24.0) = %s", got)
	}
	if got := LastShippedLine("25.0"); got != "24.0" {
		t.Errorf("LastShippedLine(25.0) = %s", got)
	}
}

// TestStorageRules: what daemonjson does with override_kernel_check is
// the table's row for each release, and the releases it names in its
// reasons are the rows where the rule changed.
func TestStorageRules(t *testing.T) {
	var vs []version.Docker
	for _, r := range releases {
		vs = append(vs, r.Since, r.Sample)
		if r.Since.Patch > 0 {
			vs = append(vs, version.Docker{Major: r.Since.Major, Minor: r.Since.Minor, Patch: r.Since.Patch - 1})
		}
	}
	for _, v := range vs {
		if v.IsZero() {
			continue
		}
		r := ReleaseFor(v)
		res := daemonjson.StorageOpts([]string{"overlay2.override_kernel_check=true"}, "overlay2", StorageRules(v), nil)
		if kept := len(res.Opts) == 1; kept != r.OverrideKernelCheckHonoured() {
			t.Errorf("%s: daemonjson keeps override_kernel_check %v, the table says honoured %v", v, kept, r.OverrideKernelCheckHonoured())
		}
	}
	rules := StorageRules(version.Docker{})
	if rules.KernelCheck != okcRefused {
		t.Errorf("the newest release's rule is %v, want refused", rules.KernelCheck)
	}
	if got, want := rules.KernelCheckIgnoredSince, version.MustDocker("19.03.7"); got != want {
		t.Errorf("ignored since %s, want %s", got, want)
	}
	if got, want := rules.KernelCheckRefusedSince, version.MustDocker("24.0"); got != want {
		t.Errorf("refused since %s, want %s", got, want)
	}
	res := daemonjson.StorageOpts([]string{"overlay2.override_kernel_check=true"}, "overlay2", StorageRules(version.MustDocker("20.10.24")), nil)
	if want := "overlay2.override_kernel_check is ignored since Docker 19.03.7 and stops Docker 24 from starting"; len(res.Dropped) != 1 || res.Dropped[0].Reason != want {
		t.Errorf("20.10.24 drops %+v, want the reason %q", res.Dropped, want)
	}
}
