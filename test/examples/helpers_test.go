package examples

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

const repoRoot = "../.."

// root is the repository's absolute path.
func root(t testing.TB) string {
	t.Helper()
	abs, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// host is the absolute path of a fixture host under testdata/hosts.
func host(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(root(t), "testdata/hosts", name)
	if _, err := os.Stat(filepath.Join(p, "proc/sys/kernel/osrelease")); err != nil {
		t.Fatalf("fixture host %s: %v", name, err)
	}
	return p
}

var (
	cliOnce sync.Once
	cliDir  string
	cliPath string
	cliErr  error
)

// cli builds graphprobe from the work tree, once per test binary.
func cli(t testing.TB) string {
	t.Helper()
	testutil.RequiresTool(t, "go")
	cliOnce.Do(func() {
		if cliDir, cliErr = os.MkdirTemp("", "graphprobe-examples-"); cliErr != nil {
			return
		}
		cliPath = filepath.Join(cliDir, "graphprobe")
		cmd := exec.Command("go", "build", "-o", cliPath, "./cmd/graphprobe")
		cmd.Dir = root(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cliDir != "" {
		os.RemoveAll(cliDir)
	}
	os.Exit(code)
}

// result is a finished command.
type result struct {
	stdout, stderr string
	code           int
}

// runCmd runs cmd and returns its output and exit code; it fails the test
// only when the command could not run at all.
func runCmd(t testing.TB, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return result{stdout.String(), stderr.String(), 0}
	case errors.As(err, &ee) && ee.Exited():
		return result{stdout.String(), stderr.String(), ee.ExitCode()}
	}
	t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	return result{}
}

// readFile returns a file's content, "" when it does not exist.
func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
