package policy

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
)

// document is a policy file as yaml.v3 decodes it: KnownFields refuses a
// key that is not a field here, and each field's type checks its value and
// reports where it is wrong (the key is named afterwards, from the
// position). What spans fields is checked by policy.
type document struct {
	Version     version      `yaml:"version"`
	Strategy    strategy     `yaml:"strategy"`
	Priority    driverList   `yaml:"priority"`
	Exclude     driverList   `yaml:"exclude"`
	ImageStore  imageStore   `yaml:"imageStore"`
	Benchmark   benchmarkDoc `yaml:"benchmark"`
	Weights     *weightsDoc  `yaml:"weights"`
	StorageOpts storageOpts  `yaml:"storageOpts"`
}

type benchmarkDoc struct {
	Budget       budget  `yaml:"budget"`
	ChainLengths depths  `yaml:"chainLengths"`
	MountDepths  depths  `yaml:"mountDepths"`
	CopyUpSizes  sizes   `yaml:"copyUpSizes"`
	SmallFiles   count   `yaml:"smallFiles"`
	StatDepths   depths  `yaml:"statDepths"`
	ReaddirSize  count   `yaml:"readdirSize"`
	ImageFiles   count   `yaml:"imageFiles"`
	Samples      samples `yaml:"samples"`
}

// weightsDoc has a field per benchmark, in the order of Benchmarks.
type weightsDoc struct {
	Create     *weight `yaml:"create"`
	Mount      *weight `yaml:"mount"`
	CopyUp     *weight `yaml:"copyup"`
	SmallFiles *weight `yaml:"smallfiles"`
	Stat       *weight `yaml:"stat"`
	Readdir    *weight `yaml:"readdir"`
	Inodes     *weight `yaml:"inodes"`
	Bytes      *weight `yaml:"bytes"`
}

type storageOpts map[driver]options

// policy checks what spans fields and returns the Policy; doc is the tree
// f was decoded from, for positions.
func (f *document) policy(doc *yaml.Node) (*Policy, error) {
	b := f.Benchmark
	p := &Policy{
		Version: int(f.Version), Strategy: Strategy(f.Strategy), ImageStore: ImageStore(f.ImageStore),
		Priority: f.Priority, Exclude: f.Exclude,
		Benchmark: Benchmark{Budget: time.Duration(b.Budget), ChainLengths: b.ChainLengths, MountDepths: b.MountDepths,
			CopyUpSizes: b.CopyUpSizes, SmallFiles: int(b.SmallFiles), StatDepths: b.StatDepths,
			ReaddirSize: int(b.ReaddirSize), ImageFiles: int(b.ImageFiles), Samples: int(b.Samples)},
	}
	if p.Priority != nil && len(p.Priority) == 0 {
		return nil, errAt(at(doc, "priority"), "priority", "empty list: leave the key out to use Docker's order")
	}
	if f.Weights != nil {
		p.Weights = map[string]float64{}
		v := reflect.ValueOf(f.Weights).Elem()
		for i, k := range Benchmarks {
			if w := v.Field(i).Interface().(*weight); w != nil {
				p.Weights[k] = float64(*w)
			}
		}
		if len(p.Weights) > 0 && !slices.ContainsFunc(Benchmarks, func(k string) bool { return p.Weights[k] > 0 }) {
			return nil, errAt(at(doc, "weights"), "weights", "every weight is 0: give at least one benchmark a weight")
		}
	}
	if f.StorageOpts != nil {
		p.StorageOpts = map[string][]string{}
		n := at(doc, "storageOpts")
		for i := 0; i+1 < len(n.Content); i += 2 {
			d := n.Content[i].Value
			p.StorageOpts[d] = f.StorageOpts[driver(d)]
			for j, o := range p.StorageOpts[d] {
				if k, _ := daemonjson.OptionKey(o); !daemonjson.OptionBelongs(d, k) {
					return nil, errAt(n.Content[i+1].Content[j], fmt.Sprintf("storageOpts.%s[%d]", d, j),
						"%s is not an option of %s: dockerd refuses another driver's options", k, d)
				}
			}
		}
	}
	for i, d := range p.Exclude {
		if j := slices.Index(p.Priority, d); j >= 0 {
			return nil, errAt(at(doc, "exclude").Content[i], fmt.Sprintf("exclude[%d]", i),
				"%s is also in priority (line %d): drop it from one of them", d, at(doc, "priority").Content[j].Line)
		}
	}
	if len(p.Priority) == 0 && len(p.Exclude) > 0 && len(p.Order(drivers.Names())) == 0 {
		ex := at(doc, "exclude")
		return nil, errAt(ex.Content[len(ex.Content)-1], "exclude", "every driver is excluded")
	}
	return p, nil
}

// The field types below check a value where it is decoded, so that the
// error carries its line and column.

// bad is a field type's error. It is a *yaml.TypeError, so that yaml.v3
// goes on decoding and keeps every error in document order; it has the
// form of yaml.v3's own ("line 3: ...") with the column added, and
// decodeError names its key from the position.
func bad(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d, column %d: ", n.Line, n.Column) + fmt.Sprintf(format, args...)}}
}

type (
	version    int
	count      int // of files: 1 to 1000000
	samples    int
	strategy   Strategy
	imageStore ImageStore
	budget     time.Duration
	weight     float64
	driver     string
	driverList []string
	depths     []int
	sizes      []int64
	options    []string
)

// maxDepth is Docker's overlay2 limit on stacked layers.
const maxDepth = 128

func (v *version) UnmarshalYAML(n *yaml.Node) error { return decodeInt(n, (*int)(v), 1, 1) }
func (c *count) UnmarshalYAML(n *yaml.Node) error   { return decodeInt(n, (*int)(c), 1, 1_000_000) }
func (s *samples) UnmarshalYAML(n *yaml.Node) error { return decodeInt(n, (*int)(s), 1, 100) }

