package daemonjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

var (
	toOverlay2  = Change{Driver: "overlay2"}
	withSize    = Change{Driver: "overlay2", Opts: []string{"overlay2.size=10G"}}
	snapOff     = Change{Driver: "overlay2", Snapshotter: SnapshotterOff}
	snapOn      = Change{Driver: "overlayfs", Snapshotter: SnapshotterOn}
	snapUnset   = Change{Driver: "overlay2", Snapshotter: SnapshotterUnset}
	allChanges  = Change{Driver: "overlay2", Opts: []string{"overlay2.size=10G", "overlay2.x=1"}, Snapshotter: SnapshotterOff}
	debianStyle = "{\n\t\"debug\": 1e3,\n\t\"registry-mirrors\": [\"https://mirror.example\"],\n\t\"storage-driver\": \"aufs\",\n\t\"storage-opts\": [\"dm.basesize=20G\"],\n\t\"labels\": [\"caf\\u00e9\"]\n}\n"
)

func TestMerge(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		change  Change
		want    string
		changed bool
	}{
		{
			name: "empty file becomes a 2-space document", in: "", change: allChanges, changed: true,
			want: "{\n  \"storage-driver\": \"overlay2\",\n  \"storage-opts\": [\n    \"overlay2.size=10G\",\n    \"overlay2.x=1\"\n  ],\n  \"features\": {\n    \"containerd-snapshotter\": false\n  }\n}\n",
		},
		{
			name: "whitespace-only file", in: "\n\n", change: toOverlay2, changed: true,
			want: "{\n  \"storage-driver\": \"overlay2\"\n}\n",
		},
		{
			name: "empty object", in: "{}\n", change: withSize, changed: true,
			want: "{\n  \"storage-driver\": \"overlay2\",\n  \"storage-opts\": [\n    \"overlay2.size=10G\"\n  ]\n}\n",
		},
		{
			name: "keys appended after the others", in: "{\n  \"debug\": true,\n  \"log-opts\": {\"max-size\": \"10m\"}\n}\n", change: withSize, changed: true,
			want: "{\n  \"debug\": true,\n  \"log-opts\": {\"max-size\": \"10m\"},\n  \"storage-driver\": \"overlay2\",\n  \"storage-opts\": [\n    \"overlay2.size=10G\"\n  ]\n}\n",
		},
		{
			name: "tabs, number spelling and escapes kept", in: debianStyle, change: withSize, changed: true,
			want: "{\n\t\"debug\": 1e3,\n\t\"registry-mirrors\": [\"https://mirror.example\"],\n\t\"storage-driver\": \"overlay2\",\n\t\"storage-opts\": [\"overlay2.size=10G\"],\n\t\"labels\": [\"caf\\u00e9\"]\n}\n",
		},
		{
			name: "CRLF line ends", in: "{\r\n    \"debug\": true\r\n}\r\n", change: withSize, changed: true,
			want: "{\r\n    \"debug\": true,\r\n    \"storage-driver\": \"overlay2\",\r\n    \"storage-opts\": [\r\n        \"overlay2.size=10G\"\r\n    ]\r\n}\r\n",
		},
		{
			name: "compact one-line file", in: `{"debug":true}`, change: allChanges, changed: true,
			want: `{"debug":true,"storage-driver":"overlay2","storage-opts":["overlay2.size=10G","overlay2.x=1"],"features":{"containerd-snapshotter":false}}`,
		},
		{
			name: "spaced one-line file", in: `{ "debug": true }`, change: allChanges, changed: true,
			want: `{ "debug": true, "storage-driver": "overlay2", "storage-opts": ["overlay2.size=10G", "overlay2.x=1"], "features": {"containerd-snapshotter": false} }`,
		},
		{
			name: "byte order mark kept", in: "\xef\xbb\xbf{\"debug\": true}", change: toOverlay2, changed: true,
			want: "\xef\xbb\xbf{\"debug\": true, \"storage-driver\": \"overlay2\"}",
		},
		{
			name: "driver replaced in place", in: "{\n  \"storage-driver\": \"devicemapper\",\n  \"debug\": true\n}", change: toOverlay2, changed: true,
			want: "{\n  \"storage-driver\": \"overlay2\",\n  \"debug\": true\n}",
		},
		{
			name: "opts inserted right after the driver", in: "{\n  \"storage-driver\": \"overlay2\",\n  \"debug\": true\n}", change: withSize, changed: true,
			want: "{\n  \"storage-driver\": \"overlay2\",\n  \"storage-opts\": [\n    \"overlay2.size=10G\"\n  ],\n  \"debug\": true\n}",
		},
		{
			name: "multi-line array keeps its own layout", in: "{\n  \"storage-opts\": [\n      \"dm.basesize=1G\",\n      \"dm.fs=xfs\"\n    ],\n  \"storage-driver\": \"overlay2\"\n}", change: Change{Driver: "overlay2", Opts: []string{"overlay2.size=1G", "overlay2.y=2"}}, changed: true,
			want: "{\n  \"storage-opts\": [\n      \"overlay2.size=1G\",\n      \"overlay2.y=2\"\n    ],\n  \"storage-driver\": \"overlay2\"\n}",
		},
		{
			name: "closing bracket on the last element's line", in: "{\n  \"storage-opts\": [\n    \"dm.fs=xfs\"],\n  \"storage-driver\": \"overlay2\"\n}", change: withSize, changed: true,
			want: "{\n  \"storage-opts\": [\n    \"overlay2.size=10G\"],\n  \"storage-driver\": \"overlay2\"\n}",
		},
		{
			name: "empty multi-line array filled", in: "{\n  \"storage-driver\": \"overlay2\",\n  \"storage-opts\": [\n  ]\n}", change: withSize, changed: true,
			want: "{\n  \"storage-driver\": \"overlay2\",\n  \"storage-opts\": [\n    \"overlay2.size=10G\"\n  ]\n}",
		},
		{
			name: "one-line array keeps its separator", in: "{\n  \"storage-driver\": \"overlay2\",\n  \"storage-opts\": [\"a=1\",\"b=2\"]\n}", change: Change{Driver: "overlay2", Opts: []string{"overlay2.a=1", "overlay2.b=2"}}, changed: true,
			want: "{\n  \"storage-driver\": \"overlay2\",\n  \"storage-opts\": [\"overlay2.a=1\",\"overlay2.b=2\"]\n}",
		},
		{
			name: "null storage-opts replaced", in: `{"storage-driver": "overlay2", "storage-opts": null}`, change: withSize, changed: true,
			want: `{"storage-driver": "overlay2", "storage-opts": ["overlay2.size=10G"]}`,
		},
		{
			name: "cleared opts removed: middle member", in: "{\n  \"storage-driver\": \"aufs\",\n  \"storage-opts\": [\"dm.basesize=1G\"],\n  \"debug\": true\n}\n", change: toOverlay2, changed: true,
			want: "{\n  \"storage-driver\": \"overlay2\",\n  \"debug\": true\n}\n",
		},
		{
			name: "cleared opts removed: last member", in: "{\n  \"debug\": true,\n  \"storage-driver\": \"overlay2\",\n  \"storage-opts\": [\"dm.basesize=1G\"]\n}\n", change: toOverlay2, changed: true,
			want: "{\n  \"debug\": true,\n  \"storage-driver\": \"overlay2\"\n}\n",
		},
		{
			name: "cleared opts removed: first member", in: `{"storage-opts": ["dm.basesize=1G"], "storage-driver": "overlay2"}`, change: toOverlay2, changed: true,
			want: `{"storage-driver": "overlay2"}`,
		},
		{
			name: "someone else's empty opts left alone", in: `{"storage-driver": "overlay2", "storage-opts": []}`, change: toOverlay2, changed: false,
			want: `{"storage-driver": "overlay2", "storage-opts": []}`,
		},
		{
			name: "same value spelled with escapes is not rewritten", in: `{"storage-driver": "over\u006cay2", "storage-opts": ["overlay2.size=10\u0047"]}`, change: withSize, changed: false,
			want: `{"storage-driver": "over\u006cay2", "storage-opts": ["overlay2.size=10\u0047"]}`,
		},
		{
			name: "features added", in: "{\n  \"storage-driver\": \"overlay2\"\n}\n", change: snapOff, changed: true,
			want: "{\n  \"storage-driver\": \"overlay2\",\n  \"features\": {\n    \"containerd-snapshotter\": false\n  }\n}\n",
		},
		{
			name: "snapshotter added to existing features", in: "{\n  \"features\": {\n    \"buildkit\": true\n  },\n  \"storage-driver\": \"overlay2\"\n}", change: snapOff, changed: true,
			want: "{\n  \"features\": {\n    \"buildkit\": true,\n    \"containerd-snapshotter\": false\n  },\n  \"storage-driver\": \"overlay2\"\n}",
		},
		{
			name: "snapshotter added to one-line features", in: `{"features": {"buildkit": true}, "storage-driver": "overlay2"}`, change: snapOff, changed: true,
			want: `{"features": {"buildkit": true, "containerd-snapshotter": false}, "storage-driver": "overlay2"}`,
		},
		{
			name: "snapshotter added to empty features", in: "{\n  \"features\": {},\n  \"storage-driver\": \"overlay2\"\n}", change: snapOff, changed: true,
			want: "{\n  \"features\": {\n    \"containerd-snapshotter\": false\n  },\n  \"storage-driver\": \"overlay2\"\n}",
		},
		{
			name: "snapshotter flipped in place", in: `{"features": {"containerd-snapshotter": false}, "storage-driver": "overlay2"}`, change: snapOn, changed: true,
			want: `{"features": {"containerd-snapshotter": true}, "storage-driver": "overlayfs"}`,
		},
		{
			name: "null features replaced", in: `{"features": null, "storage-driver": "overlay2"}`, change: snapOff, changed: true,
			want: `{"features": {"containerd-snapshotter": false}, "storage-driver": "overlay2"}`,
		},
		{
			name: "unset removes features it empties", in: "{\n  \"features\": {\"containerd-snapshotter\": true},\n  \"storage-driver\": \"overlay2\"\n}", change: snapUnset, changed: true,
			want: "{\n  \"storage-driver\": \"overlay2\"\n}",
		},
		{
			name: "unset keeps other features", in: `{"storage-driver": "overlay2", "features": {"containerd-snapshotter": true, "buildkit": true}}`, change: snapUnset, changed: true,
			want: `{"storage-driver": "overlay2", "features": {"buildkit": true}}`,
		},
		{
			name: "unset leaves someone else's empty features", in: `{"storage-driver": "overlay2", "features": {}}`, change: snapUnset, changed: false,
			want: `{"storage-driver": "overlay2", "features": {}}`,
		},
		{
			name: "keep does not touch features", in: `{"storage-driver": "vfs", "features": {"containerd-snapshotter": true}}`, change: toOverlay2, changed: true,
			want: `{"storage-driver": "overlay2", "features": {"containerd-snapshotter": true}}`,
		},
		{
			name: "driver with characters needing escapes", in: `{}`, change: Change{Driver: "a\"b<&>"}, changed: true,
			want: "{\n  \"storage-driver\": \"a\\\"b<&>\"\n}",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed, err := Merge([]byte(tt.in), tt.change)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want || changed != tt.changed {
				t.Fatalf("Merge(%q)\n got: changed=%v %q\nwant: changed=%v %q", tt.in, changed, out, tt.changed, tt.want)
			}
			if err := checkMerge([]byte(tt.in), tt.change, out); err != nil {
				t.Fatal(err)
			}
			again, changed, err := Merge(out, tt.change)
			if err != nil || changed || !bytes.Equal(again, out) {
				t.Fatalf("second merge: changed=%v err=%v\n%q", changed, err, again)
			}
		})
	}
}

func TestMergeErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		change Change
		want   string
	}{
		{"no driver", `{}`, Change{}, "merge daemon.json: no storage driver given"},
		{"bad snapshotter change", `{}`, Change{Driver: "vfs", Snapshotter: 7}, "merge daemon.json: invalid snapshotter change 7"},
		{"bad document", `{"a":}`, toOverlay2, "parse daemon.json: line 1, column 6: invalid character '}' looking for beginning of value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, changed, err := Merge([]byte(tt.in), tt.change)
			if err == nil || err.Error() != tt.want || out != nil || changed {
				t.Fatalf("got %q %v %v, want error %s", out, changed, err, tt.want)
			}
		})
	}
}

// checkMerge is the property every merge must have: the result parses
// (with this package and with encoding/json), holds exactly the change,
// and every other key keeps its bytes and its order.
func checkMerge(orig []byte, c Change, out []byte) error {
	d, err := Parse("out", out)
	if err != nil {
		return fmt.Errorf("result does not parse: %v\n%q", err, out)
	}
	if !json.Valid(bytes.TrimPrefix(out, bomUTF8)) {
		return fmt.Errorf("encoding/json refuses the result %q", out)
	}
	if d.StorageDriver != c.Driver {
		return fmt.Errorf("storage-driver %q, want %q", d.StorageDriver, c.Driver)
	}
	if len(c.Opts) > 0 && !slices.Equal(d.StorageOpts, c.Opts) {
		return fmt.Errorf("storage-opts %q, want %q", d.StorageOpts, c.Opts)
	}
	if len(c.Opts) == 0 && len(d.StorageOpts) != 0 {
		return fmt.Errorf("storage-opts %q, want none", d.StorageOpts)
	}
	switch c.Snapshotter {
	case SnapshotterOn, SnapshotterOff:
		if d.Snapshotter == nil || *d.Snapshotter != (c.Snapshotter == SnapshotterOn) {
			return fmt.Errorf("snapshotter %v, want %v", d.Snapshotter, c.Snapshotter)
		}
	case SnapshotterUnset:
		if d.Snapshotter != nil {
			return fmt.Errorf("snapshotter %v, want unset", *d.Snapshotter)
		}
	}
	before, err := walkOthers(orig)
	if err != nil {
		return fmt.Errorf("walk original: %v", err)
	}
	after, err := walkOthers(out)
	if err != nil {
		return fmt.Errorf("walk result: %v", err)
	}
	if !slices.Equal(before, after) {
		return fmt.Errorf("other keys changed:\nbefore %q\nafter  %q", before, after)
	}
	return nil
}

