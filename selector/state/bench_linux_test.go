package state

import (
	"path/filepath"
	"testing"
)

// BenchmarkObserve is the cheap probe of a rerun, in process.
func BenchmarkObserve(b *testing.B) {
	dr := filepath.Join(b.TempDir(), "docker")
	for i := 0; i < b.N; i++ {
		if _, err := Observe(ObserveOptions{DataRoot: dr}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad reads and checks a record, as a rerun does.
func BenchmarkLoad(b *testing.B) {
	dir := b.TempDir()
	rec, _, _ := sampleRecord()
	if err := Save(dir, rec); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSave writes a record durably (two fsyncs), as a first run does.
func BenchmarkSave(b *testing.B) {
	dir := b.TempDir()
	rec, _, _ := sampleRecord()
	for i := 0; i < b.N; i++ {
		if err := Save(dir, rec); err != nil {
			b.Fatal(err)
		}
	}
}
