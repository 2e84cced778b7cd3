package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/graphprobe/graphprobe/internal/dockertest"
	"github.com/graphprobe/graphprobe/internal/testutil"
)

// Where fuse-overlayfs is, for a scenario: on the default PATH (as the
// Debian package installs it), nowhere, or only in a directory on dockerd's
// own PATH (the unit's Environment=PATH), not in any usual bin directory.
const (
	fuseHost       = ""
	fuseNone       = "no-fuse-overlayfs"
	fuseDockerPath = "fuse-overlayfs-on-dockerd-path"
)

// fidelityCase is one scenario of TestFidelity: a data-root, what is on
// dockerd's PATH, the daemon.json the operator had, and the data already
// under the data-root.
type fidelityCase struct {
	name string
	kind string
	fuse string
	// config is merged into the operator's daemon.json before select.
	config map[string]any
	// prior, when set, is a storage-driver value dockerd of the release
	// runs first to leave an imported image and a created container.
	prior string
	// priorConfig is daemon.json for that first run (features).
	priorConfig map[string]any
	// prior2 is a second driver run the same way: two drivers' data.
	prior2 string
	// priorDir is a driver directory made by hand, as a driver that can
	// no longer run leaves it (btrfs data on a data-root now on ext4).
	priorDir string
	// ownFails: dockerd itself refuses to start on that data-root.
	ownFails bool
	// releases limits the scenario to these release lines (nil: all).
	releases []string
	// refuse: every release must exit 4, since the release's own choice
	// hides the data under the data-root.
	refuse bool
}

func (c fidelityCase) appliesTo(rel string) bool {
	return c.releases == nil || slices.Contains(c.releases, rel)
}

var snapshotterOn = map[string]any{"features": map[string]any{"containerd-snapshotter": true}}

func withDriver(m map[string]any, driver string) map[string]any {
	out := map[string]any{"storage-driver": driver}
	for k, v := range m {
		out[k] = v
	}
	return out
}

var since26 = []string{"26.1", "28.5", "29.7"}

// fidelityCases cover what users run: every filesystem with and without
// fuse-overlayfs, a driver the release removed, prior data of each driver
// the release can hold, and the containerd image store switched on by hand.
var fidelityCases = func() []fidelityCase {
	var cs []fidelityCase
	for _, k := range []struct{ name, kind string }{
		{"ext4", testutil.Ext4}, {"xfs", testutil.XFS}, {"btrfs", testutil.Btrfs},
		{"tmpfs", testutil.Tmpfs}, {"ext4-nodtype", testutil.Ext4NoDType}, {"overlayfs", testutil.Overlay},
	} {
		cs = append(cs, fidelityCase{name: k.name, kind: k.kind})
		cs = append(cs, fidelityCase{name: k.name + "/" + fuseNone, kind: k.kind, fuse: fuseNone})
		if k.kind == testutil.Ext4NoDType || k.kind == testutil.Overlay {
			cs = append(cs, fidelityCase{name: k.name + "/" + fuseDockerPath, kind: k.kind, fuse: fuseDockerPath})
		}
	}
	cs = append(cs,
		fidelityCase{name: "ext4/configured-overlay", kind: testutil.Ext4, config: map[string]any{"storage-driver": "overlay"}},
		fidelityCase{name: "ext4/configured-aufs", kind: testutil.Ext4, config: map[string]any{"storage-driver": "aufs"}},
		fidelityCase{name: "ext4/prior-overlay2", kind: testutil.Ext4, prior: "overlay2"},
		fidelityCase{name: "ext4/prior-overlay", kind: testutil.Ext4, prior: "overlay", releases: []string{"20.10"}},
		fidelityCase{name: "ext4/prior-fuse-overlayfs", kind: testutil.Ext4, prior: "fuse-overlayfs"},
		fidelityCase{name: "btrfs/prior-btrfs", kind: testutil.Btrfs, prior: "btrfs"},
		fidelityCase{name: "ext4/prior-vfs", kind: testutil.Ext4, prior: "vfs", refuse: true},
		fidelityCase{name: "ext4/prior-overlay2+fuse-overlayfs", kind: testutil.Ext4, prior: "overlay2", prior2: "fuse-overlayfs", refuse: true, ownFails: true},
		fidelityCase{name: "ext4/prior-btrfs-on-ext4", kind: testutil.Ext4, priorDir: "btrfs/subvolumes/0123456789abcdef", refuse: true, ownFails: true},
		fidelityCase{name: "ext4/prior-containerd-store", kind: testutil.Ext4, prior: "-", releases: []string{"29.7"}},
		fidelityCase{name: "ext4/snapshotter", kind: testutil.Ext4, config: snapshotterOn, releases: since26},
		fidelityCase{name: "ext4/snapshotter+overlayfs", kind: testutil.Ext4, config: withDriver(snapshotterOn, "overlayfs"), releases: since26},
		fidelityCase{name: "ext4/snapshotter+overlay2", kind: testutil.Ext4, config: withDriver(snapshotterOn, "overlay2"), releases: since26},
		fidelityCase{name: "ext4/snapshotter-over-prior-overlay2", kind: testutil.Ext4, prior: "overlay2", config: snapshotterOn, releases: since26, refuse: true},
	)
	return cs
}()

