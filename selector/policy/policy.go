package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
	"gopkg.in/yaml.v3"
)

// Limits of what Parse accepts: a policy is a few dozen lines.
const (
	MaxSize  = 64 << 10
	MaxDepth = 8
)

// Strategy is how select ranks the eligible drivers.
type Strategy string

const (
	// StrategyPriority takes the first eligible driver of the priority
	// order, as dockerd does.
	StrategyPriority Strategy = "priority"
	// StrategyFastest takes the eligible driver with the best weighted
	// benchmark score.
	StrategyFastest Strategy = "fastest"
)

// ImageStore is the Docker 29+ image store to configure.
type ImageStore string

const (
	// ImageStoreDefault leaves the choice to Docker (the zero value).
	ImageStoreDefault ImageStore = ""
	// ImageStoreGraphDriver keeps the graph driver image store.
	ImageStoreGraphDriver ImageStore = "graphdriver"
	// ImageStoreContainerd uses containerd snapshotters.
	ImageStoreContainerd ImageStore = "containerd"
)

// Benchmarks are the names weights may use: the groups of select's
// benchmark suite (layers created on the image, a container's first start
// (create and mount), copy-up, small files, stat/open through layers,
// readdir, inodes and bytes per layer).
var Benchmarks = []string{"create", "mount", "copyup", "smallfiles", "stat", "readdir", "inodes", "bytes"}

// Policy is a parsed policy file. A zero field was not set.
type Policy struct {
	Version  int      `json:"version,omitempty"`
	Strategy Strategy `json:"strategy,omitempty"`
	// Priority replaces Docker's priority order; drivers not named are
	// not chosen.
	Priority []string `json:"priority,omitempty"`
	// Exclude are drivers never chosen.
	Exclude    []string   `json:"exclude,omitempty"`
	ImageStore ImageStore `json:"imageStore,omitempty"`
	Benchmark  Benchmark  `json:"benchmark"`
	// Weights are per benchmark (see Benchmarks), for StrategyFastest.
	Weights map[string]float64 `json:"weights,omitempty"`
	// StorageOpts are the storage-opts to write per driver.
	StorageOpts map[string][]string `json:"storageOpts,omitempty"`
}

// Benchmark sizes the benchmarks; the fields after Budget mirror the
// suite's sizes one to one.
type Benchmark struct {
	Budget       time.Duration `json:"budget,omitempty"`
	ChainLengths []int         `json:"chainLengths,omitempty"`
	MountDepths  []int         `json:"mountDepths,omitempty"`
	CopyUpSizes  []int64       `json:"copyUpSizes,omitempty"`
	SmallFiles   int           `json:"smallFiles,omitempty"`
	StatDepths   []int         `json:"statDepths,omitempty"`
	ReaddirSize  int           `json:"readdirSize,omitempty"`
	ImageFiles   int           `json:"imageFiles,omitempty"`
	Samples      int           `json:"samples,omitempty"`
}

// Order returns the drivers select may try, in order: the policy's
// priority list, or dockerDefault (Docker's list for the release) when the
// policy has none, without the excluded drivers.
func (p *Policy) Order(dockerDefault []string) []string {
	base := dockerDefault
	if len(p.Priority) > 0 {
		base = p.Priority
	}
	out := []string{}
	for _, d := range base {
		if !slices.Contains(p.Exclude, d) {
			out = append(out, d)
		}
	}
	return out
}

// Allowed reports whether the policy lets select choose driver.
func (p *Policy) Allowed(driver string) bool {
	if slices.Contains(p.Exclude, driver) {
		return false
	}
	return len(p.Priority) == 0 || slices.Contains(p.Priority, driver)
}

// Error is a policy that cannot be used, with where.
type Error struct {
	Name   string
	Line   int
	Column int
	// Key is the dotted path of the offending key ("benchmark.budget",
	// "priority[2]"), "" for errors about the whole document.
	Key string
	Msg string
}

