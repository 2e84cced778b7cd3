package app

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFlagErrors: every flag error is a usage error (exit 2), names the
// flag with GNU double dashes, and says what is expected. A relative
// --data-root is the same error for every command that takes it.
func TestFlagErrors(t *testing.T) {
	abs, err := filepath.Abs("dr")
	if err != nil {
		t.Fatal(err)
	}
	// Whatever a regression lets through, select and bench must not touch
	// this host's daemon.json, lock or data-root.
	tmp := t.TempDir()
	safe := []string{"--config", filepath.Join(tmp, "daemon.json"), "--root-prefix", filepath.Join(tmp, "host")}
	relative := `invalid value "dr" for flag --data-root: must be an absolute path, as dockerd's is: did you mean ` + abs + "?"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"probe, relative data-root", []string{"probe", "--data-root", "dr"}, "probe: " + relative},
		{"select, relative data-root", append([]string{"select", "--dry-run", "--data-root", "dr"}, safe...), "select: " + relative},
		{"bench, relative data-root", append([]string{"bench", "--data-root=dr"}, safe...), "bench: " + relative},
		{"capture, relative data-root", []string{"capture", "--data-root", "dr", filepath.Join(t.TempDir(), "out")}, "capture: " + relative},
		{"unknown flag", []string{"probe", "--formt", "json"}, "probe: unknown flag --formt"},
		{"unknown single-dash flag", []string{"probe", "-x"}, "probe: unknown flag --x"},
		{"bad enum", []string{"probe", "--format", "xml"}, `probe: invalid value "xml" for flag --format: must be one of text, json, yaml`},
		{"missing value", append([]string{"select", "--dry-run"}, append(safe, "--lock-timeout")...), "select: flag needs an argument: --lock-timeout"},
		{"duration without a unit", append([]string{"select", "--dry-run", "--lock-timeout", "5"}, safe...), `select: invalid value "5" for flag --lock-timeout: must be a duration with a unit, like 5s, 90s or 2m`},
		{"negative duration", append([]string{"select", "--dry-run", "--lock-timeout=-5s"}, safe...), `select: invalid value "-5s" for flag --lock-timeout: must not be negative`},
		{"bad boolean", []string{"probe", "--load-modules=maybe"}, `probe: invalid boolean value "maybe" for --load-modules: must be true or false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tt.args...)
			if code != ExitUsage {
				t.Errorf("exit %d, want %d", code, ExitUsage)
			}
			if want := "graphprobe: " + tt.want + "\n"; errOut != want {
				t.Errorf("stderr %q\nwant   %q", errOut, want)
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
		})
	}
}

// A relative data-root in daemon.json is a malformed input file (exit 1),
// said the same way by every command.
func TestRelativeDataRootInConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(cfg, []byte(`{"data-root": "docker"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join("..", "..", "..", "testdata", "hosts", "debian-12")
	want := "graphprobe: " + cfg + `: data-root "docker" must be an absolute path` + "\n"
	for _, args := range [][]string{
		{"probe", "--config", cfg, "--root-prefix", host},
		{"select", "--dry-run", "--config", cfg, "--root-prefix", host},
		{"bench", "--config", cfg, "--root-prefix", host},
	} {
		_, errOut, code := runCLI(t, args...)
		if code != ExitRuntime || errOut != want {
			t.Errorf("%s: exit %d, stderr %q\nwant exit %d, %q", args[0], code, errOut, ExitRuntime, want)
		}
	}
}