// fidelityCell is one scenario × release outcome, for the agreement table.
type fidelityCell struct {
	// graphprobe: "overlay2", "overlayfs (containerd)", "exit 3", "exit 4".
	graphprobe string
	// own is dockerd's own choice, or why it fails.
	own   string
	agree bool
}

var fidelityTable = struct {
	sync.Mutex
	cells map[string]map[string]fidelityCell
}{cells: map[string]map[string]fidelityCell{}}

func recordCell(scenario, rel string, c fidelityCell) {
	fidelityTable.Lock()
	defer fidelityTable.Unlock()
	if fidelityTable.cells[scenario] == nil {
		fidelityTable.cells[scenario] = map[string]fidelityCell{}
	}
	fidelityTable.cells[scenario][rel] = c
}

// TestFidelity is the agreement suite: for every scenario and every real
// engine, the daemon.json that `graphprobe select` writes (default
// invocation: quick benchmark, release detected from dockerd on PATH) must
// start that dockerd with exactly the driver and image store graphprobe
// reported, and an import and a container create must work on it; it must
// equal dockerd's own choice unless that choice fails; it must never hide
// images (exit 4) nor write a config no driver can run (exit 3); it keeps
// every other key, and a rerun changes nothing.
func TestFidelity(t *testing.T) {
	caches := dockertest.EnsureAll(t)
	bin := graphprobeBinary(t)
	tarball := writeImageTarball(t)
	for _, tc := range fidelityCases {
		t.Run(tc.name, func(t *testing.T) {
			fs := testutil.NewFS(t, tc.kind, 512)
			path := scenarioPath(t, tc.fuse)
			for _, c := range caches {
				if !tc.appliesTo(c.Release.Name) {
					continue
				}
				t.Run(c.Release.Name, func(t *testing.T) {
					t.Parallel()
					runFidelity(t, tc, c, bin, tarball, filepath.Join(fs.Dir, c.Release.Name), path)
				})
			}
		})
	}
	printFidelityTable(t, caches)
}