func (e *Error) Error() string {
	s := "parse policy " + e.Name + ": "
	if e.Line > 0 {
		s += fmt.Sprintf("line %d, column %d: ", e.Line, e.Column)
	}
	if e.Key != "" {
		s += e.Key + ": "
	}
	return s + e.Msg
}

// Load reads and parses the policy file at path.
func Load(path string) (*Policy, error) {
	// Refuse a FIFO or device before opening it: open(2) of a FIFO without
	// a writer blocks, and no signal handler can end that wait.
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read policy %s: not a regular file", path)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read policy %s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse reads a policy document; name labels errors.
func Parse(name string, data []byte) (*Policy, error) {
	if len(data) > MaxSize {
		return nil, &Error{Name: name, Msg: fmt.Sprintf("file is over %d KiB; a policy is a few dozen lines", MaxSize>>10)}
	}
	if err := checkNesting(data); err != nil {
		return nil, &Error{Name: name, Line: err.line, Column: err.col, Msg: err.msg}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &Policy{}, nil
		}
		return nil, yamlError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(name, err)
		}
		return nil, &Error{Name: name, Line: extra.Line, Column: extra.Column, Msg: "more than one YAML document; a policy is one"}
	}
	w := &walker{name: name}
	if err := w.check(&doc, 0); err != nil {
		return nil, err
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return &Policy{}, nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return &Policy{}, nil
	}
	p := &Policy{}
	if err := w.policy(root, p); err != nil {
		return nil, err
	}
	return p, nil
}

type nestingError struct {
	line, col int
	msg       string
}

// checkNesting bounds flow-style nesting ([[[[...) before the YAML parser
// recurses into it: block nesting costs indentation, so the file size
// bounds it, but flow nesting is one byte a level.
func checkNesting(data []byte) *nestingError {
	depth, line, col := 0, 1, 0
	inSingle, inDouble, inComment := false, false, false
	// prev is the last byte outside quotes and comments. A quote opens a
	// quoted scalar only where a scalar can start, and "#" opens a comment
	// only at the start of a line or after a blank: in it's and a#b they
	// are part of a plain scalar.
	prev := byte('\n')
	for i := 0; i < len(data); i++ {
		c := data[i]
		col++
		switch {
		case c == '\n':
			line, col, inComment = line+1, 0, false
			inSingle, inDouble = false, false // flow scalars rarely span lines; be conservative
		case inComment:
		case inDouble:
			if c == '\\' {
				i++
				col++
			} else if c == '"' {
				inDouble = false
			}
		case inSingle:
			if c == '\'' {
				inSingle = false
			}
		case c == '#' && isBlank(prev):
			inComment = true
		case c == '"' && startsScalar(prev):
			inDouble = true
		case c == '\'' && startsScalar(prev):
			inSingle = true
		case c == '[' || c == '{':
			depth++
			if depth > MaxDepth {
				return &nestingError{line, col, fmt.Sprintf("nesting deeper than %d levels is refused", MaxDepth)}
			}
		case c == ']' || c == '}':
			if depth > 0 {
				depth--
			}
		}
		if !inComment && !inSingle && !inDouble {
			prev = c
		} else if c == '\n' {
			prev = c
		}
	}
	return nil
}

func isBlank(c byte) bool { return c == '\n' || c == ' ' || c == '\t' }

// startsScalar reports whether a scalar may begin after c.
func startsScalar(c byte) bool {
	return isBlank(c) || c == '[' || c == '{' || c == ',' || c == ':' || c == '-' || c == '?'
}

// yamlError turns a yaml.v3 error ("yaml: line 3: mapping values are not
// allowed in this context") into an Error.
func yamlError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line, msg = v, after
			}
		}
	}
	if line > 0 {
		return &Error{Name: name, Line: line, Column: 1, Msg: msg}
	}
	return &Error{Name: name, Msg: msg}
}

type walker struct{ name string }

