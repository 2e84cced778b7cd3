package reliability

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/selector/daemonjson"
	"github.com/graphprobe/graphprobe/selector/policy"
)

// parseDeadline bounds one parse. It only catches a hang; the figures are
// logged, not asserted.
const parseDeadline = 20 * time.Second

// cost is what one call cost.
type cost struct {
	dur     time.Duration
	bytes   uint64
	mallocs uint64
}

// measureCall runs fn once on a goroutine with a deadline and returns its
// cost: wall time and the bytes and objects it allocated (MemStats deltas;
// nothing else runs in this test process meanwhile).
func measureCall(t *testing.T, what string, fn func()) cost {
	t.Helper()
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(parseDeadline):
		t.Fatalf("%s did not return within %v", what, parseDeadline)
	}
	c := cost{dur: time.Since(start)}
	runtime.ReadMemStats(&m1)
	c.bytes, c.mallocs = m1.TotalAlloc-m0.TotalAlloc, m1.Mallocs-m0.Mallocs
	return c
}

// TestDaemonJSONParserRejects: wrong types, duplicate keys, oversized and
// deeply nested documents and broken encodings are refused with a message
// and the line and column of the offending byte. Unknown keys are not
// refused: daemon.json belongs to dockerd, which has a hundred keys
// graphprobe does not know and must keep (dockerd itself rejects the keys
// it does not know).
func TestDaemonJSONParserRejects(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      string // the whole message, after "parse daemon.json: "
	}{
		{"storage-driver a number", "{\"storage-driver\": 1}", `line 1, column 20: storage-driver must be a string, found a number`},
		{"storage-opts a string", "{\n  \"storage-opts\": \"overlay2.size=1G\"\n}", `line 2, column 19: storage-opts must be an array of strings, found a string`},
		{"storage-opts element", "{\"storage-opts\": [\"a=1\", 2]}", `line 1, column 26: storage-opts[1] must be a string, found a number`},
		{"data-root a boolean", "{\"data-root\": true}", `line 1, column 15: data-root must be a string, found a boolean`},
		{"features an array", "{\"features\": []}", `line 1, column 14: features must be an object, found an array`},
		{"snapshotter a string", "{\"features\": {\"containerd-snapshotter\": \"yes\"}}", `line 1, column 41: features.containerd-snapshotter must be true or false, found a string`},
		{"duplicate key", "{\n  \"debug\": true,\n  \"debug\": false\n}", `line 3, column 3: duplicate key "debug" (also at line 2, column 3): remove one of them`},
		{"duplicate nested key", "{\"features\": {\"a\": true, \"a\": true}}", `line 1, column 26: duplicate key "a" (also at line 1, column 15): remove one of them`},
		{"65 levels", "{\"x\":" + strings.Repeat("[", 64) + strings.Repeat("]", 64) + "}", `line 1, column 69: nesting deeper than 64 levels is refused`},
		{"trailing data", "{}\n{}", `line 2, column 1: invalid character '{' after top-level value`},
		{"truncated", "{\"debug\": tr", `line 1, column 13: unexpected end of JSON input`},
		{"not an object", "[\"overlay2\"]", `line 1, column 1: daemon.json must hold a JSON object, found an array`},
		{"invalid UTF-8", "{\"x\": \"\xff\"}", `line 1, column 8: invalid UTF-8 byte 0xff in string literal: dockerd reads UTF-8 only`},
		{"UTF-16", "\xff\xfe{\x00}\x00", `line 1, column 1: file is UTF-16 encoded; graphprobe edits UTF-8 only: convert it with iconv -f UTF-16 -t UTF-8`},
		{"comment", "{\n  // dockerd reads no comments\n}", `line 2, column 3: invalid character '/' looking for beginning of object key string`},
		{"over 2 MiB", "{\"x\": \"" + strings.Repeat("a", 2<<20) + "\"}", "file is 2097161 bytes, over graphprobe's 2 MiB limit for a daemon.json (dockerd has none; the limit bounds what a run costs at boot): check that the file is not corrupt or mis-generated, or set storage-driver by hand to what `graphprobe select --dry-run --config EMPTY.json` prints (EMPTY.json holding {})"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := daemonjson.Parse("daemon.json", []byte(tc.doc))
			var pe *daemonjson.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T), want a *ParseError", err, err)
			}
			if got := strings.TrimPrefix(err.Error(), "parse daemon.json: "); got != tc.want {
				t.Errorf("error\n  %s\nwant\n  %s", got, tc.want)
			}
			if pe.Line == 0 && !strings.Contains(tc.name, "MiB") {
				t.Errorf("no position in %v", err)
			}
		})
	}
	t.Run("unknown keys are kept", func(t *testing.T) {
		doc := "{\n  \"no-such-dockerd-key\": {\"x\": [1, 2]},\n  \"storage-driver\": \"vfs\"\n}\n"
		d, err := daemonjson.Parse("daemon.json", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := d.Merge(daemonjson.Change{Driver: "overlay2"})
		if err != nil || !strings.Contains(string(out), `"no-such-dockerd-key": {"x": [1, 2]}`) {
			t.Errorf("merge dropped or broke the unknown key: %v\n%s", err, out)
		}
	})
}

