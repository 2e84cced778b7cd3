package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"gopkg.in/yaml.v3"
)

// Limits of what Parse accepts: a policy is a few dozen lines.
const (
	MaxSize  = 64 << 10
	MaxDepth = 8
	// maxKeys bounds a mapping before yaml.v3 decodes it: its duplicate-key
	// check compares every pair of keys and records an error for every
	// equal pair, which for 64 KiB of "a: 1" lines is billions of
	// comparisons and gigabytes of messages. The largest mapping a policy
	// has is benchmark's nine keys.
	maxKeys = 64
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
// The list is read from weightsDoc, so that it cannot drift from the keys
// a policy accepts.
var Benchmarks = keysOf(reflect.TypeFor[weightsDoc]())

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
//
// yaml.v3 parses the document twice: first into a node tree, which check
// inspects for what decoding must not see and which later names the key
// of an error; then with KnownFields into document, whose field types
// check their own values. Twice, because KnownFields is a Decoder's
// option that Node.Decode does not have; a policy is small.
func Parse(name string, data []byte) (*Policy, error) {
	p, err := parse(data)
	if pe := (*Error)(nil); errors.As(err, &pe) {
		pe.Name = name
	}
	return p, err
}

func parse(data []byte) (*Policy, error) {
	if len(data) > MaxSize {
		return nil, &Error{Msg: fmt.Sprintf("file is over %d KiB; a policy is a few dozen lines", MaxSize>>10)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &Policy{}, nil
		}
		return nil, syntaxError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(err)
		}
		return nil, &Error{Line: extra.Line, Column: extra.Column, Msg: "more than one YAML document; a policy is one"}
	}
	// A key without a value is reported only when decoding finds nothing
	// else: "strategie:" is better told as an unknown key.
	var valueless error
	if err := walk(&doc, "", 0, func(n *yaml.Node, path string, depth int) error {
		return check(n, path, depth, &valueless)
	}); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
		return &Policy{}, nil
	}
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f document
	if err := dec.Decode(&f); err != nil {
		return nil, decodeError(&doc, err)
	}
	if valueless != nil {
		return nil, valueless
	}
	return f.policy(&doc)
}

// check refuses at node n what decoding must not see: anchors and aliases
// (yaml.v3 would expand them), keys that are not strings (a "<<" merge key
// would merge), repeated keys, more than maxKeys keys and nesting past
// MaxDepth. The first key without a value goes to valueless: yaml.v3
// decodes null as the zero value, and "strategy:" must not read as unset.
func check(n *yaml.Node, path string, depth int, valueless *error) error {
	if depth > MaxDepth+1 { // +1: the document node
		return errAt(n, "", "nesting deeper than %d levels is refused", MaxDepth)
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return errAt(n, "", "anchors and aliases are not supported in a policy")
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	if len(n.Content) > 2*maxKeys {
		return errAt(n, path, "more than %d keys", maxKeys)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return errAt(k, path, "keys must be strings, found %s", kindName(k))
		}
		for j := 0; j < i; j += 2 {
			if prev := n.Content[j]; prev.Value == k.Value {
				return errAt(k, join(path, k.Value), "duplicate key (first at line %d)", prev.Line)
			}
		}
		if n.Content[i+1].ShortTag() == "!!null" && *valueless == nil {
			*valueless = errAt(k, join(path, k.Value), "no value: give one or leave the key out")
		}
	}
	return nil
}

// walk calls visit for n and each node below it, outermost first, with
// its key's dotted path ("benchmark.budget", "priority[1]"; a mapping's
// keys have the mapping's path) and its depth, until visit fails.
func walk(n *yaml.Node, path string, depth int, visit func(n *yaml.Node, path string, depth int) error) error {
	if err := visit(n, path, depth); err != nil {
		return err
	}
	for i, c := range n.Content {
		cp := path
		switch {
		case n.Kind == yaml.SequenceNode:
			cp = path + "[" + strconv.Itoa(i) + "]"
		case n.Kind == yaml.MappingNode && i%2 == 1:
			cp = join(path, n.Content[i-1].Value)
		}
		if err := walk(c, cp, depth+1, visit); err != nil {
			return err
		}
	}
	return nil
}

// find returns the first node of doc, outermost first, that match
// accepts, and its path.
func find(doc *yaml.Node, match func(n *yaml.Node, path string) bool) (*yaml.Node, string) {
	var found *yaml.Node
	var at string
	stop := errors.New("found")
	walk(doc, "", 0, func(n *yaml.Node, path string, _ int) error {
		if !match(n, path) {
			return nil
		}
		found, at = n, path
		return stop
	})
	return found, at
}

