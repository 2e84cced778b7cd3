package dockertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDaemonLifecycle starts and stops a daemon on a plain directory and
// checks the harness's own promises: the API answers, the private paths are
// used, nothing is left running or mounted.
func TestDaemonLifecycle(t *testing.T) {
	for _, rel := range Releases {
		t.Run(rel.Name, func(t *testing.T) { testDaemonLifecycle(t, EnsureRelease(t, rel.Name)) })
	}
}

func testDaemonLifecycle(t *testing.T, c *Cache) {
	d := Start(t, Options{Cache: c})
	info := d.Info(t)
	if !strings.HasPrefix(info.ServerVersion, c.Release.Name+".") {
		t.Errorf("server version %q, want %s.x", info.ServerVersion, c.Release.Name)
	}
	if info.DockerRootDir != d.DataRoot {
		t.Errorf("DockerRootDir %q, want the private data-root %q", info.DockerRootDir, d.DataRoot)
	}
	if c.Release.Name == "20.10" {
		if _, err := os.Stat(filepath.Join(filepath.Dir(d.ConfigFile), "key.json")); err != nil {
			t.Errorf("trust key not in the private dir: %v", err)
		}
	}
	pid := d.cmd.Process.Pid
	t.Logf("dockerd %s started in %s", info.ServerVersion, d.StartDuration)
	d.Stop(t)
	t.Logf("dockerd stopped in %s", d.StopDuration)
	if d.Running() {
		t.Fatal("dockerd still running after Stop")
	}
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
		t.Errorf("dockerd pid %d still exists after Stop", pid)
	}
	if d.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("dockerd exit status %d after SIGTERM, want 0\n%s", d.cmd.ProcessState.ExitCode(), tail(d.Log(), 3000))
	}
	if len(d.leftMounts) != 0 {
		t.Errorf("left mounts after a clean stop: %v", d.leftMounts)
	}
	// Stop is idempotent.
	d.Stop(t)
}

// TestStartExpectFailure: an unknown storage option stops dockerd, and the
// refusal carries the line it printed.
func TestStartExpectFailure(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "daemon.json")
	if err := os.WriteFile(cfg, []byte(`{"storage-driver": "vfs", "storage-opts": ["vfs.bogus=1"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	dataRoot := filepath.Join(t.TempDir(), "docker")
	ref := StartExpectFailure(t, Options{ConfigFile: cfg, DataRoot: dataRoot})
	if ref.ExitCode == 0 {
		t.Errorf("exit status 0 for a refused start")
	}
	if !strings.Contains(ref.Reason, "vfs.bogus") {
		t.Errorf("reason %q does not name the option", ref.Reason)
	}
	t.Logf("refusal: %s", ref.Reason)
	// dockerd 20.10 bind-mounts its data-root on itself before it reads
	// the storage options, and exits without undoing it: the harness must
	// see that mount in dockerd's namespace (and drop it with it).
	if len(ref.LeftMounts) != 1 || !strings.HasPrefix(ref.LeftMounts[0], dataRoot+" ") {
		t.Errorf("left mounts %q, want dockerd's bind mount of %s", ref.LeftMounts, dataRoot)
	}
	for _, m := range hostMountsUnder(dataRoot) {
		t.Errorf("mount %s of dockerd's namespace is visible on the host", m)
	}
}

// TestFillConcurrent: fills of a ready cache from several goroutines (each
// with its own lock descriptor, as separate processes have) agree and do
// not rebuild it.
func TestFillConcurrent(t *testing.T) {
	c := Ensure(t)
	stamp := filepath.Join(c.Dir, "ready")
	before, err := os.Stat(stamp)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	versions := make(chan string, 4)
	for i := 0; i < 4; i++ {
		go func() {
			var log strings.Builder
			got, err := Fill(context.Background(), filepath.Dir(c.Dir), c.Release, &log)
			if err != nil {
				errs <- fmt.Errorf("%v\n%s", err, log.String())
				return
			}
			errs <- nil
			versions <- got.Version
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ {
		if v := <-versions; v != c.Version {
			t.Errorf("version %q, want %q", v, c.Version)
		}
	}
	after, err := os.Stat(stamp)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("a ready cache was rebuilt")
	}
}
