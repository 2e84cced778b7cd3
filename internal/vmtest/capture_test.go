package vmtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/probe"
)

// CapturesEnv names a directory to keep each kernel's captured fixture
// host in (testdata/hosts to refresh the repository's).
const CapturesEnv = "GRAPHPROBE_VM_CAPTURES"

// checkCapture unpacks the host `graphprobe capture` wrote inside the VM
// and checks that reading it back with --root-prefix gives the live
// probe's verdicts.
func checkCapture(t *testing.T, k Kernel, secs map[string]Section) {
	t.Helper()
	s, ok := secs["capture"]
	if !ok || s.RC != 0 {
		t.Errorf("kernel %s: graphprobe capture failed (rc %d): %s", k.Release, s.RC, s.Stderr)
		return
	}
	data, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s.Stdout), ""))
	if err != nil {
		t.Errorf("kernel %s: capture: %v", k.Release, err)
		return
	}
	dir := filepath.Join(t.TempDir(), "host")
	if d := os.Getenv(CapturesEnv); d != "" {
		dir = filepath.Join(d, "debian-"+k.Name+"-"+strings.SplitN(k.Release, "-", 2)[0])
		if k.Name == "aufs" {
			dir = filepath.Join(d, "aufs-"+k.Release)
		}
		os.RemoveAll(dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tgz := dir + ".tar.gz"
	if err := os.WriteFile(tgz, data, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(tgz)
	if out, err := exec.Command("tar", "-xzf", tgz, "-C", dir).CombinedOutput(); err != nil {
		t.Errorf("kernel %s: unpack the capture: %v: %s", k.Release, err, out)
		return
	}
	r, err := probe.Run(context.Background(), probe.Options{RootPrefix: dir, PriorDirs: drivers.PriorDirs()})
	if err != nil {
		t.Errorf("kernel %s: probe the capture: %v", k.Release, err)
		return
	}
	var live probe.Report
	if err := json.Unmarshal([]byte(secs["probe-load-ext4"].Stdout), &live); err != nil {
		t.Errorf("kernel %s: %v", k.Release, err)
		return
	}
	if r.Kernel.Release != k.Release {
		t.Errorf("kernel %s: the capture says release %q", k.Release, r.Kernel.Release)
	}
	for name, lf := range live.Facts {
		cf := r.Fact(name)
		if boolStr(cf.Supported) != boolStr(lf.Supported) {
			t.Errorf("kernel %s, captured host, fact %s: got %s (%s), want %s as live (%s)", k.Release, name, boolStr(cf.Supported), cf.Detail, boolStr(lf.Supported), lf.Detail)
		}
	}
}
