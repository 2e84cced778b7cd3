package daemonjson

import (
	"fmt"
)

// Document is a parsed daemon.json: the values graphprobe reads, and the
// original bytes with their positions so that Merge can edit them in place.
type Document struct {
	// Name is used in error messages: the path the bytes came from.
	Name string

	// StorageDriver is "storage-driver"; HasStorageDriver is false when the
	// key is absent or null.
	StorageDriver    string
	HasStorageDriver bool
	// StorageOpts is "storage-opts"; HasStorageOpts is false when the key
	// is absent or null (an empty array is present).
	StorageOpts    []string
	HasStorageOpts bool
	// DataRoot is "data-root", or the legacy "graph" when data-root is
	// absent: Docker before 23.0 reads either.
	DataRoot string
	// Snapshotter is features.containerd-snapshotter, nil when not set.
	Snapshotter *bool
	// Keys are the top-level keys in file order.
	Keys []string

	raw    []byte
	root   *value // nil for an empty document
	bomLen int
}

// Parse reads a daemon.json. name labels errors (use the path). An empty or
// whitespace-only document is {}.
func Parse(name string, data []byte) (*Document, error) {
	root, bomLen, perr := parseDocument(name, data)
	if perr != nil {
		return nil, perr
	}
	d := &Document{Name: name, raw: data, root: root, bomLen: bomLen}
	if root == nil {
		return d, nil
	}
	for _, m := range root.members {
		d.Keys = append(d.Keys, m.key)
	}
	if err := d.readKeys(); err != nil {
		return nil, err
	}
	return d, nil
}

// Bytes returns the document's original bytes.
func (d *Document) Bytes() []byte { return d.raw }

func (d *Document) typeError(v *value, key, want string) error {
	line, col := position(d.raw, v.start)
	return &ParseError{Name: d.Name, Line: line, Column: col, Offset: v.start,
		Msg: fmt.Sprintf("%s must be %s, found %s", key, want, kindNames[v.kind])}
}

func (d *Document) readKeys() error {
	if _, m := d.root.lookup(KeyStorageDriver); m != nil && m.val.kind != kindNull {
		if m.val.kind != kindString {
			return d.typeError(m.val, KeyStorageDriver, "a string")
		}
		d.StorageDriver, d.HasStorageDriver = m.val.str, true
	}
	if _, m := d.root.lookup(KeyStorageOpts); m != nil && m.val.kind != kindNull {
		if m.val.kind != kindArray {
			return d.typeError(m.val, KeyStorageOpts, "an array of strings")
		}
		d.HasStorageOpts = true
		d.StorageOpts = []string{}
		for i, e := range m.val.elems {
			if e.kind != kindString {
				return d.typeError(e, fmt.Sprintf("%s[%d]", KeyStorageOpts, i), "a string")
			}
			d.StorageOpts = append(d.StorageOpts, e.str)
		}
	}
	for _, key := range []string{KeyGraph, KeyDataRoot} {
		if _, m := d.root.lookup(key); m != nil && m.val.kind != kindNull {
			if m.val.kind != kindString {
				return d.typeError(m.val, key, "a string")
			}
			if m.val.str != "" {
				d.DataRoot = m.val.str
			}
		}
	}
	if _, m := d.root.lookup(KeyFeatures); m != nil && m.val.kind != kindNull {
		if m.val.kind != kindObject {
			return d.typeError(m.val, KeyFeatures, "an object")
		}
		// null is refused here: encoding/json stores it in dockerd's
		// map[string]bool as an explicit false.
		if _, s := m.val.lookup(KeySnapshotter); s != nil {
			if s.val.kind != kindBool {
				return d.typeError(s.val, KeyFeatures+"."+KeySnapshotter, "true or false")
			}
			b := s.val.b
			d.Snapshotter = &b
		}
	}
	return nil
}