// at returns the value at the dotted path in doc ("" is the top-level
// mapping).
func at(doc *yaml.Node, path string) *yaml.Node {
	n, _ := find(doc, func(n *yaml.Node, p string) bool { return p == path && n.Kind != yaml.DocumentNode })
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func errAt(n *yaml.Node, key, format string, args ...any) error {
	return &Error{Line: n.Line, Column: n.Column, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// syntaxError turns a yaml.v3 error ("yaml: line 3: mapping values are not
// allowed in this context") into an Error.
func syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line, msg = v, after
			}
		}
	}
	// yaml.v3 stops at 10000 levels of nesting (64 KiB holds more); it
	// leaves out the line number when it is the first line.
	if strings.HasPrefix(msg, "exceeded max depth") {
		line, msg = max(line, 1), fmt.Sprintf("nesting deeper than %d levels is refused", MaxDepth)
	}
	if line > 0 {
		return &Error{Line: line, Column: 1, Msg: msg}
	}
	return &Error{Msg: msg}
}

var (
	lineMsg      = regexp.MustCompile(`(?s)^line (\d+)(?:, column (\d+))?: (.*)$`)
	unknownField = regexp.MustCompile(`^field (.*) not found in type (\S+)$`)
	wrongKind    = regexp.MustCompile(`(?s)^cannot unmarshal \S+ .*into (\S+)$`)
)

// decodeError turns the first error of decoding doc into an Error that
// names its key. A field type's error (see bad) is located by its
// position, which both parses agree on. yaml.v3's own errors (an unknown
// key; a mapping given another kind) carry only a line and a Go type,
// which places turns into a key.
func decodeError(doc *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) == 0 {
		return syntaxError(err)
	}
	m := lineMsg.FindStringSubmatch(te.Errors[0])
	if m == nil {
		return &Error{Msg: te.Errors[0]}
	}
	line, _ := strconv.Atoi(m[1])
	if col, err := strconv.Atoi(m[2]); err == nil {
		_, key := find(doc, func(n *yaml.Node, _ string) bool { return n.Line == line && n.Column == col })
		return &Error{Line: line, Column: col, Key: key, Msg: m[3]}
	}
	if u := unknownField.FindStringSubmatch(m[3]); u != nil {
		if pl, ok := places[u[2]]; ok {
			if k, _ := find(doc, func(n *yaml.Node, p string) bool { return n.Kind == yaml.ScalarNode && p == pl.key && n.Value == u[1] }); k != nil {
				return errAt(k, join(pl.key, u[1]), "unknown key (known: %s)", strings.Join(keysOf(pl.t), ", "))
			}
		}
	}
	if w := wrongKind.FindStringSubmatch(m[3]); w != nil {
		if pl, ok := places[w[1]]; ok {
			if n := at(doc, pl.key); n != nil {
				return errAt(n, pl.key, "must be a mapping, found %s", kindName(n))
			}
		}
	}
	return &Error{Line: line, Column: 1, Msg: m[3]}
}

// place is where a Go type that yaml.v3 names in its messages sits.
type place struct {
	key string
	t   reflect.Type
}

// places holds document and the types of its mapping fields, by the
// names yaml.v3 gives them.
var places = func() map[string]place {
	t := reflect.TypeFor[document]()
	m := map[string]place{t.String(): {"", t}}
	for i := range t.NumField() {
		f := t.Field(i)
		if ft := f.Type; ft.Kind() == reflect.Struct || ft.Kind() == reflect.Map {
			m[ft.String()] = place{f.Tag.Get("yaml"), ft}
		} else if ft.Kind() == reflect.Pointer {
			m[ft.Elem().String()] = place{f.Tag.Get("yaml"), ft.Elem()}
		}
	}
	return m
}()

func keysOf(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		out = append(out, t.Field(i).Tag.Get("yaml"))
	}
	return out
}

var kindNames = map[string]string{"!!map": "a mapping", "!!seq": "a list", "!!str": "a string",
	"!!int": "an integer", "!!float": "a number", "!!bool": "a boolean", "!!null": "null"}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if s, ok := kindNames[n.ShortTag()]; ok {
		return s
	}
	return "a " + strings.TrimPrefix(n.ShortTag(), "!!")
}
