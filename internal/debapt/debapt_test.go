package debapt

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The lists are fetched once a day: with a fresh stamp and the same
// suites, Prepare must not run apt at all (PATH has none here, so a run
// would fail); a changed suite list must fetch again.
func TestPrepareFetchesOnlyWhenStale(t *testing.T) {
	if _, err := os.Stat(Keyring); err != nil {
		t.Skipf("no Debian archive keyring: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	s := State{Dir: t.TempDir(), Suites: []string{"bookworm"}}

	err := s.Prepare(context.Background(), false)
	if err == nil || !strings.Contains(err.Error(), "update private package lists") {
		t.Fatalf("first Prepare: want an attempt to fetch the lists, got %v", err)
	}
	list, err := os.ReadFile(filepath.Join(s.Dir, "sources.list"))
	if err != nil {
		t.Fatal(err)
	}
	if want := " " + Mirror + " bookworm main\n"; !strings.Contains(string(list), want) {
		t.Fatalf("sources.list = %q, want a line with %q", list, want)
	}

	if err := os.WriteFile(filepath.Join(s.Dir, "updated"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(context.Background(), false); err != nil {
		t.Fatalf("Prepare with fresh lists ran apt: %v", err)
	}
	if err := s.Prepare(context.Background(), true); err == nil {
		t.Fatal("Prepare(refresh) did not fetch the lists")
	}
	s.Suites = append(s.Suites, "sid")
	if err := s.Prepare(context.Background(), false); err == nil {
		t.Fatal("Prepare after a new suite did not fetch the lists")
	}
}

func TestOptionsKeepSystemStateOut(t *testing.T) {
	s := State{Dir: "/cache/apt"}
	opts := strings.Join(s.options(), " ")
	for _, want := range []string{
		"Dir::Etc::sourcelist=/cache/apt/sources.list",
		"Dir::Etc::sourceparts=-",
		"Dir::State::Lists=/cache/apt/lists",
		"Dir::Cache=/cache/apt/cache",
		"Dir::State::status=/dev/null",
	} {
		if !strings.Contains(opts, want) {
			t.Errorf("options lack %s: %s", want, opts)
		}
	}
}
