package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const name = "/etc/graphprobe/policy.yaml"

func TestParseExample(t *testing.T) {
	p, err := Load(filepath.Join("testdata", "policy", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Policy{
		Version:    1,
		Strategy:   StrategyFastest,
		Priority:   []string{"overlay2", "btrfs", "zfs", "fuse-overlayfs"},
		Exclude:    []string{"vfs", "devicemapper"},
		ImageStore: ImageStoreGraphDriver,
		Benchmark: Benchmark{
			Budget:       45 * time.Second,
			ChainLengths: []int{1, 8, 32},
			MountDepths:  []int{1, 20, 128},
			CopyUpSizes:  []int64{4 << 10, 1 << 20, 64 << 20},
			SmallFiles:   2000,
			StatDepths:   []int{1, 20},
			ReaddirSize:  1000,
			ImageFiles:   1000,
			Samples:      5,
		},
		Weights:     map[string]float64{"create": 1, "mount": 1, "copyup": 2, "smallfiles": 1, "stat": 1, "readdir": 0.5, "inodes": 0.5, "bytes": 0.5},
		StorageOpts: map[string][]string{"overlay2": {"overlay2.size=20G"}, "btrfs": {"btrfs.min_space=10G"}, "zfs": {"zfs.fsname=tank/docker"}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got  %+v\nwant %+v", p, want)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "# only a comment\n", "---\n", "~\n"} {
		p, err := Parse(name, []byte(in))
		if err != nil || !reflect.DeepEqual(p, &Policy{}) {
			t.Errorf("Parse(%q) = %+v, %v", in, p, err)
		}
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Policy
	}{
		{"default image store", "imageStore: default", Policy{}},
		{"containerd", "imageStore: containerd", Policy{ImageStore: ImageStoreContainerd}},
		{"sizes in every unit", "benchmark:\n  copyUpSizes: [512, 1B, 2K, 3k, 4KiB, 5M, 6MiB, 1G, 1GiB]",
			Policy{Benchmark: Benchmark{CopyUpSizes: []int64{512, 1, 2 << 10, 3 << 10, 4 << 10, 5 << 20, 6 << 20, 1 << 30}}}},
		{"weights of 0 beside a positive one", "weights: {mount: 0, bytes: 1}", Policy{Weights: map[string]float64{"mount": 0, "bytes": 1}}},
		{"empty storage opts list", "storageOpts: {vfs: []}", Policy{StorageOpts: map[string][]string{"vfs": {}}}},
		{"vfs bare size option", "storageOpts: {vfs: [size=10G]}", Policy{StorageOpts: map[string][]string{"vfs": {"size=10G"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "sizes in every unit" {
				// 1G and 1GiB are the same size: listed twice.
				_, err := Parse(name, []byte(tt.in))
				want := "parse policy " + name + ": line 2, column 54: benchmark.copyUpSizes[8]: 1GiB is listed twice (first as 1G at line 2)"
				if err == nil || err.Error() != want {
					t.Fatalf("got %v\nwant %s", err, want)
				}
				tt.in = strings.Replace(tt.in, ", 1GiB]", "]", 1)
			}
			p, err := Parse(name, []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*p, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", *p, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"unknown key", "version: 1\nstrategie: fastest\n", "line 2, column 1: strategie: unknown key (known: version, strategy, priority, exclude, imageStore, benchmark, weights, storageOpts)"},
		{"unknown nested key", "benchmark:\n  budget: 10s\n  smallfiles: 3\n", "line 3, column 3: benchmark.smallfiles: unknown key (known: budget, chainLengths, mountDepths, copyUpSizes, smallFiles, statDepths, readdirSize, imageFiles, samples)"},
		{"unknown weight", "weights:\n  mount: 1\n  copyUp: 2\n", "line 3, column 3: weights.copyUp: unknown key (known: create, mount, copyup, smallfiles, stat, readdir, inodes, bytes)"},
		{"duplicate key", "strategy: priority\nexclude: [vfs]\nstrategy: fastest\n", "line 3, column 1: strategy: duplicate key (first at line 1)"},
		{"duplicate nested key", "storageOpts:\n  overlay2: []\n  overlay2: [overlay2.size=1G]\n", "line 3, column 3: storageOpts.overlay2: duplicate key (first at line 2)"},
		{"top level not a mapping", "- overlay2\n", "line 1, column 1: must be a mapping, found a list"},
		{"wrong type: strategy", "strategy: [fastest]\n", "line 1, column 11: strategy: must be a string, found a list"},
		{"bad strategy", "strategy: quickest\n", `line 1, column 11: strategy: "quickest" is not one of priority, fastest`},
		{"bad version", "version: 2\n", "line 1, column 10: version: 2 is out of range 1 to 1"},
		{"version as string", "version: \"1\"\n", "line 1, column 10: version: must be an integer, found a string"},
		{"unknown driver", "priority:\n  - overlay2\n  - overlay3\n", `line 3, column 5: priority[1]: unknown driver "overlay3" (known: aufs, btrfs, devicemapper, fuse-overlayfs, overlay, overlay2, vfs, zfs)`},
		{"driver listed twice", "exclude: [vfs, aufs, vfs]\n", "line 1, column 22: exclude[2]: vfs is listed twice (first at line 1)"},
		{"empty priority", "priority: []\n", "line 1, column 11: priority: empty list: leave the key out to use Docker's order"},
		{"priority not a list", "priority: overlay2\n", "line 1, column 11: priority: must be a list, found a string"},
		{"driver in priority and exclude", "priority: [overlay2, vfs]\nexclude:\n  - vfs\n", "line 3, column 5: exclude[0]: vfs is also in priority (line 1): drop it from one of them"},
		{"everything excluded", "exclude: [overlay2, fuse-overlayfs, btrfs, zfs, aufs, overlay, devicemapper, vfs]\n", "line 1, column 78: exclude: every driver is excluded"},
		{"budget without unit", "benchmark:\n  budget: 30\n", "line 2, column 11: benchmark.budget: must be a duration with a unit, like 30s"},
		{"budget not a duration", "benchmark:\n  budget: soon\n", `line 2, column 11: benchmark.budget: "soon" is not a duration (like 30s or 2m)`},
		{"budget too long", "benchmark:\n  budget: 2h\n", "line 2, column 11: benchmark.budget: 2h is out of range 1s to 1h"},
		{"bad size", "benchmark:\n  copyUpSizes: [4 furlongs]\n", `line 2, column 17: benchmark.copyUpSizes[0]: "4 furlongs" is not a size (bytes, or a number with B, KiB, MiB or GiB)`},
		{"size too big", "benchmark:\n  copyUpSizes: [2GiB]\n", "line 2, column 17: benchmark.copyUpSizes[0]: 2GiB is out of range 1B to 1GiB"},
		{"size zero", "benchmark:\n  copyUpSizes: [0]\n", "line 2, column 17: benchmark.copyUpSizes[0]: 0 is out of range 1B to 1GiB"},
		{"size a mapping", "benchmark:\n  copyUpSizes: [{a: 1}]\n", "line 2, column 17: benchmark.copyUpSizes[0]: must be a size like 4KiB or 1MiB, found a mapping"},
		{"small files out of range", "benchmark:\n  smallFiles: 0\n", "line 2, column 15: benchmark.smallFiles: 0 is out of range 1 to 1000000"},
		{"mount depth over Docker's cap", "benchmark:\n  mountDepths: [1, 129]\n", "line 2, column 20: benchmark.mountDepths[1]: 129 is out of range 1 to 128"},
		{"stat depth listed twice", "benchmark:\n  statDepths: [20, 20]\n", "line 2, column 20: benchmark.statDepths[1]: 20 is listed twice (first at line 2)"},
		{"chain lengths not a list", "benchmark:\n  chainLengths: 8\n", "line 2, column 17: benchmark.chainLengths: must be a list, found an integer"},
		{"samples out of range", "benchmark:\n  samples: 101\n", "line 2, column 12: benchmark.samples: 101 is out of range 1 to 100"},
		{"negative weight", "weights: {mount: -1}\n", "line 1, column 18: weights.mount: -1 is out of range 0 to 1000"},
		{"weight a string", "weights: {mount: high}\n", "line 1, column 18: weights.mount: must be a number, found a string"},
		{"NaN weight", "weights: {mount: .nan}\n", "line 1, column 18: weights.mount: .nan is out of range 0 to 1000"},
		{"all weights zero", "weights:\n  mount: 0\n", "line 2, column 3: weights: every weight is 0: give at least one benchmark a weight"},
		{"storage opt of another driver", "storageOpts:\n  overlay2: [dm.basesize=10G]\n", "line 2, column 14: storageOpts.overlay2[0]: dm.basesize is not an option of overlay2: dockerd refuses another driver's options"},
		{"storage opt not key=value", "storageOpts:\n  overlay2: [overlay2.size]\n", `line 2, column 14: storageOpts.overlay2[0]: "overlay2.size" is not in key=value form`},
		{"storage opts of unknown driver", "storageOpts:\n  overlay9: []\n", `line 2, column 3: storageOpts: unknown driver "overlay9" (known: aufs, btrfs, devicemapper, fuse-overlayfs, overlay, overlay2, vfs, zfs)`},
		{"non-string key", "1: x\n", "line 1, column 1: keys must be strings, found an integer"},
		{"anchor", "priority: &p [overlay2]\nexclude: *p\n", "line 1, column 11: anchors and aliases are not supported in a policy"},
		{"two documents", "strategy: fastest\n---\nstrategy: priority\n", "line 2, column 1: more than one YAML document; a policy is one"},
		{"YAML syntax", "strategy: fastest\n  exclude: [vfs]\n", "line 2, column 1: mapping values are not allowed in this context"},
		{"tab indentation", "benchmark:\n\tbudget: 1s\n", "line 2, column 1: found character that cannot start any token"},
		{"flow nesting", "weights: " + strings.Repeat("[", 20) + strings.Repeat("]", 20) + "\n", "line 1, column 18: nesting deeper than 8 levels is refused"},
		{"block nesting", "a:\n b:\n  c:\n   d:\n    e:\n     f:\n      g:\n       h:\n        i:\n         j: 1\n", "line 9, column 9: nesting deeper than 8 levels is refused"},
		{"too big", "# " + strings.Repeat("x", MaxSize), "file is over 64 KiB; a policy is a few dozen lines"},
		{"key without a value", "strategy:\n", "line 1, column 1: strategy: no value: give one or leave the key out"},
		{"nested key without a value", "storageOpts:\n  vfs: ~\n", "line 2, column 3: storageOpts.vfs: no value: give one or leave the key out"},
		{"null in a list", "priority: [~]\n", "line 1, column 12: priority[0]: must be a string, found null"},
		{"first error in document order", "version: 1\nstrategie: x\nstrategy: 1\n", "line 2, column 1: strategie: unknown key (known: version, strategy, priority, exclude, imageStore, benchmark, weights, storageOpts)"},
		{"merge key", "<<: {strategy: fastest}\n", "line 1, column 1: keys must be strings, found a merge"},
		{"too many keys", manyKeys(maxKeys + 1), "line 2, column 3: weights: more than 64 keys"},
		{"flow nesting past yaml.v3's limit", "weights: " + strings.Repeat("[", 10001) + "\n", "line 1, column 1: nesting deeper than 8 levels is refused"},
		{"top level a multi-line string", "0\n 0\n", "line 1, column 1: must be a mapping, found a string"},
		{"benchmark not a mapping", "benchmark: 5\n", "line 1, column 12: benchmark: must be a mapping, found an integer"},
		{"weights not a mapping", "weights: [1]\n", "line 1, column 10: weights: must be a mapping, found a list"},
		{"storage opts not a mapping", "storageOpts: x\n", "line 1, column 14: storageOpts: must be a mapping, found a string"},
		{"unknown key in a flow mapping", "benchmark: {samples: 5, samples2: 1}\n", "line 1, column 25: benchmark.samples2: unknown key (known: budget, chainLengths, mountDepths, copyUpSizes, smallFiles, statDepths, readdirSize, imageFiles, samples)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(name, []byte(tt.in))
			want := "parse policy " + name + ": " + tt.want
			if err == nil || err.Error() != want {
				t.Fatalf("got  %v\nwant %s", err, want)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("%T is not *Error", err)
			}
		})
	}
}

// manyKeys is a weights mapping of n distinct keys.
func manyKeys(n int) string {
	var b strings.Builder
	b.WriteString("weights:\n")
	for i := range n {
		fmt.Fprintf(&b, "  w%d: 1\n", i)
	}
	return b.String()
}

func TestOrderAndAllowed(t *testing.T) {
	docker25 := []string{"overlay2", "fuse-overlayfs", "btrfs", "zfs", "vfs"}
	tests := []struct {
		name    string
		p       Policy
		order   []string
		allowed map[string]bool
	}{
		{"empty policy is Docker's order", Policy{}, docker25, map[string]bool{"vfs": true, "aufs": true}},
		{"exclude", Policy{Exclude: []string{"vfs", "btrfs"}}, []string{"overlay2", "fuse-overlayfs", "zfs"}, map[string]bool{"vfs": false, "overlay2": true}},
		{"priority replaces the order", Policy{Priority: []string{"zfs", "overlay2"}}, []string{"zfs", "overlay2"}, map[string]bool{"zfs": true, "btrfs": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Order(docker25); !reflect.DeepEqual(got, tt.order) {
				t.Fatalf("Order = %v, want %v", got, tt.order)
			}
			for d, want := range tt.allowed {
				if got := tt.p.Allowed(d); got != want {
					t.Errorf("Allowed(%s) = %v, want %v", d, got, want)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
	if _, err := Load(dir); err == nil || err.Error() != "read policy "+dir+": not a regular file" {
		t.Fatalf("got %v", err)
	}
}

// TestExampleIsComplete: the shipped example (examples/policy.yaml, shown
// in the README and the man page) parses and sets every key there is, so
// that it documents the whole format.
func TestExampleIsComplete(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "policy.yaml")
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range keysOf(reflect.TypeFor[document]()) {
		if _, ok := doc[k]; !ok {
			t.Errorf("the example lacks %s", k)
		}
	}
	bench, _ := doc["benchmark"].(map[string]any)
	for _, k := range keysOf(reflect.TypeFor[benchmarkDoc]()) {
		if _, ok := bench[k]; !ok {
			t.Errorf("the example lacks benchmark.%s", k)
		}
	}
	for _, k := range Benchmarks {
		if _, ok := p.Weights[k]; !ok {
			t.Errorf("the example lacks weights.%s", k)
		}
	}
}