func runFidelity(t *testing.T, tc fidelityCase, c *dockertest.Cache, bin, tarball, dir string, path []string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dataRoot := filepath.Join(dir, "docker")
	cell := fidelityCell{}
	defer func() { recordCell(tc.name, c.Release.Name, cell) }()

	// Prior data, made by this release's dockerd.
	for _, prior := range []string{tc.prior, tc.prior2} {
		if prior == "" {
			continue
		}
		opts := dockertest.Options{Cache: c, DataRoot: dataRoot, Path: path}
		if prior != "-" {
			opts.StorageDriver = prior
		}
		if tc.priorConfig != nil {
			opts.ConfigFile = writeConfigAt(t, filepath.Join(dir, "prior.json"), tc.priorConfig)
		}
		d := dockertest.Start(t, opts)
		d.Import(t, tarball, "graphprobe/e2e:prior")
		d.CreateContainer(t, "graphprobe/e2e:prior", "/opt/tool/bin/run")
		d.Stop(t)
	}
	if tc.priorDir != "" {
		if err := os.MkdirAll(filepath.Join(dataRoot, tc.priorDir), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	hasPrior := tc.prior != "" || tc.priorDir != ""

	// dockerd's own choice on a data-root of its own (prior-data cases:
	// the data decides): the operator's config as it is, and where that
	// fails, without its storage-driver, which graphprobe then replaces.
	var own ownChoice
	if !hasPrior {
		own = tryDockerd(t, c, filepath.Join(dir, "own"), writeConfigAt(t, filepath.Join(dir, "own.json"), tc.config), path, tarball)
		if _, set := tc.config["storage-driver"]; set && !own.works() {
			cfg := map[string]any{}
			for k, v := range tc.config {
				if k != "storage-driver" {
					cfg[k] = v
				}
			}
			own = tryDockerd(t, c, filepath.Join(dir, "own-default"), writeConfigAt(t, filepath.Join(dir, "own-default.json"), cfg), path, tarball)
		}
		cell.own = own.String()
	}

	// The operator's keys in their order, then the scenario's.
	cfgPath := filepath.Join(dir, "daemon.json")
	text := strings.TrimRight(otherKeys, "}\n")
	keys := make([]string, 0, len(tc.config))
	for k := range tc.config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := json.Marshal(tc.config[k])
		if err != nil {
			t.Fatal(err)
		}
		text += fmt.Sprintf(",\n  %q: %s", k, v)
	}
	if err := os.WriteFile(cfgPath, []byte(text+"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, cfgPath)

	stateDir := filepath.Join(dir, "state")
	res, code, stderr := selectBin(t, bin, c, path, "--data-root", dataRoot, "--config", cfgPath, "--state-dir", stateDir)
	t.Logf("%s: graphprobe select: exit %d, driver %q, image store %q, reason: %s", c.Release.Name, code, res.Driver, res.ImageStore, res.Reason)
	if res.DockerVersion != c.Semver() {
		t.Errorf("graphprobe detected Docker %q from dockerd on PATH, dockerd is %q", res.DockerVersion, c.Semver())
	}
	switch code {
	case 0:
		cell.graphprobe = res.Driver + " (" + res.ImageStore + ")"
	case 3:
		cell.graphprobe = "exit 3"
	case 4:
		cell.graphprobe = "exit 4"
	default:
		cell.graphprobe = fmt.Sprintf("exit %d", code)
		t.Fatalf("select: exit %d\n%s", code, stderr)
	}

	if tc.refuse {
		if code != 4 {
			t.Errorf("select: exit %d with driver %s; want exit 4: the data under %s would vanish from docker images", code, res.Driver, dataRoot)
		}
		if tc.ownFails {
			// dockerd agrees that it cannot go on: it refuses to start.
			if d, ref := dockertest.TryStart(t, dockertest.Options{Cache: c, DataRoot: dataRoot, Path: path}); ref == nil {
				info, _ := d.InfoErr()
				d.Stop(t)
				t.Errorf("dockerd %s started (driver %s) on the data-root graphprobe refused", c.Release.Name, info.Driver)
			} else {
				cell.own = "fails to start: " + firstLine(ref.Reason)
				t.Logf("dockerd %s refuses too: %s", c.Release.Name, firstLine(ref.Reason))
			}
		}
	}
	if code != 0 {
		if got := mustRead(t, cfgPath); got != before {
			t.Errorf("exit %d changed daemon.json:\n%s", code, got)
		}
		if code == 3 && own.works() {
			t.Errorf("exit 3, but dockerd's own choice works: %s", own)
		}
		if code == 4 && !tc.refuse {
			t.Errorf("exit 4 (%+v) where nothing would be hidden", res.Refused)
		}
		cell.agree = (code == 4 && tc.refuse) || (code == 3 && !own.works())
		return
	}
	checkOtherKeys(t, cfgPath)

	// graphprobe's config on the real engine.
	d := dockertest.Start(t, dockertest.Options{Cache: c, DataRoot: dataRoot, ConfigFile: cfgPath, Path: path})
	info := d.Info(t)
	store := imageStoreOf(info)
	if info.Driver != res.Driver || store != res.ImageStore {
		t.Errorf("dockerd runs %s (%s) with graphprobe's daemon.json; graphprobe reported %s (%s)", info.Driver, store, res.Driver, res.ImageStore)
	}
	if tc.prior != "" {
		if out := d.Docker(t, "images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "graphprobe/e2e:prior") {
			t.Errorf("the prior image vanished from docker images with graphprobe's config (driver %s)", info.Driver)
		}
	}
	if _, err := d.DockerErr("import", tarball, "graphprobe/e2e:selected"); err != nil {
		t.Errorf("import with graphprobe's config: %v", err)
	} else if _, err := d.DockerErr("create", "--pull", "never", "--network", "none", "graphprobe/e2e:selected", "/opt/tool/bin/run"); err != nil {
		t.Errorf("create with graphprobe's config: %v", err)
	}
	d.Stop(t)

	// Agreement with dockerd's own choice.
	cell.agree = true
	if !hasPrior && (own.driver != info.Driver || own.store != store) {
		if own.works() {
			cell.agree = false
			t.Errorf("graphprobe chose %s (%s), dockerd's own choice %s works", info.Driver, store, own)
		} else if !mentionsOwnFailure(res, own) {
			t.Errorf("graphprobe differs from dockerd's own choice (%s) without saying why: reason %q, warnings %q", own, res.Reason, res.Warnings)
		}
	}

	// A rerun after dockerd used the config changes nothing.
	again, code, stderr := selectBin(t, bin, c, path, "--data-root", dataRoot, "--config", cfgPath, "--state-dir", stateDir)
	if code != 0 || again.DaemonJSON.Written || again.Driver != res.Driver {
		t.Errorf("rerun: exit %d, written %v, driver %q (first run %q)\n%s", code, again.DaemonJSON.Written, again.Driver, res.Driver, stderr)
	}
}

// ownChoice is what dockerd did with no storage-driver configured.
type ownChoice struct {
	driver, store string
	// failed says how it failed: to start, or to import.
	failed string
}

func (o ownChoice) works() bool { return o.failed == "" }

func (o ownChoice) String() string {
	if o.failed != "" {
		if o.driver != "" {
			return fmt.Sprintf("%s (%s): %s", o.driver, o.store, o.failed)
		}
		return o.failed
	}
	return fmt.Sprintf("%s (%s)", o.driver, o.store)
}

// tryDockerd starts dockerd and imports an image and creates a container,
// recording rather than failing on the way.
func tryDockerd(t *testing.T, c *dockertest.Cache, dataRoot, cfg string, path []string, tarball string) ownChoice {
	t.Helper()
	d, ref := dockertest.TryStart(t, dockertest.Options{Cache: c, DataRoot: dataRoot, ConfigFile: cfg, Path: path})
	if ref != nil {
		return ownChoice{failed: "fails to start: " + firstLine(ref.Reason)}
	}
	defer d.Stop(t)
	info, err := d.InfoErr()
	if err != nil {
		return ownChoice{failed: "docker info fails: " + err.Error()}
	}
	o := ownChoice{driver: info.Driver, store: imageStoreOf(info)}
	if _, err := d.DockerErr("import", tarball, "graphprobe/e2e:own"); err != nil {
		o.failed = "import fails: " + firstLine(err.Error())
	} else if _, err := d.DockerErr("create", "--pull", "never", "--network", "none", "graphprobe/e2e:own", "/opt/tool/bin/run"); err != nil {
		o.failed = "create fails: " + firstLine(err.Error())
	}
	return o
}

// imageStoreOf reads the image store from docker info: the containerd
// store reports its snapshotter with driver-type io.containerd.snapshotter.v1.
func imageStoreOf(i dockertest.Info) string {
	if v, ok := i.Status("driver-type"); ok && v == "io.containerd.snapshotter.v1" {
		return "containerd"
	}
	return "graphdriver"
}

// mentionsOwnFailure reports whether the result's reason or warnings say
// why it did not follow dockerd's own choice: they name dockerd, the
// driver it picked on its own (when it got as far as picking one), and
// that it fails there. A candidate's rejection alone is not an
// explanation: the reader of the reason must learn what dockerd would do.
func mentionsOwnFailure(r fidelityResult, own ownChoice) bool {
	text := strings.ToLower(r.Reason + " " + strings.Join(r.Warnings, " "))
	if own.driver != "" && !strings.Contains(text, strings.ToLower(own.driver)) {
		return false
	}
	return strings.Contains(text, "dockerd") && (strings.Contains(text, "fail") || strings.Contains(text, "cannot"))
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

type fidelityResult struct {
	DockerVersion string   `json:"dockerVersion"`
	Driver        string   `json:"driver"`
	ImageStore    string   `json:"imageStore"`
	Reason        string   `json:"reason"`
	Warnings      []string `json:"warnings"`
	Refused       *struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
		Hint    string `json:"hint"`
	} `json:"refused"`
	Candidates []struct {
		Driver  string   `json:"driver"`
		Reasons []string `json:"reasons"`
	} `json:"candidates"`
	DaemonJSON struct {
		Written bool `json:"written"`
	} `json:"daemonJSON"`
}

// selectBin runs the graphprobe binary as a provisioning script does: no
// --docker-version (dockerd of the release leads PATH), default benchmark.
func selectBin(t *testing.T, bin string, c *dockertest.Cache, path []string, args ...string) (fidelityResult, int, string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"select", "--format", "json", "--lock-file", filepath.Join(t.TempDir(), "lock")}, args...)...)
	cmd.Env = append(cleanEnv(), "PATH="+strings.Join(append(c.BinDirs(), path...), ":"))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run graphprobe: %v", err)
	}
	var res fidelityResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("select %v: exit %d, %v\nstdout: %s\nstderr: %s", args, code, err, out.String(), stderr.String())
	}
	return res, code, stderr.String()
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "DOCKER_") {
			env = append(env, kv)
		}
	}
	return env
}