func (s *strategy) UnmarshalYAML(n *yaml.Node) error {
	v, err := enum(n, string(StrategyPriority), string(StrategyFastest))
	*s = strategy(v)
	return err
}

func (s *imageStore) UnmarshalYAML(n *yaml.Node) error {
	v, err := enum(n, string(ImageStoreGraphDriver), string(ImageStoreContainerd), "default")
	if v != "default" {
		*s = imageStore(v)
	}
	return err
}

func (b *budget) UnmarshalYAML(n *yaml.Node) error {
	if t := n.ShortTag(); n.Kind == yaml.ScalarNode && (t == "!!int" || t == "!!float") {
		return bad(n, "must be a duration with a unit, like %ss", n.Value)
	}
	s, err := scalar(n, "a string", "!!str")
	if err != nil {
		return err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return bad(n, "%q is not a duration (like 30s or 2m)", s)
	}
	if d < time.Second || d > time.Hour {
		return bad(n, "%s is out of range 1s to 1h", s)
	}
	*b = budget(d)
	return nil
}

func (w *weight) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, "a number", "!!float", "!!int")
	if err != nil {
		return err
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1000 {
		return bad(n, "%s is out of range 0 to 1000", s)
	}
	*w = weight(f)
	return nil
}

func (d *driver) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, "a string", "!!str")
	if err != nil {
		return err
	}
	if _, ok := drivers.Lookup(s); !ok {
		return bad(n, "unknown driver %q (known: %s)", s, strings.Join(drivers.Names(), ", "))
	}
	*d = driver(s)
	return nil
}

func (l *driverList) UnmarshalYAML(n *yaml.Node) (err error) {
	*l, err = unique(n, 16, func(e *yaml.Node) (string, error) {
		var d driver
		return string(d), d.UnmarshalYAML(e)
	})
	return err
}

func (l *depths) UnmarshalYAML(n *yaml.Node) (err error) {
	*l, err = unique(n, 16, func(e *yaml.Node) (d int, err error) { return d, decodeInt(e, &d, 1, maxDepth) })
	return err
}

func (l *sizes) UnmarshalYAML(n *yaml.Node) (err error) {
	*l, err = unique(n, 16, size)
	return err
}

// UnmarshalYAML checks the form of storage options; whether they belong
// to their driver is checked by policy, which knows the driver.
func (l *options) UnmarshalYAML(n *yaml.Node) (err error) {
	*l, err = list(n, 64, func(e *yaml.Node) (string, error) {
		s, err := scalar(e, "a string", "!!str")
		if _, ok := daemonjson.OptionKey(s); err == nil && !ok {
			return "", bad(e, "%q is not in key=value form", s)
		}
		return s, err
	})
	return err
}

// list decodes a YAML sequence of at most max entries with elem.
func list[T any](n *yaml.Node, max int, elem func(*yaml.Node) (T, error)) ([]T, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, bad(n, "must be a list, found %s", kindName(n))
	}
	if len(n.Content) > max {
		return nil, bad(n, "more than %d entries", max)
	}
	out := make([]T, 0, len(n.Content))
	for _, e := range n.Content {
		v, err := elem(e)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// unique is list for entries that must differ.
func unique[T comparable](n *yaml.Node, max int, elem func(*yaml.Node) (T, error)) ([]T, error) {
	v, err := list(n, max, elem)
	for i := range v {
		if j := slices.Index(v[:i], v[i]); j >= 0 {
			e, first := n.Content[i], n.Content[j]
			if e.Value != first.Value { // 1G and 1GiB
				return nil, bad(e, "%s is listed twice (first as %s at line %d)", e.Value, first.Value, first.Line)
			}
			return nil, bad(e, "%s is listed twice (first at line %d)", e.Value, first.Line)
		}
	}
	return v, err
}

func scalar(n *yaml.Node, what string, tags ...string) (string, error) {
	if n.Kind != yaml.ScalarNode || !slices.Contains(tags, n.ShortTag()) {
		return "", bad(n, "must be %s, found %s", what, kindName(n))
	}
	return n.Value, nil
}

func decodeInt(n *yaml.Node, out *int, lo, hi int) error {
	s, err := scalar(n, "an integer", "!!int")
	if err != nil {
		return err
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
	if err != nil || v < int64(lo) || v > int64(hi) {
		return bad(n, "%s is out of range %d to %d", s, lo, hi)
	}
	*out = int(v)
	return nil
}

func enum(n *yaml.Node, values ...string) (string, error) {
	s, err := scalar(n, "a string", "!!str")
	if err == nil && !slices.Contains(values, s) {
		err = bad(n, "%q is not one of %s", s, strings.Join(values, ", "))
	}
	return s, err
}

var sizeUnits = []struct {
	suffix string
	shift  uint
}{
	{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"G", 30}, {"M", 20}, {"K", 10}, {"k", 10}, {"B", 0},
}

// size reads a byte count: an integer, or a number with a binary unit.
func size(n *yaml.Node) (int64, error) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!str") {
		return 0, bad(n, "must be a size like 4KiB or 1MiB, found %s", kindName(n))
	}
	s := strings.TrimSpace(n.Value)
	shift := uint(0)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, shift = strings.TrimSpace(num), u.shift
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, bad(n, "%q is not a size (bytes, or a number with B, KiB, MiB or GiB)", n.Value)
	}
	if v < 1 || v > (1<<30)>>shift {
		return 0, bad(n, "%s is out of range 1B to 1GiB", n.Value)
	}
	return v << shift, nil
}
