package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

var examplePolicy = filepath.Join(repoRoot, "examples", "policy.yaml")

// TestPolicyExampleDocumented: the README and the man page show the
// shipped example exactly, so the documented example is the tested one.
func TestPolicyExampleDocumented(t *testing.T) {
	want, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```yaml\n"+string(want)+"```\n") {
		t.Error("README.md does not show examples/policy.yaml as it is")
	}
	man, err := os.ReadFile(filepath.Join(repoRoot, "packaging", "man", "graphprobe.1.in"))
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?s)\.SH POLICY FILE\n.*?\.EX\n(.*?)\.EE\n`).FindSubmatch(man)
	if section == nil {
		t.Fatal("the man page has no POLICY FILE section with an example")
	}
	got := strings.NewReplacer(`\-`, "-", `\e`, `\`).Replace(string(section[1]))
	if got != string(want) {
		t.Errorf("the man page's policy example differs from examples/policy.yaml:\n%s", got)
	}
}

// TestPolicyExampleRuns runs select with the shipped example on captured
// hosts for several Docker releases: it loads, and it decides.
func TestPolicyExampleRuns(t *testing.T) {
	for _, tc := range []struct{ host, docker, driver string }{
		{"debian-12", "20.10.24", "overlay2"},
		{"debian-12", "25.0.3", "overlay2"},
		{"debian-12", "29.0.0", "overlay2"}, // imageStore: graphdriver
		{"btrfs-root", "20.10.24", "overlay2"},
		{"rhel-8", "25.0.3", "overlay2"},
	} {
		t.Run(tc.host+"/"+tc.docker, func(t *testing.T) {
			doc, _, errOut, code := selectJSON(t, "--dry-run", "--policy", examplePolicy, "--root-prefix", filepath.Join(repoRoot, "testdata/hosts", tc.host),
				"--config", filepath.Join(t.TempDir(), "daemon.json"), "--docker-version", tc.docker)
			if code != 0 || doc.Driver != tc.driver || doc.ImageStore != "graphdriver" {
				t.Errorf("exit %d, driver %q, image store %q; want 0, %s, graphdriver: %s", code, doc.Driver, doc.ImageStore, tc.driver, errOut)
			}
		})
	}
}

// TestPolicyExampleLive runs the example for real on the filesystems a
// data-root is usually on, without project quotas: ext4 and xfs. The
// chosen driver is initialised and benchmarked with the example's sizes,
// and with --strategy fastest its weights rank the benchmarked drivers.
func TestPolicyExampleLive(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, tc := range []struct {
		kind string
		args []string
	}{
		{testutil.Ext4, nil},
		{testutil.XFS, nil},
		{testutil.Ext4, []string{"--strategy", "fastest"}},
	} {
		t.Run(tc.kind+strings.Join(tc.args, ""), func(t *testing.T) {
			fs := testutil.NewFS(t, tc.kind, 512)
			args := append([]string{"--dry-run", "--policy", examplePolicy, "--data-root", filepath.Join(fs.Dir, "docker"),
				"--config", filepath.Join(t.TempDir(), "daemon.json"), "--lock-file", filepath.Join(t.TempDir(), "lock"),
				"--docker-version", "25.0.3"}, tc.args...)
			doc, out, errOut, code := selectJSON(t, args...)
			if code != 0 || doc.Driver != "overlay2" {
				t.Fatalf("exit %d, driver %q; want 0 and overlay2: %s", code, doc.Driver, errOut)
			}
			var full struct {
				Candidates []struct {
					Driver    string
					Benchmark *struct{ Results []struct{ Name string } }
				}
			}
			if err := json.Unmarshal([]byte(out), &full); err != nil {
				t.Fatal(err)
			}
			benched := map[string]bool{}
			for _, c := range full.Candidates {
				if c.Benchmark != nil && len(c.Benchmark.Results) > 0 {
					benched[c.Driver] = true
				}
			}
			if !benched["overlay2"] || benched["vfs"] {
				t.Errorf("benchmarked %v: want overlay2, and never the excluded vfs", benched)
			}
		})
	}
}

// TestPolicyLeavesNothing: a policy that allows only drivers that cannot
// run here is named as the cause (exit 3).
func TestPolicyLeavesNothing(t *testing.T) {
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte("priority: [btrfs, zfs]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t, "select", "--dry-run", "--policy", pol, "--root-prefix", filepath.Join(repoRoot, "testdata/hosts/debian-12"),
		"--config", filepath.Join(t.TempDir(), "daemon.json"), "--docker-version", "25.0.3")
	want := "graphprobe: no usable storage driver: the policy leaves no storage driver for Docker 25.0.3: overlay2 and vfs can run on this host, " +
		"but the policy excludes them or leaves them out of its priority list; allow one of them\n"
	if code != ExitNoDriver || errOut != want {
		t.Errorf("exit %d, stderr %q\nwant exit %d, %q", code, errOut, ExitNoDriver, want)
	}
}
