package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// TestSelectTriesUserOptions: the driver is initialised with the storage
// options daemon.json or the policy will hold, and an option it refuses
// is an error naming the option (exit 1, nothing written), never a reason
// to call the config usable or to move to another driver.
func TestSelectTriesUserOptions(t *testing.T) {
	testutil.RequiresRoot(t)
	fs := testutil.NewFS(t, testutil.Ext4, 0)
	for _, tc := range []struct {
		name, config, policy string
		code                 int
		want                 string
	}{
		{name: "unknown option in daemon.json", config: `{"storage-driver": "overlay2", "storage-opts": ["overlay2.bogus=1"]}`, code: 1, want: "overlay2.bogus=1 (daemon.json)"},
		{name: "size without project quotas", config: `{"storage-driver": "overlay2", "storage-opts": ["overlay2.size=10G"]}`, code: 1, want: "overlay2.size=10G (daemon.json)"},
		{name: "policy option", config: `{}`, policy: "storageOpts:\n  overlay2:\n    - overlay2.size=20G\n", code: 1, want: "overlay2.size=20G (policy)"},
		{name: "policy option over a working config", config: `{"storage-driver": "overlay2"}`, policy: "storageOpts:\n  overlay2:\n    - overlay2.size=20G\n", code: 1, want: "overlay2.size=20G (policy)"},
		{name: "accepted option", config: `{"storage-driver": "overlay2", "storage-opts": ["overlay2.mountopt=nodev"]}`, code: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "daemon.json")
			os.WriteFile(cfg, []byte(tc.config), 0o644)
			args := []string{"select", "--bench", "off", "--docker-version", "24.0.7", "--data-root", filepath.Join(fs.Dir, "docker"),
				"--config", cfg, "--lock-file", filepath.Join(dir, "lock"), "--state-dir", filepath.Join(dir, "state")}
			if tc.policy != "" {
				pol := filepath.Join(dir, "policy.yaml")
				os.WriteFile(pol, []byte(tc.policy), 0o644)
				args = append(args, "--policy", pol)
			}
			out, errOut, code := runCLI(t, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			if tc.want != "" && !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr does not name %q:\n%s", tc.want, errOut)
			}
			if got, _ := os.ReadFile(cfg); tc.code != 0 && string(got) != tc.config {
				t.Errorf("daemon.json changed to %s", got)
			}
		})
	}
}
