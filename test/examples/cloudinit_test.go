package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

const cloudConfig = "examples/cloud-init/cloud-config.yaml"

// cloudConfigDoc is the part of a cloud-config these tests read.
type cloudConfigDoc struct {
	Packages   []string `yaml:"packages"`
	WriteFiles []struct {
		Path        string `yaml:"path"`
		Permissions string `yaml:"permissions"`
		Content     string `yaml:"content"`
	} `yaml:"write_files"`
	Runcmd []any `yaml:"runcmd"`
}

// TestCloudConfigSchema validates the cloud-config with Debian's cloud-init,
// and a copy with a wrong type, which cloud-init must reject (so that a
// pass means the schema was really checked).
func TestCloudConfigSchema(t *testing.T) {
	testutil.RequiresTool(t, "cloud-init")
	path := filepath.Join(root(t), cloudConfig)
	r := runCmd(t, exec.Command("cloud-init", "schema", "--config-file", path))
	if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "Valid cloud-config") {
		t.Errorf("cloud-init schema: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	broken := strings.Replace(readFile(t, path), "package_update: true", `package_update: "always"`, 1)
	if !strings.Contains(broken, `package_update: "always"`) {
		t.Fatal("the cloud-config has no package_update: true to break")
	}
	bad := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, exec.Command("cloud-init", "schema", "--config-file", bad)); r.code == 0 {
		t.Errorf("cloud-init schema accepted a broken copy:\n%s%s", r.stdout, r.stderr)
	}
}

// TestCloudConfigInstallsGraphprobeBeforeDocker checks the order that makes
// the selection run before Docker's first start: graphprobe installed by a
// runcmd entry before the one that installs Docker, Docker not among
// `packages:` (installed before runcmd), and the decision reported after.
// The scripts it writes are POSIX sh that shellcheck passes.
func TestCloudConfigInstallsGraphprobeBeforeDocker(t *testing.T) {
	var doc cloudConfigDoc
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root(t), cloudConfig))), &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range doc.Packages {
		if strings.Contains(p, "docker") {
			t.Errorf("packages: installs %s before runcmd, so before graphprobe", p)
		}
	}
	scripts := map[string]string{}
	for _, f := range doc.WriteFiles {
		if strings.HasPrefix(f.Content, "#!") {
			scripts[f.Path] = f.Content
			if f.Permissions != "0755" {
				t.Errorf("%s: permissions %q, want 0755", f.Path, f.Permissions)
			}
		}
	}
	step := func(want func(cmd string) bool) int {
		for i, c := range doc.Runcmd {
			var cmd string
			switch v := c.(type) {
			case string:
				cmd = v
			case []any:
				var words []string
				for _, w := range v {
					words = append(words, w.(string))
				}
				cmd = strings.Join(words, " ")
			}
			// A step that runs a written script stands for its content.
			cmd += "\n" + scripts[strings.Fields(cmd + " x")[0]]
			if want(cmd) {
				return i
			}
		}
		return -1
	}
	graphprobe := step(func(c string) bool {
		return strings.Contains(c, "graphprobe") && strings.Contains(c, "apt-get install")
	})
	docker := step(func(c string) bool { return strings.Contains(c, "apt-get install -y docker") })
	report := step(func(c string) bool {
		return strings.Contains(c, "journalctl -u \"$unit\"") || strings.Contains(c, "journalctl -u graphprobe-select")
	})
	switch {
	case graphprobe < 0 || docker < 0 || report < 0:
		t.Errorf("runcmd steps: graphprobe install %d, docker install %d, report %d; want all", graphprobe, docker, report)
	case !(graphprobe < docker && docker < report):
		t.Errorf("runcmd order: graphprobe install %d, docker install %d, report %d; want that order", graphprobe, docker, report)
	}

	testutil.RequiresTool(t, "shellcheck")
	if len(scripts) < 2 {
		t.Fatalf("write_files has %d scripts, want the installer and the report", len(scripts))
	}
	for path, content := range scripts {
		f := filepath.Join(t.TempDir(), filepath.Base(path))
		if err := os.WriteFile(f, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		if r := runCmd(t, exec.Command("shellcheck", "--shell=sh", "--severity=style", f)); r.code != 0 {
			t.Errorf("shellcheck %s: exit %d\n%s%s", path, r.code, r.stdout, r.stderr)
		}
	}
}
