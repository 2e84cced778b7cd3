package examples

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// TestKernelMatrixWorkflowLint runs actionlint (and through it shellcheck)
// on the kernel-matrix example job, and shellcheck on the script it calls.
func TestKernelMatrixWorkflowLint(t *testing.T) {
	testutil.RequiresTool(t, "go", "shellcheck")
	cmd := exec.Command("go", "run", actionlint(t), "-no-color", filepath.Join(root(t), "examples/ci/kernel-matrix.yml"))
	cmd.Dir = t.TempDir()
	if r := runCmd(t, cmd); r.code != 0 {
		t.Errorf("actionlint: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(t, exec.Command("shellcheck", filepath.Join(root(t), "scripts/kernel-matrix"))); r.code != 0 {
		t.Errorf("shellcheck scripts/kernel-matrix: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	help := runCmd(t, exec.Command(filepath.Join(root(t), "scripts/kernel-matrix"), "--help"))
	if help.code != 0 || !strings.Contains(help.stdout, "Usage: scripts/kernel-matrix") {
		t.Errorf("scripts/kernel-matrix --help: exit %d\n%s%s", help.code, help.stdout, help.stderr)
	}
	if r := runCmd(t, exec.Command(filepath.Join(root(t), "scripts/kernel-matrix"))); r.code != 2 {
		t.Errorf("scripts/kernel-matrix without a kernel: exit %d, want 2 (usage)", r.code)
	}
}
