package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// TestCaptureSameDecision captures this host with a data-root on each real
// filesystem the probe tests use, and checks that the capture decides as
// the live host does, for every rule change of Docker.
func TestCaptureSameDecision(t *testing.T) {
	testutil.RequiresRoot(t)
	kinds := []string{testutil.Ext4, testutil.Ext4NoDType, testutil.XFS, testutil.Btrfs, testutil.Tmpfs, testutil.Overlay}
	versions := []string{"17.03.2", "20.10.24", "23.0.6", "25.0.5", "29.0.0"}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			fs := testutil.NewFS(t, kind, 0)
			dataRoot := filepath.Join(fs.Dir, "docker")
			tmp := t.TempDir()
			cfg := filepath.Join(tmp, "daemon.json")
			os.WriteFile(cfg, []byte("{\"debug\": true}\n"), 0o644)
			lock := filepath.Join(tmp, "lock")

			out := filepath.Join(tmp, "capture")
			if o, e, code := runCLI(t, "capture", out, "--data-root", dataRoot, "--config", cfg); code != 0 {
				t.Fatalf("capture: exit %d: %s %s", code, e, o)
			}
			// The capture holds what the probe reads, and no more.
			for _, f := range []string{"proc/sys/kernel/osrelease", "proc/filesystems", "proc/self/mountinfo", "etc/docker/daemon.json", "graphprobe-capture.json"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Errorf("capture lacks %s", f)
				}
			}
			tgz := filepath.Join(tmp, "capture.tar.gz")
			if _, e, code := runCLI(t, "capture", tgz, "--data-root", dataRoot, "--config", cfg); code != 0 {
				t.Fatalf("capture .tar.gz: exit %d: %s", code, e)
			}
			for _, v := range versions {
				live := decision(t, "--data-root", dataRoot, "--config", cfg, "--lock-file", lock, "--bench", "off", "--docker-version", v)
				fixture := decision(t, "--root-prefix", out, "--config", filepath.Join(out, "etc/docker/daemon.json"), "--docker-version", v)
				if live != fixture {
					t.Errorf("Docker %s: live host decides %q, its capture %q", v, live, fixture)
				}
				m, _, code := runCLI(t, "matrix", tgz, "--docker-version", v, "--format", "json")
				if code != 0 && code != 3 && code != 4 {
					t.Fatalf("matrix of the .tar.gz capture: exit %d", code)
				}
				var doc matrixDoc
				json.Unmarshal([]byte(m), &doc)
				if len(doc.Rows) != 1 || doc.Rows[0].Decision != orNone(live) {
					t.Errorf("Docker %s: matrix of the .tar.gz decides %+v, live %q", v, doc.Rows, live)
				}
			}
			// The live data-root was never created by any of this.
			if _, err := os.Stat(dataRoot); err == nil {
				t.Error("the data-root was created")
			}
		})
	}
}

func orNone(d string) string {
	if d == "" {
		return "none"
	}
	return d
}

// decision runs select --dry-run and returns the storage-driver value,
// "refused" or "".
func decision(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := runCLI(t, append([]string{"select", "--dry-run", "--format", "json"}, args...)...)
	if code != 0 && code != 3 && code != 4 {
		t.Fatalf("select %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	var doc selectDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("select %s: %v", strings.Join(args, " "), err)
	}
	if doc.Refused != nil {
		return "refused"
	}
	return doc.Driver
}
