package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// RequireRootEnv is set by CI so that a skipped root test fails the run.
const RequireRootEnv = "GRAPHPROBE_REQUIRE_ROOT"

func mustNotSkip() bool { return os.Getenv(RequireRootEnv) == "1" }

// RequiresRoot skips a test that needs root, unless GRAPHPROBE_REQUIRE_ROOT=1,
// in which case it fails: a skip must never hide a broken probe in CI.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if mustNotSkip() {
		t.Fatalf("test needs root, and %s=1", RequireRootEnv)
	}
	t.Skip("test needs root")
}

// RequiresTool skips (or, under GRAPHPROBE_REQUIRE_ROOT=1, fails) when a
// binary the test drives is not installed. `make test` installs them.
func RequiresTool(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if mustNotSkip() {
				t.Fatalf("test needs %s (make test installs it), and %s=1", name, RequireRootEnv)
			}
			t.Skipf("test needs %s", name)
		}
	}
}

// Run runs a command and fails the test with its output on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}
