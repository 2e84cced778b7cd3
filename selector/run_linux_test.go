package selector

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/graphprobe/graphprobe/drivers/bench"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
	"github.com/graphprobe/graphprobe/selector/dockerflags"
	"github.com/graphprobe/graphprobe/version"
)

// TestRunRefusesBeforeProof: a refusal that dockerd's flags decide is
// known before any driver is initialised, so select refuses without the
// proof (which takes most of a minute at boot). The live host's scratch
// parent cannot be created, so a proof that runs fails the run.
func TestRunRefusesBeforeProof(t *testing.T) {
	r := modernExt4.report()
	r.Mode = "live"
	r.DataRoot.ProbedPath = "/dev/null/docker"
	cfg, err := daemonjson.Open(filepath.Join(t.TempDir(), "daemon.json"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(strategy string, fs ...dockerflags.Finding) (*Result, error) {
		return Run(context.Background(), Request{
			Report: r, ConfigFile: cfg, Flags: &dockerflags.Report{Findings: fs},
			DockerVersion: version.MustDocker("20.10.24"), DryRun: true, Bench: bench.Quick, Strategy: strategy,
		})
	}
	// Without a refusal the proof runs, and fails here.
	if _, err := run(""); err == nil {
		t.Fatal("no proof was tried: the test cannot tell whether one runs")
	}
	for _, tc := range []struct {
		name     string
		strategy string
		flags    []dockerflags.Finding
	}{
		{"-s vfs", "", []dockerflags.Finding{flagS("vfs")}},
		{"DOCKER_DRIVER=vfs", "", []dockerflags.Finding{envDriver("vfs")}},
		{"-s btrfs, fastest", "fastest", []dockerflags.Finding{flagS("btrfs")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := run(tc.strategy, tc.flags...)
			if err != nil {
				t.Fatalf("the proof ran before the refusal: %v", err)
			}
			if res.Refused == nil || res.Refused.Kind != "flag-conflict" || res.Driver != "" {
				t.Fatalf("refused %+v, driver %q: want a flag-conflict refusal", res.Refused, res.Driver)
			}
			if res.DaemonJSON == nil || res.DaemonJSON.Changed {
				t.Errorf("daemonJSON %+v: want unchanged", res.DaemonJSON)
			}
		})
	}
	// Under the fastest strategy a flag naming another eligible driver may
	// be the one the benchmark picks: the proof decides.
	if _, err := run("fastest", flagS("vfs")); err == nil {
		t.Error("fastest strategy, -s vfs: no proof was tried")
	}
}
