package policy

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
)

// FuzzParse checks that Parse never panics, fails only with *Error, and
// that whatever it accepts keeps the documented invariants.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("testdata", "policy", "example.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(example), "", "strategy: priority\n", "exclude: [vfs]\n", "weights: {mount: 1e2, copyup: 0}\n",
		"benchmark: {budget: 1m30s, copyUpSizes: [1, 1GiB]}\n", "storageOpts: {devicemapper: [dm.basesize=1G]}\n",
		"a: &x [1]\nb: *x\n", "[[[[[[[[[[]]]]]]]]]]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz", data)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("%T is not *Error: %v", err, err)
			}
			// The position is in the document, and a named key has one.
			lines := 1 // as yaml.v3 counts them
			for _, br := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
				lines += bytes.Count(data, []byte(br))
			}
			if pe.Line < 0 || pe.Line > lines || pe.Column < 0 {
				t.Fatalf("position %d:%d outside %d lines: %v", pe.Line, pe.Column, lines, err)
			}
			if pe.Key != "" && pe.Line == 0 {
				t.Fatalf("key without a position: %v", err)
			}
			return
		}
		for _, d := range append(slices.Clone(p.Priority), p.Exclude...) {
			if _, ok := drivers.Lookup(d); !ok {
				t.Fatalf("unknown driver %q accepted", d)
			}
		}
		for _, d := range p.Exclude {
			if slices.Contains(p.Priority, d) {
				t.Fatalf("%s both in priority and exclude", d)
			}
		}
		if p.Priority != nil && len(p.Priority) == 0 {
			t.Fatal("empty priority accepted")
		}
		if len(p.Priority) == 0 && len(p.Exclude) > 0 && len(p.Order(drivers.Names())) == 0 {
			t.Fatal("every driver excluded")
		}
		if len(p.Weights) > 0 && !slices.ContainsFunc(Benchmarks, func(k string) bool { return p.Weights[k] > 0 }) {
			t.Fatalf("weights %v accepted, none positive", p.Weights)
		}
		if b := p.Benchmark.Budget; b != 0 && (b < time.Second || b > time.Hour) {
			t.Fatalf("budget %v accepted", b)
		}
		for _, s := range p.Benchmark.CopyUpSizes {
			if s < 1 || s > 1<<30 {
				t.Fatalf("size %d accepted", s)
			}
		}
		for _, list := range [][]int{p.Benchmark.ChainLengths, p.Benchmark.MountDepths, p.Benchmark.StatDepths} {
			for _, d := range list {
				if d < 1 || d > 128 {
					t.Fatalf("depth %d accepted", d)
				}
			}
		}
		for k, w := range p.Weights {
			if !slices.Contains(Benchmarks, k) || math.IsNaN(w) || w < 0 || w > 1000 {
				t.Fatalf("weight %s=%v accepted", k, w)
			}
		}
		for d, opts := range p.StorageOpts {
			for _, o := range opts {
				k, ok := daemonjson.OptionKey(o)
				if !ok || !daemonjson.OptionBelongs(d, k) {
					t.Fatalf("option %q for %s accepted", o, d)
				}
			}
		}
	})
}