func (w *walker) errorf(n *yaml.Node, key, format string, args ...any) error {
	return &Error{Name: w.name, Line: n.Line, Column: n.Column, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// check refuses anchors, aliases and deep nesting anywhere in the tree.
func (w *walker) check(n *yaml.Node, depth int) error {
	if depth > MaxDepth+1 { // +1: the document node
		return w.errorf(n, "", "nesting deeper than %d levels is refused", MaxDepth)
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return w.errorf(n, "", "anchors and aliases are not supported in a policy")
	}
	for _, c := range n.Content {
		if err := w.check(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "null"
	}
	return "a " + strings.TrimPrefix(n.ShortTag(), "!!")
}

// pairs returns a mapping's key/value pairs, refusing non-string and
// duplicate keys and keys not in known (nil: any key).
func (w *walker) pairs(n *yaml.Node, path string, known []string) ([][2]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, w.errorf(n, path, "must be a mapping, found %s", kindName(n))
	}
	seen := map[string]*yaml.Node{}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return nil, w.errorf(k, path, "keys must be strings, found %s", kindName(k))
		}
		if prev, dup := seen[k.Value]; dup {
			return nil, w.errorf(k, kp, "duplicate key (first at line %d)", prev.Line)
		}
		seen[k.Value] = k
		if known != nil && !slices.Contains(known, k.Value) {
			return nil, w.errorf(k, kp, "unknown key (known: %s)", strings.Join(known, ", "))
		}
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var topKeys = []string{"version", "strategy", "priority", "exclude", "imageStore", "benchmark", "weights", "storageOpts"}

func (w *walker) policy(n *yaml.Node, p *Policy) error {
	ps, err := w.pairs(n, "", topKeys)
	if err != nil {
		return err
	}
	var priorityNodes, excludeNodes []*yaml.Node
	for _, kv := range ps {
		k, v := kv[0].Value, kv[1]
		switch k {
		case "version":
			n, err := w.integer(v, k, 1, 1)
			if err != nil {
				return err
			}
			p.Version = n
		case "strategy":
			s, err := w.enum(v, k, string(StrategyPriority), string(StrategyFastest))
			if err != nil {
				return err
			}
			p.Strategy = Strategy(s)
		case "imageStore":
			s, err := w.enum(v, k, string(ImageStoreGraphDriver), string(ImageStoreContainerd), "default")
			if err != nil {
				return err
			}
			if s != "default" {
				p.ImageStore = ImageStore(s)
			}
		case "priority":
			if p.Priority, priorityNodes, err = w.driverList(v, k); err != nil {
				return err
			}
			if len(p.Priority) == 0 {
				return w.errorf(v, k, "empty list: leave the key out to use Docker's order")
			}
		case "exclude":
			if p.Exclude, excludeNodes, err = w.driverList(v, k); err != nil {
				return err
			}
		case "benchmark":
			if err := w.benchmark(v, &p.Benchmark); err != nil {
				return err
			}
		case "weights":
			if p.Weights, err = w.weights(v); err != nil {
				return err
			}
		case "storageOpts":
			if p.StorageOpts, err = w.storageOpts(v); err != nil {
				return err
			}
		}
	}
	for i, d := range p.Exclude {
		if j := slices.Index(p.Priority, d); j >= 0 {
			return w.errorf(excludeNodes[i], fmt.Sprintf("exclude[%d]", i), "%s is also in priority (line %d): drop it from one of them", d, priorityNodes[j].Line)
		}
	}
	if len(p.Priority) == 0 && len(p.Exclude) > 0 {
		if left := (&Policy{Exclude: p.Exclude}).Order(drivers.Names()); len(left) == 0 {
			return w.errorf(excludeNodes[len(excludeNodes)-1], "exclude", "every driver is excluded")
		}
	}
	return nil
}

func (w *walker) scalar(n *yaml.Node, key string, tags ...string) error {
	if n.Kind != yaml.ScalarNode || !slices.Contains(tags, n.ShortTag()) {
		want := map[string]string{"!!str": "a string", "!!int": "an integer", "!!float": "a number"}[tags[0]]
		return w.errorf(n, key, "must be %s, found %s", want, kindName(n))
	}
	return nil
}

func (w *walker) integer(n *yaml.Node, key string, lo, hi int) (int, error) {
	if err := w.scalar(n, key, "!!int"); err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil || v < int64(lo) || v > int64(hi) {
		return 0, w.errorf(n, key, "%s is out of range %d to %d", n.Value, lo, hi)
	}
	return int(v), nil
}

func (w *walker) enum(n *yaml.Node, key string, values ...string) (string, error) {
	if err := w.scalar(n, key, "!!str"); err != nil {
		return "", err
	}
	if !slices.Contains(values, n.Value) {
		return "", w.errorf(n, key, "%q is not one of %s", n.Value, strings.Join(values, ", "))
	}
	return n.Value, nil
}

func (w *walker) list(n *yaml.Node, key string, max int) error {
	if n.Kind != yaml.SequenceNode {
		return w.errorf(n, key, "must be a list, found %s", kindName(n))
	}
	if len(n.Content) > max {
		return w.errorf(n, key, "more than %d entries", max)
	}
	return nil
}

func (w *walker) driverList(n *yaml.Node, key string) ([]string, []*yaml.Node, error) {
	if err := w.list(n, key, 16); err != nil {
		return nil, nil, err
	}
	out := []string{}
	var nodes []*yaml.Node
	for i, e := range n.Content {
		ek := fmt.Sprintf("%s[%d]", key, i)
		d, err := w.driver(e, ek)
		if err != nil {
			return nil, nil, err
		}
		if j := slices.Index(out, d); j >= 0 {
			return nil, nil, w.errorf(e, ek, "%s is listed twice (first at line %d)", d, nodes[j].Line)
		}
		out = append(out, d)
		nodes = append(nodes, e)
	}
	return out, nodes, nil
}

func (w *walker) driver(n *yaml.Node, key string) (string, error) {
	if err := w.scalar(n, key, "!!str"); err != nil {
		return "", err
	}
	if _, ok := drivers.Lookup(n.Value); !ok {
		return "", w.errorf(n, key, "unknown driver %q (known: %s)", n.Value, strings.Join(drivers.Names(), ", "))
	}
	return n.Value, nil
}

var benchmarkKeys = []string{"budget", "chainLengths", "mountDepths", "copyUpSizes", "smallFiles", "statDepths", "readdirSize", "imageFiles", "samples"}

// maxDepth is Docker's overlay2 limit on stacked layers.
const maxDepth = 128

func (w *walker) benchmark(n *yaml.Node, b *Benchmark) error {
	ps, err := w.pairs(n, "benchmark", benchmarkKeys)
	if err != nil {
		return err
	}
	for _, kv := range ps {
		key, v := "benchmark."+kv[0].Value, kv[1]
		switch kv[0].Value {
		case "budget":
			if err := w.scalar(v, key, "!!str"); err != nil {
				if v.ShortTag() == "!!int" || v.ShortTag() == "!!float" {
					return w.errorf(v, key, "must be a duration with a unit, like %ss", v.Value)
				}
				return err
			}
			d, err := time.ParseDuration(v.Value)
			if err != nil {
				return w.errorf(v, key, "%q is not a duration (like 30s or 2m)", v.Value)
			}
			if d < time.Second || d > time.Hour {
				return w.errorf(v, key, "%s is out of range 1s to 1h", v.Value)
			}
			b.Budget = d
		case "copyUpSizes":
			if err := w.list(v, key, 16); err != nil {
				return err
			}
			for i, e := range v.Content {
				ek := fmt.Sprintf("%s[%d]", key, i)
				size, err := w.size(e, ek)
				if err != nil {
					return err
				}
				if slices.Contains(b.CopyUpSizes, size) {
					return w.errorf(e, ek, "%s is listed twice", e.Value)
				}
				b.CopyUpSizes = append(b.CopyUpSizes, size)
			}
		case "smallFiles":
			if b.SmallFiles, err = w.integer(v, key, 1, 1_000_000); err != nil {
				return err
			}
		case "readdirSize":
			if b.ReaddirSize, err = w.integer(v, key, 1, 1_000_000); err != nil {
				return err
			}
		case "imageFiles":
			if b.ImageFiles, err = w.integer(v, key, 1, 1_000_000); err != nil {
				return err
			}
		case "samples":
			if b.Samples, err = w.integer(v, key, 1, 100); err != nil {
				return err
			}
		case "chainLengths":
			if b.ChainLengths, err = w.intList(v, key, 1, maxDepth); err != nil {
				return err
			}
		case "mountDepths":
			if b.MountDepths, err = w.intList(v, key, 1, maxDepth); err != nil {
				return err
			}
		case "statDepths":
			if b.StatDepths, err = w.intList(v, key, 1, maxDepth); err != nil {
				return err
			}
		}
	}
	return nil
}

// intList reads a list of distinct integers in [lo, hi].
func (w *walker) intList(n *yaml.Node, key string, lo, hi int) ([]int, error) {
	if err := w.list(n, key, 16); err != nil {
		return nil, err
	}
	out := []int{}
	for i, e := range n.Content {
		ek := fmt.Sprintf("%s[%d]", key, i)
		v, err := w.integer(e, ek, lo, hi)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, v) {
			return nil, w.errorf(e, ek, "%d is listed twice", v)
		}
		out = append(out, v)
	}
	return out, nil
}

var sizeUnits = []struct {
	suffix string
	shift  uint
}{
	{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"G", 30}, {"M", 20}, {"K", 10}, {"k", 10}, {"B", 0},
}

// size reads a byte count: an integer, or a number with a binary unit.
func (w *walker) size(n *yaml.Node, key string) (int64, error) {
	if err := w.scalar(n, key, "!!int", "!!str"); err != nil {
		return 0, w.errorf(n, key, "must be a size like 4KiB or 1MiB, found %s", kindName(n))
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
	if err != nil || v < 1 || v > (1<<30)>>shift {
		if err == nil {
			return 0, w.errorf(n, key, "%s is out of range 1B to 1GiB", n.Value)
		}
		return 0, w.errorf(n, key, "%q is not a size (bytes, or a number with B, KiB, MiB or GiB)", n.Value)
	}
	return v << shift, nil
}

func (w *walker) weights(n *yaml.Node) (map[string]float64, error) {
	ps, err := w.pairs(n, "weights", Benchmarks)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	positive := false
	for _, kv := range ps {
		key, v := "weights."+kv[0].Value, kv[1]
		if err := w.scalar(v, key, "!!float", "!!int"); err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(v.Value, "_", ""), 64)
		if err != nil || math.IsNaN(f) || f < 0 || f > 1000 {
			return nil, w.errorf(v, key, "%s is out of range 0 to 1000", v.Value)
		}
		out[kv[0].Value] = f
		positive = positive || f > 0
	}
	if len(out) > 0 && !positive {
		return nil, w.errorf(n, "weights", "every weight is 0: give at least one benchmark a weight")
	}
	return out, nil
}

func (w *walker) storageOpts(n *yaml.Node) (map[string][]string, error) {
	ps, err := w.pairs(n, "storageOpts", nil)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, kv := range ps {
		key := "storageOpts." + kv[0].Value
		d, err := w.driver(kv[0], "storageOpts")
		if err != nil {
			return nil, err
		}
		v := kv[1]
		if err := w.list(v, key, 64); err != nil {
			return nil, err
		}
		opts := []string{}
		for i, e := range v.Content {
			ek := fmt.Sprintf("%s[%d]", key, i)
			if err := w.scalar(e, ek, "!!str"); err != nil {
				return nil, err
			}
			k, ok := daemonjson.OptionKey(e.Value)
			if !ok {
				return nil, w.errorf(e, ek, "%q is not in key=value form", e.Value)
			}
			if !daemonjson.OptionBelongs(d, k) {
				return nil, w.errorf(e, ek, "%s is not an option of %s: dockerd refuses another driver's options", k, d)
			}
			opts = append(opts, e.Value)
		}
		out[d] = opts
	}
	return out, nil
}
