package reliability

import (
	"slices"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/selector"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
	"github.com/graphprobe/graphprobe/version"
)

// Fuzz targets for the parsers that have none in their own package (the
// others are listed by scripts/fuzz-all.sh): storage-opts lists. Each
// checks that no input panics and that what is accepted is consistent.
// Docker releases and `dockerd --version` have one parser, fuzzed in
// package version.

// FuzzStorageOpts: daemon.json's storage-opts (and the policy's) are
// filtered for the chosen driver. Every option kept belongs to the driver,
// keys are unique, every input option is either kept or reported as
// dropped, and filtering the result again changes nothing.
func FuzzStorageOpts(f *testing.F) {
	f.Add("overlay2.size=10G\ndm.basesize=20G\noverlay2.override_kernel_check=true", "overlay2", "20.10.24", "overlay2.size=20G")
	f.Add("size=1G\nvfs.x=1\nnot-an-option", "vfs", "17.03.2", "")
	f.Add("Overlay2.Size = 1\noverlay2.size=2", "overlay2", "", "overlay2.size=2\noverlay2.size=3")
	f.Add("", "devicemapper", "29.0.0", "dm.basesize=1G")
	f.Fuzz(func(t *testing.T, existing, driver, release, policy string) {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, "\n")
		}
		ex, pol := split(existing), split(policy)
		dv, _ := version.ParseDocker(release) // unreadable: the zero version, the newest
		res := daemonjson.StorageOpts(ex, driver, selector.StorageRules(dv), pol)
		keys := map[string]bool{}
		for _, o := range res.Opts {
			k, ok := daemonjson.OptionKey(o)
			if !ok || !daemonjson.OptionBelongs(driver, k) {
				t.Fatalf("kept %q, which is not an option of %q", o, driver)
			}
			if keys[k] {
				t.Fatalf("key %s kept twice: %q", k, res.Opts)
			}
			keys[k] = true
		}
		for _, o := range append(slices.Clone(ex), pol...) {
			if !slices.Contains(res.Opts, o) && !slices.ContainsFunc(res.Dropped, func(d daemonjson.DroppedOpt) bool { return d.Opt == o }) {
				t.Fatalf("%q was neither kept nor reported as dropped: %+v", o, res)
			}
		}
		again := daemonjson.StorageOpts(res.Opts, driver, selector.StorageRules(dv), pol)
		if !slices.Equal(again.Opts, res.Opts) {
			t.Fatalf("not stable: %q -> %q", res.Opts, again.Opts)
		}
	})
}
