package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/dockertest"
	"github.com/graphprobe/graphprobe/internal/testutil"
)

// writeConfig writes a daemon.json for a test.
func writeConfig(t *testing.T, cfg map[string]any) string {
	t.Helper()
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// refusalCases are setups where dockerd 20.10 refuses the overlay drivers
// when they are configured. Unlike the automatic choice, a configured
// driver's init error is fatal, and the line dockerd prints on its way out
// is what a user sees in journalctl: graphprobe's drivers refuse the same
// setups, and its messages are compared with these.
var refusalCases = []struct {
	name   string
	kind   string
	driver string
	// reason is the exact line dockerd prints before exiting.
	reason string
	// logged is the start of the error line the driver logs first, "" if
	// it logs none.
	logged string
}{
	{
		name: "overlay2/ext4-nodtype", kind: testutil.Ext4NoDType, driver: "overlay2",
		reason: "failed to start daemon: error initializing graphdriver: overlay2: the backing extfs filesystem is formatted without d_type support, which leads to incorrect behavior. Reformat the filesystem (or use tune2fs) with -O filetype flag to enable d_type support. Backing filesystems without d_type support are not supported.",
	},
	{
		name: "overlay/ext4-nodtype", kind: testutil.Ext4NoDType, driver: "overlay",
		reason: "failed to start daemon: error initializing graphdriver: overlay: the backing extfs filesystem is formatted without d_type support, which leads to incorrect behavior. Reformat the filesystem (or use tune2fs) with -O filetype flag to enable d_type support. Backing filesystems without d_type support are not supported.",
	},
	{
		// 20.10 has no explicit check of an overlayfs backing filesystem:
		// its test mount fails, it logs why and returns the bare
		// ErrNotSupported (later releases refuse overlayfs by name).
		name: "overlay2/overlayfs", kind: testutil.Overlay, driver: "overlay2",
		reason: "failed to start daemon: error initializing graphdriver: driver not supported",
		logged: "failed to mount overlay: ",
	},
	{
		name: "overlay/overlayfs", kind: testutil.Overlay, driver: "overlay",
		reason: "failed to start daemon: error initializing graphdriver: driver not supported",
		logged: "failed to mount overlay: ",
	},
}

// TestDockerdRefusesOverlay: with storage-driver set in daemon.json,
// every release refuses to start on a data-root without d_type and on one
// that is on overlayfs, and says why. The exact lines are 20.10's; later
// releases are held to the exit status, the driver and the reason's key
// words.
func TestDockerdRefusesOverlay(t *testing.T) {
	for _, c := range dockertest.EnsureAll(t) {
		t.Run(c.Release.Name, func(t *testing.T) { testDockerdRefusesOverlay(t, c) })
	}
}

func testDockerdRefusesOverlay(t *testing.T, c *dockertest.Cache) {
	for _, tc := range refusalCases {
		if tc.driver == "overlay" && c.Release.Name != "20.10" {
			continue // removed in 24
		}
		t.Run(tc.name, func(t *testing.T) {
			fs := testutil.NewFS(t, tc.kind, 0)
			cfg := writeConfig(t, map[string]any{"storage-driver": tc.driver})
			ref := dockertest.StartExpectFailure(t, dockertest.Options{Cache: c, DataRoot: filepath.Join(fs.Dir, "docker"), ConfigFile: cfg})
			t.Logf("dockerd %s exit %d: %s", c.Release.Name, ref.ExitCode, ref.Reason)
			if ref.ExitCode != 1 {
				t.Errorf("exit status %d, want 1", ref.ExitCode)
			}
			if c.Release.Name == "20.10" {
				if ref.Reason != tc.reason {
					t.Errorf("dockerd said\n  %q\nwant\n  %q", ref.Reason, tc.reason)
				}
				got := dockertest.WithField(dockertest.AtLevel(ref.Entries, "error"), "storage-driver", tc.driver)
				for _, e := range got {
					t.Logf("dockerd log: %s", e.Line)
				}
				switch {
				case tc.logged == "" && len(got) != 0:
					t.Errorf("%s logged errors before refusing: %q", tc.driver, lines(got))
				case tc.logged != "" && (len(got) != 1 || !strings.HasPrefix(got[0].Msg, tc.logged)):
					t.Errorf("want one error line of %s starting %q, got %q", tc.driver, tc.logged, lines(got))
				}
			} else if !strings.Contains(ref.Reason, "graphdriver") && !strings.Contains(ref.Reason, tc.driver) {
				t.Errorf("dockerd's reason names neither the graph driver nor %s: %q", tc.driver, ref.Reason)
			}
			// A refused daemon must not have made the driver's home: the
			// next start (with another driver) would take it for prior
			// state.
			if _, err := os.Stat(filepath.Join(fs.Dir, "docker", tc.driver)); err == nil {
				t.Errorf("dockerd made %s/ although it refused the driver", tc.driver)
			}
			if graphprobeDrivers[tc.driver] {
				t.Run("graphprobe-agrees", func(t *testing.T) {
					checkGraphprobeRefuses(t, tc.kind, tc.driver, filepath.Join(fs.Dir, "docker"), ref)
				})
			}
		})
	}
}

// TestDockerdFlagConflict: a storage setting given both as a dockerd flag
// and in daemon.json stops dockerd before it does anything else, which is
// why graphprobe refuses to write daemon.json over a flag (exit 4).
func TestDockerdFlagConflict(t *testing.T) {
	for _, c := range dockertest.EnsureAll(t) {
		t.Run(c.Release.Name, func(t *testing.T) { testDockerdFlagConflict(t, c) })
	}
}

func testDockerdFlagConflict(t *testing.T, c *dockertest.Cache) {
	cases := []struct {
		name string
		cfg  map[string]any
		opts dockertest.Options
		// directive is the end of dockerd's message, after the file name.
		directive string
	}{
		{
			name:      "storage-driver",
			cfg:       map[string]any{"storage-driver": "overlay2"},
			opts:      dockertest.Options{StorageDriver: "vfs"},
			directive: "the following directives are specified both as a flag and in the configuration file: storage-driver: (from flag: vfs, from file: overlay2)",
		},
		{
			name:      "storage-opts",
			cfg:       map[string]any{"storage-driver": "overlay2", "storage-opts": []string{"overlay2.size=1G"}},
			opts:      dockertest.Options{ExtraArgs: []string{"--storage-opt", "overlay2.override_kernel_check=true"}},
			directive: "the following directives are specified both as a flag and in the configuration file: storage-opts: (from flag: [overlay2.override_kernel_check=true], from file: [overlay2.size=1G])",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.ConfigFile = writeConfig(t, tc.cfg)
			tc.opts.Cache = c
			ref := dockertest.StartExpectFailure(t, tc.opts)
			t.Logf("dockerd exit %d: %s", ref.ExitCode, ref.Reason)
			// The file named is the private copy the harness gives dockerd.
			prefix := "unable to configure the Docker daemon with file "
			if !strings.HasPrefix(ref.Reason, prefix) || !strings.HasSuffix(ref.Reason, ": "+tc.directive) {
				t.Errorf("dockerd said\n  %q\nwant\n  %q", ref.Reason, prefix+"<daemon.json>: "+tc.directive)
			}
			if ref.ExitCode != 1 {
				t.Errorf("exit status %d, want 1", ref.ExitCode)
			}
		})
	}
}