// TestPolicyParserRejects: unknown keys, wrong types, duplicate keys,
// oversized and deeply nested documents, anchors and several documents are
// refused with a message and a position.
func TestPolicyParserRejects(t *testing.T) {
	deepFlow := "priority: [overlay2]\nweights: " + strings.Repeat("{a: ", 9) + "1" + strings.Repeat("}", 9) + "\n"
	var deepBlock strings.Builder
	deepBlock.WriteString("benchmark:\n")
	for i := 1; i <= 10; i++ {
		deepBlock.WriteString(strings.Repeat("  ", i) + "k:\n")
	}
	for _, tc := range []struct {
		name, doc string
		line      int
		want      string // a part of the message
	}{
		{"unknown key", "strategy: priority\nstratgey: fastest\n", 2, "stratgey: unknown key"},
		{"unknown nested key", "benchmark:\n  budget: 10s\n  samplez: 3\n", 3, "benchmark.samplez: unknown key"},
		{"wrong type", "strategy: 1\n", 1, "strategy: must be a string, found an integer"},
		{"wrong nested type", "benchmark:\n  samples: many\n", 2, "benchmark.samples: must be an integer, found a string"},
		{"list for a scalar", "imageStore: [containerd]\n", 1, "imageStore: must be a string, found a list"},
		{"duplicate key", "strategy: priority\nexclude: [vfs]\nstrategy: fastest\n", 3, "strategy: duplicate key (first at line 1)"},
		{"duplicate driver", "priority: [overlay2, vfs, overlay2]\n", 1, "overlay2 is listed twice"},
		{"over 64 KiB", "# " + strings.Repeat("x", 64<<10) + "\n", 0, "file is over 64 KiB"},
		{"deep flow nesting", deepFlow, 2, "nesting deeper than 8 levels is refused"},
		{"deep block nesting", deepBlock.String(), 9, "nesting deeper than 8 levels is refused"},
		{"deep flow nesting after a quote in a plain scalar", "exclude: [it's, " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "]\n", 1, "nesting deeper than 8 levels is refused"},
		{"deep flow nesting after a # in a plain scalar", "exclude: [a#b, " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "]\n", 1, "nesting deeper than 8 levels is refused"},
		{"anchors and aliases", "exclude: &x [vfs]\npriority: *x\n", 1, "anchors and aliases are not supported"},
		{"alias bomb", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n", 1, "anchors and aliases are not supported"},
		{"two documents", "strategy: priority\n---\nstrategy: fastest\n", 2, "more than one YAML document"},
		{"tab indentation", "benchmark:\n\tsamples: 3\n", 2, "found character that cannot start any token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Parse("policy.yaml", []byte(tc.doc))
			var pe *policy.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T), want a *policy.Error", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
			if pe.Line != tc.line {
				t.Errorf("error %q is at line %d, want line %d", err, pe.Line, tc.line)
			}
		})
	}
}

// hostile are documents near the parsers' size limits, built to cost as
// much as possible: many small values, many keys, long escaped strings,
// nesting up to the limit many times over, and nesting far past it.
func hostileJSON() map[string]string {
	// 1 KiB below the limit, so that a merge's result still fits.
	n := daemonjson.MaxSize - 1<<10
	fill := func(prefix, unit, suffix string) string {
		k := (n - len(prefix) - len(suffix)) / len(unit)
		return prefix + strings.Repeat(unit, k) + suffix
	}
	var keys strings.Builder
	keys.WriteString("{")
	for i := 0; keys.Len() < n-32; i++ {
		fmt.Fprintf(&keys, "\"k%07d\":0,", i)
	}
	keys.WriteString("\"end\":0}")
	// {"a":[ is two levels; each element adds 62 more: 64, the limit.
	nest := "[" + strings.Repeat("[", 61) + strings.Repeat("]", 61) + "],"
	return map[string]string{
		"array of 0s":                   fill("{\"a\":[", "0,", "0]}"),
		"array of empty objects":        fill("{\"a\":[", "{},", "{}]}"),
		"nested arrays of empty arrays": fill("{\"a\":[", "[[],[]],", "[]]}"),
		"many keys":                     keys.String(),
		"escaped string":                fill("{\"a\":\"", "\\u00e9", "\"}"),
		"surrogate escapes":             fill("{\"a\":\"", "\\ud800", "\"}"),
		"nesting to the limit":          fill("{\"a\":[", nest, "0]}"),
		"nesting past the limit":        fill("{\"a\":", "[", ""),
		"duplicate keys late":           fill("{", "\"a\":0,", "\"a\":0}"),
	}
}

