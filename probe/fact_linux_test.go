package probe

import (
	"errors"
	"testing"

	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/internal/testutil"
	"github.com/graphprobe/graphprobe/version"
)

// TestFactRowsLive walks the fact table on this machine's kernel: each live
// test runs where its row says, on a real ext4 data-root or a private
// tmpfs, and checkLiveTest judges it.
func TestFactRowsLive(t *testing.T) {
	testutil.RequiresRoot(t)
	release, err := unameRelease()
	if err != nil {
		t.Fatal(err)
	}
	kv, err := version.ParseKernel(release)
	if err != nil {
		t.Fatal(err)
	}
	p := &prober{h: LiveHost(), r: &Report{}, rows: factRows}
	p.readOverlayParams()
	if len(p.params) == 0 {
		// The probe never loads a module either; a skip here is no
		// broken probe (TestLoadModules covers loading).
		t.Skip("overlay is not loaded")
	}
	env := p.liveEnv()
	disk := testutil.NewFS(t, testutil.Ext4, 0)
	ns, err := hostsys.NewMountNS()
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	for _, row := range liveOrder(p.rows) {
		t.Run(row.name, func(t *testing.T) {
			var result error
			err := ns.Do(func() error {
				dir := disk.Dir
				if row.on == onTmpfs {
					var err error
					if dir, err = privateTmpfs(disk.Dir); err != nil {
						return err
					}
				}
				result = row.runLive(dir, env)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			checkLiveTest(t, row, kv, result)
		})
	}
}

// checkLiveTest is the one judge of a live test's result on a real kernel,
// as root (cilium/ebpf's testutils.CheckFeatureTest): it must be
// conclusive, and a kernel at or past the row's minimum must not lack the
// feature. A "no" caused by the host's settings (metacopy on by default)
// is only logged: no kernel upgrade changes it.
func checkLiveTest(t *testing.T, row *factRow, kv version.Kernel, err error) {
	t.Helper()
	var ue *UnsupportedError
	switch {
	case err == nil:
	case errors.As(err, &ue) && ue.hostSetting:
		t.Logf("%s: %v (this host's settings)", row.name, err)
	case errors.As(err, &ue):
		if ue.Feature != row.name || ue.MinKernel != row.minKernel.Threshold() {
			t.Errorf("%s: the no names %q, minimum %q: want the row's", row.name, ue.Feature, ue.MinKernel)
		}
		if kv.AtLeast(row.minKernel) {
			t.Errorf("%s: kernel %s is at least %s, yet the test says %v", row.name, kv, row.minKernel.Threshold(), err)
		}
	default:
		t.Errorf("%s: inconclusive as root: %v", row.name, err)
	}
}