// walkOthers lists "key=raw value" for every top-level key but the storage
// keys, and "features.key=raw" for every feature but the snapshotter, in
// order, using encoding/json's token stream: an implementation independent
// of this package's parser.
func walkOthers(doc []byte) ([]string, error) {
	doc = bytes.TrimPrefix(doc, bomUTF8)
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, nil
	}
	members, err := rawMembers(doc)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range members {
		switch m[0] {
		case KeyStorageDriver, KeyStorageOpts:
			continue
		case KeyFeatures:
			if bytes.Equal(bytes.TrimSpace([]byte(m[1])), []byte("null")) {
				continue
			}
			inner, err := rawMembers([]byte(m[1]))
			if err != nil {
				return nil, err
			}
			for _, im := range inner {
				if im[0] != KeySnapshotter {
					out = append(out, "features."+im[0]+"="+im[1])
				}
			}
			continue
		}
		out = append(out, m[0]+"="+m[1])
	}
	return out, nil
}

func rawMembers(obj []byte) ([][2]string, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not an object: %v %v", tok, err)
	}
	var out [][2]string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		out = append(out, [2]string{tok.(string), string(raw)})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data: %v", err)
	}
	return out, nil
}

func TestMergeKeepsLargeDocuments(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("{\n")
	for i := range 500 {
		fmt.Fprintf(&sb, "  \"k%d\": {\"n\": %d.50e-3, \"s\": \"\\u00e9\\t%d\", \"a\": [true, false, null]},\n", i, i, i)
	}
	sb.WriteString("  \"storage-driver\": \"btrfs\"\n}\n")
	in := []byte(sb.String())
	out, changed, err := Merge(in, allChanges)
	if err != nil || !changed {
		t.Fatal(changed, err)
	}
	if err := checkMerge(in, allChanges, out); err != nil {
		t.Fatal(err)
	}
}
