package daemonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// SnapshotterChange says what Merge does to features.containerd-snapshotter.
type SnapshotterChange int

const (
	// SnapshotterKeep leaves the key as it is (the zero value).
	SnapshotterKeep SnapshotterChange = iota
	// SnapshotterOn sets it to true: the containerd image store.
	SnapshotterOn
	// SnapshotterOff sets it to false: the graph driver image store.
	SnapshotterOff
	// SnapshotterUnset removes it (and "features" when that leaves it
	// empty), so that Docker's default applies.
	SnapshotterUnset
)

func (c SnapshotterChange) String() string {
	switch c {
	case SnapshotterKeep:
		return "keep"
	case SnapshotterOn:
		return "on"
	case SnapshotterOff:
		return "off"
	case SnapshotterUnset:
		return "unset"
	}
	return fmt.Sprintf("SnapshotterChange(%d)", int(c))
}

// Change is what graphprobe decided: the only keys Merge touches.
type Change struct {
	// Driver is the storage-driver value: a graph driver name, or on the
	// containerd image store a snapshotter name. Required.
	Driver string
	// Opts is the whole storage-opts list (see StorageOpts to compute it).
	// Empty removes a non-empty storage-opts key; an empty array someone
	// else wrote is left alone.
	Opts []string
	// Snapshotter is the change to features.containerd-snapshotter (the
	// selector's image-store rules decide it).
	Snapshotter SnapshotterChange
}

// Merge applies change to the daemon.json bytes orig. See Document.Merge.
func Merge(orig []byte, change Change) (out []byte, changed bool, err error) {
	d, err := Parse("daemon.json", orig)
	if err != nil {
		return nil, false, err
	}
	return d.Merge(change)
}

// Merge returns the document with change applied. Only storage-driver,
// storage-opts and features.containerd-snapshotter change; every other
// byte outside them stays as it was. New keys go at the end of their object
// (storage-opts right after storage-driver), indented like their
// neighbours; an empty document becomes a 2-space indented object with a
// trailing newline. A value already equal in meaning is not rewritten, so
// merging the same change twice returns changed == false and the input
// bytes.
func (d *Document) Merge(change Change) (out []byte, changed bool, err error) {
	if change.Driver == "" {
		return nil, false, errors.New("merge daemon.json: no storage driver given")
	}
	if change.Snapshotter < SnapshotterKeep || change.Snapshotter > SnapshotterUnset {
		return nil, false, fmt.Errorf("merge daemon.json: invalid snapshotter change %d", int(change.Snapshotter))
	}
	if !utf8.ValidString(change.Driver) {
		return nil, false, fmt.Errorf("merge daemon.json: storage driver %q is not valid UTF-8", change.Driver)
	}
	for _, o := range change.Opts {
		if !utf8.ValidString(o) {
			return nil, false, fmt.Errorf("merge daemon.json: storage option %q is not valid UTF-8", o)
		}
	}
	e := &editor{name: d.Name, buf: d.raw, root: d.root, bomLen: d.bomLen}
	if e.root == nil {
		// An empty file: start from an empty object in the house style.
		e.buf = append(append(append([]byte{}, d.raw[:d.bomLen]...), "{}"...), '\n')
		if err := e.reparse(); err != nil {
			return nil, false, err
		}
	}
	e.style = detectStyle(e.buf, e.root)

	steps := []func(Change) error{e.setDriver, e.setOpts, e.setSnapshotter}
	for _, step := range steps {
		if err := step(change); err != nil {
			return nil, false, err
		}
	}
	if bytes.Equal(e.buf, d.raw) {
		return d.raw, false, nil
	}
	return e.buf, true, nil
}

// editor splices values into a document, re-parsing after each splice so
// that every position it uses is fresh.
type editor struct {
	name   string
	buf    []byte
	root   *value
	bomLen int
	style  style
}

func (e *editor) splice(start, end int, repl string) error {
	nb := make([]byte, 0, len(e.buf)-(end-start)+len(repl))
	nb = append(nb, e.buf[:start]...)
	nb = append(nb, repl...)
	nb = append(nb, e.buf[end:]...)
	e.buf = nb
	return e.reparse()
}

