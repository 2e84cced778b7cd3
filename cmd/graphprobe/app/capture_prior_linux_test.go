package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// TestCaptureKeepsPriorState: a captured host reports the prior drivers
// the host itself does, vfs (whose data is in vfs/dir) included, so that
// a capture refuses the same switches.
func TestCaptureKeepsPriorState(t *testing.T) {
	testutil.RequiresRoot(t)
	tmp := t.TempDir()
	dataRoot := filepath.Join(tmp, "docker")
	for _, d := range []string{"vfs/dir/3f2a", "overlay2/l", "overlay2/9c1e/diff"} {
		if err := os.MkdirAll(filepath.Join(dataRoot, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(tmp, "daemon.json")
	os.WriteFile(cfg, []byte("{}\n"), 0o644)
	out := filepath.Join(tmp, "capture")
	if o, e, code := runCLI(t, "capture", out, "--data-root", dataRoot, "--config", cfg); code != 0 {
		t.Fatalf("capture: exit %d: %s %s", code, e, o)
	}
	prior := func(args ...string) []string {
		t.Helper()
		o, e, code := runCLI(t, append([]string{"probe", "--format", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("probe %v: exit %d: %s", args, code, e)
		}
		var doc struct {
			PriorDrivers []string `json:"priorDrivers"`
		}
		if err := json.Unmarshal([]byte(o), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.PriorDrivers
	}
	live := prior("--data-root", dataRoot, "--config", cfg)
	if want := []string{"overlay2", "vfs"}; !reflect.DeepEqual(live, want) {
		t.Fatalf("live probe: prior drivers %v, want %v", live, want)
	}
	if got := prior("--root-prefix", out); !reflect.DeepEqual(got, live) {
		t.Errorf("capture reports prior drivers %v, the host %v", got, live)
	}
}
