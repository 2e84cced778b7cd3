package reliability

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
)

// Fuzz targets for the parsers that have none in their own package (the
// others are listed by scripts/fuzz-all.sh): Docker release strings, the
// output of `dockerd --version`, and storage-opts lists. Each checks that
// no input panics and that what is accepted is consistent.

// FuzzDockerVersion: --docker-version and dockerd's version go through
// selector.ParseDockerVersion; an accepted version prints and re-parses to
// itself, and daemonjson (which decides which storage-opts dockerd refuses)
// orders it exactly as selector does, since select hands it the printed
// form.
func FuzzDockerVersion(f *testing.F) {
	for _, s := range []string{"20.10.24", "17.03", "17.03.2-ce", "25.0.3", "v24.0.7", "29", " v19.03.7+dfsg1 ", "17.100", "0017.3.0", "1.2.3.4", "", "v", "24.0.0~rc1"} {
		f.Add(s)
	}
	thresholds := []selector.DockerVersion{selector.MustDockerVersion("19.03.7"), selector.MustDockerVersion("23.0"), selector.MustDockerVersion("24.0"), selector.MustDockerVersion("25.0"), selector.MustDockerVersion("29.0")}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := selector.ParseDockerVersion(s)
		if err != nil {
			return
		}
		again, err := selector.ParseDockerVersion(v.String())
		if err != nil || again != v {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, v, v.String(), again, err)
		}
		for _, th := range thresholds {
			if got, want := daemonjson.VersionAtLeast(v.String(), th.Major, th.Minor, th.Patch), v.AtLeast(th); got != want {
				t.Fatalf("%s at least %s: daemonjson says %v, selector %v", v, th, got, want)
			}
		}
		if p := v.Priority(); len(p) == 0 || p[len(p)-1] != "vfs" {
			t.Fatalf("%s: priority %v does not end with vfs", v, p)
		}
	})
}

var dockerdVersionOut = regexp.MustCompile(`^[0-9]+\.[0-9]{2,}\.[0-9]+$`)

// FuzzDockerdVersionOutput: probe reads `dockerd --version`; whatever it
// accepts is a plain MAJOR.MM.PATCH that select can use or refuse, never a
// crash.
func FuzzDockerdVersionOutput(f *testing.F) {
	for _, s := range []string{"Docker version 20.10.24+dfsg1, build 5d6db84", "Docker version 17.03.2-ce, build f5ec1e2\n", "docker version 25.0", "Docker version 007.3.0", "Docker version 99999999999999999999.1.1", "dockerd: command not found", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		v, err := probe.ParseDockerVersion(out)
		if err != nil {
			return
		}
		if !dockerdVersionOut.MatchString(v) {
			t.Fatalf("%q -> %q, not MAJOR.MM.PATCH", out, v)
		}
		_, _ = selector.ParseDockerVersion(v)
	})
}

// FuzzStorageOpts: daemon.json's storage-opts (and the policy's) are
// filtered for the chosen driver. Every option kept belongs to the driver,
// keys are unique, every input option is either kept or reported as
// dropped, and filtering the result again changes nothing.
func FuzzStorageOpts(f *testing.F) {
	f.Add("overlay2.size=10G\ndm.basesize=20G\noverlay2.override_kernel_check=true", "overlay2", "20.10.24", "overlay2.size=20G")
	f.Add("size=1G\nvfs.x=1\nnot-an-option", "vfs", "17.03.2", "")
	f.Add("Overlay2.Size = 1\noverlay2.size=2", "overlay2", "", "overlay2.size=2\noverlay2.size=3")
	f.Add("", "devicemapper", "29.0.0", "dm.basesize=1G")
	f.Fuzz(func(t *testing.T, existing, driver, version, policy string) {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, "\n")
		}
		ex, pol := split(existing), split(policy)
		res := daemonjson.StorageOpts(ex, driver, version, pol)
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
		again := daemonjson.StorageOpts(res.Opts, driver, version, pol)
		if !slices.Equal(again.Opts, res.Opts) {
			t.Fatalf("not stable: %q -> %q", res.Opts, again.Opts)
		}
	})
}