func (e *editor) reparse() error {
	root, _, err := parseDocument(e.name, e.buf)
	if err != nil {
		// Only a value we produced could break the document.
		return fmt.Errorf("merge %s: edited document does not parse: %w", e.name, err)
	}
	e.root = root
	return nil
}

func (e *editor) setDriver(c Change) error {
	_, m := e.root.lookup(KeyStorageDriver)
	if m != nil {
		if m.val.kind == kindString && m.val.str == c.Driver {
			return nil
		}
		return e.splice(m.val.start, m.val.end, encodeString(c.Driver))
	}
	return e.appendMember(e.root, 1, KeyStorageDriver, encodeString(c.Driver), -1)
}

func (e *editor) setOpts(c Change) error {
	i, m := e.root.lookup(KeyStorageOpts)
	if m == nil || m.val.kind == kindNull {
		if len(c.Opts) == 0 {
			return nil
		}
		if m != nil {
			return e.splice(m.val.start, m.val.end, e.style.array(c.Opts, 1, nil, e.buf))
		}
		after, _ := e.root.lookup(KeyStorageDriver)
		return e.appendMember(e.root, 1, KeyStorageOpts, e.style.array(c.Opts, 1, nil, e.buf), after)
	}
	cur := make([]string, 0, len(m.val.elems))
	for _, el := range m.val.elems {
		cur = append(cur, el.str)
	}
	if len(c.Opts) == 0 {
		if len(cur) == 0 {
			return nil // someone else's empty list
		}
		return e.removeMember(e.root, i)
	}
	if slices.Equal(cur, c.Opts) {
		return nil
	}
	return e.splice(m.val.start, m.val.end, e.style.array(c.Opts, 1, m.val, e.buf))
}

func (e *editor) setSnapshotter(c Change) error {
	if c.Snapshotter == SnapshotterKeep {
		return nil
	}
	fi, f := e.root.lookup(KeyFeatures)
	if c.Snapshotter == SnapshotterUnset {
		if f == nil || f.val.kind != kindObject {
			return nil
		}
		si, s := f.val.lookup(KeySnapshotter)
		if s == nil {
			return nil
		}
		if len(f.val.members) == 1 {
			return e.removeMember(e.root, fi)
		}
		return e.removeMember(f.val, si)
	}
	want := c.Snapshotter == SnapshotterOn
	lit := "false"
	if want {
		lit = "true"
	}
	if f == nil || f.val.kind == kindNull {
		obj := e.style.object(KeySnapshotter, lit, 1)
		if f != nil {
			return e.splice(f.val.start, f.val.end, obj)
		}
		return e.appendMember(e.root, 1, KeyFeatures, obj, -1)
	}
	_, s := f.val.lookup(KeySnapshotter)
	if s != nil {
		if s.val.kind == kindBool && s.val.b == want {
			return nil
		}
		return e.splice(s.val.start, s.val.end, lit)
	}
	return e.appendMember(f.val, 2, KeySnapshotter, lit, -1)
}

// appendMember inserts key: val into obj (at nesting level, top level = 1)
// after member index after, or at the end when after is -1.
func (e *editor) appendMember(obj *value, level int, key, val string, after int) error {
	enc := encodeString(key) + e.style.colon + val
	if len(obj.members) == 0 {
		inner := enc
		if e.style.multiline {
			inner = e.style.nl + e.style.indent(level) + enc + e.style.nl + e.style.indent(level-1)
		}
		return e.splice(obj.start+1, obj.end-1, inner)
	}
	if after < 0 {
		after = len(obj.members) - 1
	}
	at := obj.members[after].val.end
	return e.splice(at, at, ","+e.memberSep(obj)+enc)
}

// memberSep is the whitespace that goes before a member's key in obj: what
// follows the first comma, or what precedes the only member.
func (e *editor) memberSep(obj *value) string {
	ms := obj.members
	if len(ms) > 1 {
		between := e.buf[ms[0].val.end:ms[1].keyStart]
		return string(between[bytes.IndexByte(between, ',')+1:])
	}
	sep := string(e.buf[obj.start+1 : ms[0].keyStart])
	if sep == "" && strings.Contains(e.style.colon, " ") {
		sep = " "
	}
	return sep
}