func hostilePolicy() map[string]string {
	n := policy.MaxSize - 1
	fill := func(prefix, unit, suffix string) string {
		k := (n - len(prefix) - len(suffix)) / len(unit)
		return prefix + strings.Repeat(unit, k) + suffix
	}
	var keys strings.Builder
	keys.WriteString("weights:\n")
	for i := 0; keys.Len() < n-32; i++ {
		fmt.Fprintf(&keys, "  w%06d: 1\n", i)
	}
	return map[string]string{
		"long flow list": fill("exclude: [", "vfs, ", "vfs]\n"),
		"many keys":      keys.String(),
		"long string":    fill("strategy: \"", "\\u00e9", "\"\n"),
		"flow nesting past the limit (after a quote)": fill("exclude: [it's, ", "[", "\n"),
		"block nesting":  fill("benchmark:\n", " a:\n", ""),
		"many documents": fill("", "---\n", ""),
		"many anchors":   fill("exclude: [", "&a vfs, ", "vfs]\n"),
		"comments":       fill("", "# comment\n", "strategy: priority\n"),
	}
}

// TestParsersBoundedOnHostileInput parses (and, for daemon.json, merges)
// documents built to be expensive, each just under its parser's size limit
// (daemon.json 2 MiB, policy 64 KiB), with a deadline, and measures the
// bytes and objects allocated. The bound asserted is linear: at most 128
// bytes allocated per input byte, plus 1 MiB. Why 128: both parsers keep a
// tree node per value (daemonjson's node is a 96-byte allocation, yaml.v3's
// larger) plus the slices that hold them, and the densest documents start a
// value every two bytes (measured: about 70 B per input byte for
// daemon.json, 112 for the policy's deep block nesting); quadratic or
// exponential growth, as alias expansion, re-scanning or re-copying would
// cause, exceeds the bound by orders of magnitude at these sizes. A merge
// may cost four parses: Merge parses the document, then re-parses it after
// each of its (at most three) splices so that every position is fresh.
// Times are logged, not asserted.
func TestParsersBoundedOnHostileInput(t *testing.T) {
	check := func(t *testing.T, what string, size int, c cost, err error, parses uint64) {
		t.Helper()
		msg := "accepted"
		if err != nil {
			msg = firstLine(err.Error())
			if len(msg) > 90 {
				msg = msg[:90] + "..."
			}
		}
		t.Logf("%-48s %7d B in %8v, %6.1f MiB / %7d objects allocated (%4.1f B per input byte): %s",
			what, size, c.dur.Round(10*time.Microsecond), float64(c.bytes)/(1<<20), c.mallocs, float64(c.bytes)/float64(size), msg)
		if limit := parses * (uint64(size)*128 + 1<<20); c.bytes > limit {
			t.Errorf("%s: allocated %d bytes for %d input bytes (limit %d)", what, c.bytes, size, limit)
		}
	}
	for _, name := range sortedKeys(hostileJSON()) {
		doc := []byte(hostileJSON()[name])
		var err error
		c := measureCall(t, "daemonjson.Parse "+name, func() { _, err = daemonjson.Parse("daemon.json", doc) })
		check(t, "daemon.json: "+name, len(doc), c, err, 1)
		if err == nil {
			var out []byte
			c := measureCall(t, "daemonjson.Merge "+name, func() {
				out, _, err = daemonjson.Merge(doc, daemonjson.Change{Driver: "overlay2", Opts: []string{"overlay2.size=10G"}})
			})
			check(t, "daemon.json merge: "+name, len(doc), c, err, 4)
			_ = out
		}
	}
	for _, name := range sortedKeys(hostilePolicy()) {
		doc := []byte(hostilePolicy()[name])
		var err error
		c := measureCall(t, "policy.Parse "+name, func() { _, err = policy.Parse("policy.yaml", doc) })
		check(t, "policy: "+name, len(doc), c, err, 1)
	}
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
