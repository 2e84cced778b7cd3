package reliability

import (
	"bytes"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// TestSignalDuringBenchmark interrupts `select --bench full` with SIGINT
// and SIGTERM once the benchmark has started (the first benchmark layer
// appears in the driver's scratch home) and again in its copy-up phase (the
// first copy-up base layer appears): every mount and scratch dir must be
// gone, daemon.json and its directory untouched, and the exit code 130 or
// 143.
func TestSignalDuringBenchmark(t *testing.T) {
	h := newHost(t, testutil.Ext4, 512)
	original := []byte("{\n  \"debug\": true,\n  \"storage-driver\": \"vfs\"\n}\n")
	writeFile(t, h.config, original, 0o644)
	mountsBefore := mountsOf(t, h.mountRoots()...)
	cases := []struct {
		name  string
		sig   syscall.Signal
		code  int
		phase string // a layer id prefix in the driver's home
	}{
		{"SIGINT at the first layer", syscall.SIGINT, 130, "l0"},
		{"SIGTERM at the first layer", syscall.SIGTERM, 143, "l0"},
		{"SIGINT in copy-up", syscall.SIGINT, 130, "base"},
		{"SIGTERM in copy-up", syscall.SIGTERM, 143, "base"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			etcBefore := snapshot(t, h.etc)
			p := startGP(t, h.opts(), h.selectArgs("--driver", "overlay2", "--bench", "full", "--format", "json")...)
			scratch := waitEntry(t, p, h.fs.Dir, hasPrefix(".graphprobe-bench-"))
			home := waitEntry(t, p, scratch, func(n string) bool { return n == "overlay2" })
			marker := waitEntry(t, p, home, hasPrefix(tc.phase))
			sent := time.Now()
			p.signal(tc.sig)
			r := p.wait()
			t.Logf("%s sent when %s appeared; exited %v later with %d", tc.sig, strings.TrimPrefix(marker, h.fs.Dir+"/"), time.Since(sent).Round(time.Millisecond), r.code)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tc.code, r)
			}
			if !strings.Contains(r.stderr, "interrupted") {
				t.Errorf("stderr does not say the run was interrupted:\n%s", r.stderr)
			}
			if got := readFile(t, h.config); !bytes.Equal(got, original) {
				t.Errorf("daemon.json changed: %q", got)
			}
			requireUnchanged(t, "the config dir", etcBefore, snapshot(t, h.etc))
			if left := scratchIn(h.scratchDirs()...); len(left) > 0 {
				t.Errorf("scratch dirs left: %q", left)
			}
			if got := mountsOf(t, h.mountRoots()...); !slices.Equal(got, mountsBefore) {
				t.Errorf("mount table changed:\nbefore %q\nafter  %q", mountsBefore, got)
			}
		})
	}
}