// removeMember deletes member i of obj with the separator that belongs to
// it, so that the neighbours keep their own layout.
func (e *editor) removeMember(obj *value, i int) error {
	ms := obj.members
	switch {
	case len(ms) == 1:
		return e.splice(obj.start+1, obj.end-1, "")
	case i < len(ms)-1:
		return e.splice(ms[i].keyStart, ms[i+1].keyStart, "")
	default:
		return e.splice(ms[i-1].val.end, ms[i].val.end, "")
	}
}

// style is the layout of an existing document, copied into new values.
type style struct {
	multiline bool
	nl        string // "\n" or "\r\n"
	unit      string // one level of indentation
	colon     string // between a key and its value: ":" or ": "
	comma     string // between array elements on one line
}

// detectStyle reads the layout from the top-level object's first member.
// An object with no members gets the house style: 2 spaces, one key a line.
func detectStyle(buf []byte, root *value) style {
	s := style{multiline: true, nl: "\n", unit: "  ", colon: ": ", comma: ", "}
	if root == nil || len(root.members) == 0 {
		return s
	}
	first := root.members[0]
	lead := string(buf[root.start+1 : first.keyStart])
	if s.colon = string(buf[first.keyEnd:first.val.start]); strings.ContainsAny(s.colon, "\r\n") {
		s.colon = ": "
	}
	if !strings.ContainsAny(s.colon, " \t") {
		s.comma = ","
	}
	nl := strings.LastIndexByte(lead, '\n')
	if nl < 0 {
		s.multiline = false
		return s
	}
	if nl > 0 && lead[nl-1] == '\r' {
		s.nl = "\r\n"
	}
	if u := lead[nl+1:]; u != "" {
		s.unit = u
	}
	return s
}

func (s style) indent(level int) string {
	if level <= 0 {
		return ""
	}
	return strings.Repeat(s.unit, level)
}

// array formats opts as the value of a member at level. When it replaces
// an existing array, that array's own layout wins.
func (s style) array(opts []string, level int, old *value, buf []byte) string {
	multiline, elemIndent, closeIndent, comma := s.multiline, s.indent(level+1), s.nl+s.indent(level), s.comma
	if old != nil {
		multiline = bytes.ContainsRune(buf[old.start:old.end], '\n')
		innerEnd := old.start + 1
		if len(old.elems) > 0 {
			lead := buf[old.start+1 : old.elems[0].start]
			elemIndent = string(lead[bytes.LastIndexByte(lead, '\n')+1:])
			innerEnd = old.elems[len(old.elems)-1].end
		}
		// What stands between the last element and "]": whitespace, a
		// newline when the bracket has a line of its own.
		tail := buf[innerEnd : old.end-1]
		if i := bytes.LastIndexByte(tail, '\n'); i >= 0 {
			closeIndent = s.nl + string(tail[i+1:])
		} else {
			closeIndent = string(tail)
		}
		if !multiline && len(old.elems) > 1 {
			comma = string(buf[old.elems[0].end:old.elems[1].start])
		}
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, o := range opts {
		if multiline {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(s.nl + elemIndent)
		} else if i > 0 {
			b.WriteString(comma)
		}
		b.WriteString(encodeString(o))
	}
	if multiline {
		b.WriteString(closeIndent)
	}
	b.WriteByte(']')
	return b.String()
}

// object formats {key: lit} as the value of a member at level.
func (s style) object(key, lit string, level int) string {
	if !s.multiline {
		return "{" + encodeString(key) + s.colon + lit + "}"
	}
	return "{" + s.nl + s.indent(level+1) + encodeString(key) + s.colon + lit + s.nl + s.indent(level) + "}"
}

// encodeString quotes s as encoding/json does, without escaping <, > and &
// (dockerd does not care, and people read this file).
func encodeString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
