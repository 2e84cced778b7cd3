package examples

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

const workflow = "examples/ci/graphprobe-matrix.yml"

// actionlint is the pinned actionlint from packaging/tools.env.
func actionlint(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(readFile(t, filepath.Join(root(t), "packaging/tools.env")), "\n") {
		if v, ok := strings.CutPrefix(line, "ACTIONLINT="); ok {
			return v
		}
	}
	t.Fatal("packaging/tools.env has no ACTIONLINT=")
	return ""
}

// TestWorkflowLint runs actionlint (which also runs shellcheck on every
// run: script when shellcheck is installed) on the workflow, and on a copy
// with an undefined step output, which it must reject.
func TestWorkflowLint(t *testing.T) {
	testutil.RequiresTool(t, "go", "shellcheck")
	lint := func(path string) result {
		cmd := exec.Command("go", "run", actionlint(t), "-no-color", path)
		cmd.Dir = t.TempDir() // outside the module: go run PKG@VERSION
		return runCmd(t, cmd)
	}
	if r := lint(filepath.Join(root(t), workflow)); r.code != 0 {
		t.Errorf("actionlint: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	src := readFile(t, filepath.Join(root(t), workflow))
	broken := strings.Replace(src, "steps.matrix.outputs.hosts", "steps.no_such_step.outputs.hosts", 1)
	if broken == src {
		t.Fatal("the workflow has no steps.matrix.outputs.hosts to break")
	}
	bad := filepath.Join(t.TempDir(), "broken.yml")
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := lint(bad); r.code == 0 || !strings.Contains(r.stdout, "no_such_step") {
		t.Errorf("actionlint passed a workflow with an undefined step:\n%s%s", r.stdout, r.stderr)
	}
}

// matrixStep returns the run: script of the workflow's step with id matrix
// and the shell the workflow runs it with.
func matrixStep(t *testing.T) (script string, shell []string) {
	t.Helper()
	var wf struct {
		Defaults struct {
			Run struct {
				Shell string `yaml:"shell"`
			} `yaml:"run"`
		} `yaml:"defaults"`
		Jobs map[string]struct {
			Steps []struct {
				ID  string `yaml:"id"`
				Run string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root(t), workflow))), &wf); err != nil {
		t.Fatal(err)
	}
	// GitHub runs `shell: bash` as bash --noprofile --norc -eo pipefail.
	if wf.Defaults.Run.Shell != "bash" {
		t.Fatalf("defaults.run.shell is %q, want bash (-eo pipefail, so that | tee keeps the exit code)", wf.Defaults.Run.Shell)
	}
	for _, job := range wf.Jobs {
		for _, s := range job.Steps {
			if s.ID == "matrix" {
				return s.Run, []string{"bash", "--noprofile", "--norc", "-eo", "pipefail"}
			}
		}
	}
	t.Fatal("the workflow has no step with id: matrix")
	return "", nil
}

// TestWorkflowMatrixStep runs the workflow's matrix step as the runner
// would (bash -eo pipefail, in a checkout with bin/graphprobe built): it
// passes on the stored hosts and writes the table as JSON; with one
// expected decision changed it fails the step, although its output goes
// through tee.
func TestWorkflowMatrixStep(t *testing.T) {
	testutil.RequiresTool(t, "bash", "jq", "tee")
	script, shell := matrixStep(t)
	if !strings.Contains(script, "graphprobe matrix") {
		t.Fatalf("the matrix step does not run graphprobe matrix:\n%s", script)
	}
	gp := cli(t)

	// checkout lays out a work dir the step runs in: bin/graphprobe and
	// testdata/hosts (the stored hosts, or a changed copy).
	checkout := func(hosts string) string {
		dir := t.TempDir()
		for _, d := range []string{"bin", "testdata"} {
			if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink(gp, filepath.Join(dir, "bin/graphprobe")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(hosts, filepath.Join(dir, "testdata/hosts")); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	step := func(dir string) result {
		cmd := exec.Command(shell[0], append(shell[1:], "-c", script)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GITHUB_OUTPUT="+filepath.Join(dir, "github-output"))
		return runCmd(t, cmd)
	}

	stored := filepath.Join(root(t), "testdata/hosts")
	dir := checkout(stored)
	r := step(dir)
	if r.code != 0 {
		t.Fatalf("matrix step: exit %d\n%s", r.code, r.stderr)
	}
	var doc struct {
		SchemaVersion int `json:"schemaVersion"`
		Rows          []struct {
			Host, DockerVersion, Decision string
			Matches                       *bool
		} `json:"rows"`
		Mismatches int `json:"mismatches"`
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "matrix.json"))), &doc); err != nil {
		t.Fatalf("matrix.json: %v", err)
	}
	entries, err := os.ReadDir(stored)
	if err != nil {
		t.Fatal(err)
	}
	hosts := 0
	for _, e := range entries {
		if e.IsDir() {
			hosts++
		}
	}
	if doc.SchemaVersion != 1 || doc.Mismatches != 0 || len(doc.Rows) != 2*hosts {
		t.Errorf("matrix.json: schemaVersion %d, %d mismatches, %d rows; want 1, 0, %d (2 releases x %d hosts)",
			doc.SchemaVersion, doc.Mismatches, len(doc.Rows), 2*hosts, hosts)
	}
	for _, row := range doc.Rows {
		if row.Matches == nil || !*row.Matches {
			t.Errorf("%s on Docker %s: %s has no matching expectation", row.Host, row.DockerVersion, row.Decision)
		}
	}
	if out := readFile(t, filepath.Join(dir, "github-output")); out != "hosts="+itoa(hosts)+"\n" {
		t.Errorf("step output %q, want hosts=%d", out, hosts)
	}

	// A copy of the hosts whose expectations say btrfs where graphprobe
	// decides overlay2: the step must fail.
	changed := filepath.Join(t.TempDir(), "hosts")
	if out, err := exec.Command("cp", "-a", stored, changed).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	expect := filepath.Join(changed, "expected-decisions.yaml")
	src := readFile(t, expect)
	mod := strings.Replace(src, "debian-12:\n  \"17.03.2\": overlay2\n  \"18.09.9\": overlay2\n  \"20.10.24\": overlay2", "debian-12:\n  \"17.03.2\": overlay2\n  \"18.09.9\": overlay2\n  \"20.10.24\": btrfs", 1)
	if mod == src {
		t.Fatalf("%s: no debian-12 20.10.24 overlay2 line to change", expect)
	}
	if err := os.WriteFile(expect, []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := step(checkout(changed)); r.code == 0 {
		t.Errorf("the matrix step passed with a wrong expectation:\n%s", r.stdout)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