// scenarioPath is the PATH after the engine's own directories that both
// graphprobe and dockerd get.
func scenarioPath(t *testing.T, fuse string) []string {
	t.Helper()
	switch fuse {
	case fuseNone:
		return dockertest.PathWithout(t, "fuse-overlayfs")
	case fuseDockerPath:
		real, err := exec.LookPath("fuse-overlayfs")
		if err != nil {
			if os.Getenv(testutil.RequireRootEnv) == "1" {
				t.Fatalf("fuse-overlayfs is not installed: %v", err)
			}
			t.Skipf("fuse-overlayfs is not installed: %v", err)
		}
		own := filepath.Join(t.TempDir(), "opt-fuse", "bin")
		if err := os.MkdirAll(own, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(real, filepath.Join(own, "fuse-overlayfs")); err != nil {
			t.Fatal(err)
		}
		return append([]string{own}, dockertest.PathWithout(t, "fuse-overlayfs")...)
	}
	return filepath.SplitList(os.Getenv("PATH"))
}

// writeConfigAt writes a daemon.json at p.
func writeConfigAt(t *testing.T, p string, cfg map[string]any) string {
	t.Helper()
	if cfg == nil {
		cfg = map[string]any{}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// graphprobeBinary builds the command once per test process.
func graphprobeBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "graphprobe-e2e-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "graphprobe")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/graphprobe/graphprobe/cmd/graphprobe").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("build graphprobe: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// printFidelityTable logs the scenario × release table, and writes it to
// $GRAPHPROBE_FIDELITY_TABLE when set (the README quotes it).
func printFidelityTable(t *testing.T, caches []*dockertest.Cache) {
	fidelityTable.Lock()
	defer fidelityTable.Unlock()
	var b strings.Builder
	b.WriteString("| scenario |")
	for _, c := range caches {
		fmt.Fprintf(&b, " %s |", c.Semver())
	}
	b.WriteString("\n|---|")
	for range caches {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	var names []string
	for n := range fidelityTable.cells {
		names = append(names, n)
	}
	order := map[string]int{}
	for i, c := range fidelityCases {
		order[c.name] = i
	}
	sort.Slice(names, func(i, j int) bool { return order[names[i]] < order[names[j]] })
	agree, total := 0, 0
	for _, n := range names {
		fmt.Fprintf(&b, "| %s |", n)
		for _, c := range caches {
			cell, ok := fidelityTable.cells[n][c.Release.Name]
			switch {
			case !ok:
				b.WriteString(" — |")
				continue
			case cell.own != "" && cell.own != cell.graphprobe:
				// "fails to start: <dockerd's words>" → "fails to start".
				own := cell.own
				if i := strings.Index(own, "fails"); i >= 0 {
					rest := own[i:]
					if j := strings.IndexByte(rest, ':'); j >= 0 {
						rest = rest[:j]
					}
					own = own[:i] + rest
				}
				fmt.Fprintf(&b, " %s; dockerd alone: %s |", cell.graphprobe, own)
			default:
				fmt.Fprintf(&b, " %s |", cell.graphprobe)
			}
			total++
			if cell.agree {
				agree++
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\n%d of %d scenario × release runs as the engine confirms.\n", agree, total)
	t.Logf("agreement table:\n%s", b.String())
	if p := os.Getenv("GRAPHPROBE_FIDELITY_TABLE"); p != "" {
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Errorf("write agreement table: %v", err)
		}
	}
}
