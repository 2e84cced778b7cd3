package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/cmd/graphprobe/app"
	"github.com/graphprobe/graphprobe/internal/dockertest"
	"github.com/graphprobe/graphprobe/internal/testutil"
)

// otherKeys are daemon.json settings of an operator's that select must
// leave exactly as they are.
const otherKeys = `{
  "debug": false,
  "log-level": "warn",
  "max-concurrent-downloads": 3,
  "labels": ["team=storage", "env=test"],
  "shutdown-timeout": 20
}
`

type selectResult struct {
	Driver      string `json:"driver"`
	GraphDriver string `json:"graphDriver"`
	Reason      string `json:"reason"`
	Refused     *struct{ Kind, Message string }
	DaemonJSON  struct {
		Written bool   `json:"written"`
		Path    string `json:"path"`
	} `json:"daemonJSON"`
}

// runSelect runs graphprobe select as a provisioning script would.
func runSelect(t *testing.T, args ...string) (selectResult, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := app.Run(append([]string{"select", "--format", "json", "--docker-version", dockerd20, "--lock-file", filepath.Join(t.TempDir(), "lock"),
		"--state-dir", filepath.Join(t.TempDir(), "state")}, args...), &out, &errOut)
	var res selectResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("select %v: exit %d, %v\nstderr: %s", args, code, err, errOut.String())
	}
	return res, code
}

// TestSelectThenDockerd lets graphprobe write a daemon.json holding an
// operator's other keys, starts dockerd with it, and checks that dockerd
// runs exactly the driver graphprobe chose, that the other keys survived,
// and that graphprobe's choice is the one dockerd makes on its own.
func TestSelectThenDockerd(t *testing.T) {
	dockertest.Ensure(t)
	for _, tc := range []struct {
		kind  string
		bench string
	}{
		{testutil.Ext4, "quick"},
		{testutil.XFS, "off"},
		{testutil.Btrfs, "off"},
		{testutil.Tmpfs, "off"},
		{testutil.Ext4NoDType, "off"},
		{testutil.Overlay, "off"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			fs := testutil.NewFS(t, tc.kind, 0)

			// What dockerd picks on its own, on a data-root of its own.
			own := dockertest.Start(t, dockertest.Options{DataRoot: filepath.Join(fs.Dir, "own")})
			ownDriver := own.Info(t).Driver
			own.Stop(t)

			dataRoot := filepath.Join(fs.Dir, "docker")
			cfg := filepath.Join(t.TempDir(), "daemon.json")
			if err := os.WriteFile(cfg, []byte(otherKeys), 0o644); err != nil {
				t.Fatal(err)
			}
			res, code := runSelect(t, "--data-root", dataRoot, "--config", cfg, "--bench", tc.bench)
			if code != 0 || !res.DaemonJSON.Written {
				t.Fatalf("select: exit %d, written %v, result %+v", code, res.DaemonJSON.Written, res)
			}
			if res.Driver != ownDriver {
				t.Errorf("graphprobe chose %s (%s), dockerd on its own picks %s", res.Driver, res.Reason, ownDriver)
			}
			checkOtherKeys(t, cfg)

			d := dockertest.Start(t, dockertest.Options{DataRoot: dataRoot, ConfigFile: cfg})
			info := d.Info(t)
			d.Stop(t)
			if info.Driver != res.Driver {
				t.Errorf("dockerd runs %s with graphprobe's daemon.json, graphprobe chose %s", info.Driver, res.Driver)
			}
			// The probe's scratch dirs are gone; only dockerd's own dirs.
			entries, _ := os.ReadDir(fs.Dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), ".graphprobe-") {
					t.Errorf("scratch dir %s left behind", e.Name())
				}
			}
			// A rerun changes nothing.
			again, code := runSelect(t, "--data-root", dataRoot, "--config", cfg, "--bench", "off")
			if code != 0 || again.DaemonJSON.Written || again.Driver != res.Driver {
				t.Errorf("rerun: exit %d, written %v, driver %s", code, again.DaemonJSON.Written, again.Driver)
			}
		})
	}
}

// TestSelectKeepsPriorDriver: with images under overlay (which 20.10 ranks
// below overlay2), select keeps overlay, and dockerd still shows the image.
func TestSelectKeepsPriorDriver(t *testing.T) {
	dockertest.Ensure(t)
	fs := testutil.NewFS(t, testutil.Ext4, 0)
	dataRoot := filepath.Join(fs.Dir, "docker")
	populate(t, dataRoot, "overlay")
	cfg := filepath.Join(t.TempDir(), "daemon.json")
	os.WriteFile(cfg, []byte(otherKeys), 0o644)
	res, code := runSelect(t, "--data-root", dataRoot, "--config", cfg, "--bench", "off")
	if code != 0 || res.Driver != "overlay" {
		t.Fatalf("select: exit %d, driver %q (%s), want the prior overlay", code, res.Driver, res.Reason)
	}
	d := dockertest.Start(t, dockertest.Options{DataRoot: dataRoot, ConfigFile: cfg})
	images := d.Docker(t, "images", "--format", "{{.Repository}}:{{.Tag}}")
	d.Stop(t)
	if !strings.Contains(images, "graphprobe/e2e:prior-overlay") {
		t.Errorf("the prior image is hidden after select: %q", images)
	}
	checkOtherKeys(t, cfg)

	// Asking for overlay2 would hide it: refused, nothing written.
	before, _ := os.ReadFile(cfg)
	res, code = runSelect(t, "--data-root", dataRoot, "--config", cfg, "--driver", "overlay2", "--bench", "off")
	if code != 4 || res.Refused == nil {
		t.Fatalf("--driver overlay2 over prior overlay data: exit %d, %+v", code, res)
	}
	if after, _ := os.ReadFile(cfg); !bytes.Equal(before, after) {
		t.Error("daemon.json changed by a refused run")
	}
}

func checkOtherKeys(t *testing.T, cfg string) {
	t.Helper()
	var want, got map[string]any
	json.Unmarshal([]byte(otherKeys), &want)
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("daemon.json after select: %v", err)
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("key %s: %v, want %v", k, got[k], v)
		}
	}
	// And in the same order.
	last := -1
	for _, k := range []string{`"debug"`, `"log-level"`, `"max-concurrent-downloads"`, `"labels"`, `"shutdown-timeout"`} {
		i := strings.Index(string(data), k)
		if i < last {
			t.Errorf("key %s moved:\n%s", k, data)
		}
		last = i
	}
}
