package app

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
)

// TestWriteExpectRoundTrip: --write-expect writes the committed
// expected-decisions file as it stands (less the comments a reviewer added
// by hand), and what it writes reads back to the same expectations.
func TestWriteExpectRoundTrip(t *testing.T) {
	committed := filepath.Join(repoRoot, "testdata/hosts", ExpectFile)
	written := filepath.Join(t.TempDir(), ExpectFile)
	if _, errOut, code := runCLI(t, "matrix", filepath.Join(repoRoot, "testdata/hosts"), "--write-expect", written); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got, err := os.ReadFile(written)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	want = regexp.MustCompile(`(?m)^( .*\S)\s+#.*$`).ReplaceAll(want, []byte("$1"))
	if string(got) != string(want) {
		t.Errorf("written file differs from %s:\n%s", committed, got)
	}
	gotExp, err := loadExpect(written)
	if err != nil {
		t.Fatal(err)
	}
	wantExp, err := loadExpect(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotExp, wantExp) {
		t.Errorf("read back %v, want %v", gotExp, wantExp)
	}
}

// TestSaveExpectQuotes: host names YAML would read as something else (a
// number, null, a key with a value, a comment) read back as written.
func TestSaveExpectQuotes(t *testing.T) {
	hosts := []string{"123", "null", "a: b", "x #y", "- z", "'q'"}
	var rows []MatrixRow
	want := map[string]map[string]string{}
	for _, h := range hosts {
		rows = append(rows, MatrixRow{Host: h, DockerVersion: "25.0.5", Decision: "overlay2"}, MatrixRow{Host: h, DockerVersion: "29.0.0", Decision: "refused"})
		want[h] = map[string]string{"25.0.5": "overlay2", "29.0.0": "refused"}
	}
	path := filepath.Join(t.TempDir(), ExpectFile)
	if err := saveExpect(path, rows); err != nil {
		t.Fatal(err)
	}
	got, err := loadExpect(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		data, _ := os.ReadFile(path)
		t.Errorf("read back %v, want %v\n%s", got, want, data)
	}
}
