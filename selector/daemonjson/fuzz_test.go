package daemonjson

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	"",
	"{}",
	debianStyle,
	"{\r\n  \"storage-opts\": [\r\n    \"dm.basesize=1G\"\r\n  ],\r\n  \"features\": {\"containerd-snapshotter\": true, \"buildkit\": false}\r\n}",
	`{"storage-driver":"overlay2","storage-opts":[],"x":[1,{"y":null}]}`,
	"\xef\xbb\xbf{ \"features\": {}, \"n\": -0.5E+2 }",
	`{"a":"\ud83d\ude00\u0000"}`,
}

// FuzzParse checks that Parse never panics, and that whatever it accepts
// encoding/json accepts too.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("fuzz", data)
		if err != nil {
			var pe *ParseError
			if !asParseError(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			return
		}
		body := bytes.TrimPrefix(data, bomUTF8)
		if len(bytes.TrimSpace(body)) == 0 {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("Parse accepted what encoding/json refuses: %v\n%q", err, data)
		}
		if len(d.Keys) != len(m) {
			t.Fatalf("%d keys, encoding/json saw %d", len(d.Keys), len(m))
		}
	})
}

// FuzzMerge checks the merge property (see checkMerge) on arbitrary
// documents and changes, and that a second merge changes nothing.
func FuzzMerge(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add([]byte(s), "overlay2", "overlay2.size=10G\noverlay2.x=1", uint8(i%4))
	}
	f.Add([]byte(`{"storage-driver":"vfs"}`), "btrfs", "", uint8(3))
	f.Fuzz(func(t *testing.T, doc []byte, driver, opts string, snap uint8) {
		if _, err := Parse("fuzz", doc); err != nil {
			return
		}
		var c Change
		c.Driver = driver
		if opts != "" {
			c.Opts = strings.Split(opts, "\n")
		}
		c.Snapshotter = SnapshotterChange(snap % 4)
		out, changed, err := Merge(doc, c)
		if driver == "" || !utf8.ValidString(driver) || !utf8.ValidString(opts) {
			if err == nil {
				t.Fatalf("invalid change %+v accepted", c)
			}
			return
		}
		if err != nil {
			if len(doc)+len(driver)+len(opts) > MaxSize/2 {
				return // the result may exceed MaxSize
			}
			t.Fatalf("Merge: %v", err)
		}
		if changed == bytes.Equal(out, doc) {
			t.Fatalf("changed=%v but equal=%v", changed, bytes.Equal(out, doc))
		}
		if err := checkMerge(doc, c, out); err != nil {
			t.Fatalf("%v\ninput %q\nchange %+v", err, doc, c)
		}
		again, changed, err := Merge(out, c)
		if err != nil || changed || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: changed=%v err=%v\n%q\n%q", changed, err, out, again)
		}
	})
}

func asParseError(err error, target **ParseError) bool {
	pe, ok := err.(*ParseError)
	*target = pe
	return ok
}
