package reliability

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// openUp makes the directories above dir (up to TMPDIR) searchable by
// everyone, so that an unprivileged uid can reach dir.
func openUp(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, st.Mode().Perm()|0o055); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNotRoot runs graphprobe as uid 65534. probe works with what it can
// read (exit 0, marked unprivileged), also when the data-root itself is not
// readable; select and bench explain that they need root, exit 1 and
// change nothing: no daemon.json, lock file or scratch dir is touched.
func TestNotRoot(t *testing.T) {
	h := newHost(t, testutil.Ext4, 64)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	mkdir(t, h.dataRoot, 0o755)
	closed := filepath.Join(h.fs.Dir, "closed")
	mkdir(t, closed, 0o700)
	h.lock = filepath.Join(h.fs.Dir, "locks", "graphprobe.lock")
	mkdir(t, filepath.Dir(h.lock), 0o777)
	openUp(t, h.dataRoot)
	openUp(t, h.tmp)
	nobody := runOpts{env: []string{"TMPDIR=" + h.tmp}, cred: &syscall.Credential{Uid: 65534, Gid: 65534}, dir: "/"}
	before := snapshot(t, h.fs.Dir)

	for _, dataRoot := range []string{h.dataRoot, closed} {
		r := runGP(t, nobody, "probe", "--data-root", dataRoot, "--config", h.config, "--format", "json")
		if r.code != 0 {
			t.Errorf("probe of %s as uid 65534: %s", dataRoot, r)
			continue
		}
		var doc struct {
			Privileged bool `json:"privileged"`
			DataRoot   struct {
				Filesystem string `json:"filesystem"`
			} `json:"dataRoot"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("probe output is not JSON: %v", err)
		}
		t.Logf("probe of %s as uid 65534: exit 0, privileged=%v, filesystem %s", filepath.Base(dataRoot), doc.Privileged, doc.DataRoot.Filesystem)
		if doc.Privileged || doc.DataRoot.Filesystem != "extfs" {
			t.Errorf("probe as uid 65534: privileged=%v filesystem=%q, want false and extfs", doc.Privileged, doc.DataRoot.Filesystem)
		}
	}
	for _, cmd := range [][]string{
		h.selectArgs("--driver", "overlay2", "--bench", "off"),
		h.selectArgs(),
		{"bench", "vfs", "--data-root", h.dataRoot, "--docker-version", dockerVersion},
	} {
		r := runGP(t, nobody, cmd...)
		t.Logf("%s as uid 65534: exit %d: %s", cmd[0], r.code, firstLine(r.stderr))
		if r.code != 1 || !strings.Contains(r.stderr, "needs root") {
			t.Errorf("%s as uid 65534: want exit 1 saying it needs root; got %s", strings.Join(cmd, " "), r)
		}
	}
	requireUnchanged(t, "the test filesystem (daemon.json, lock dir, data-root)", before, snapshot(t, h.fs.Dir))
	if left := scratchIn(h.scratchDirs()...); len(left) > 0 {
		t.Errorf("scratch dirs left: %q", left)
	}
}
