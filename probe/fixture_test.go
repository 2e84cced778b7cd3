package probe

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree makes a fixture host from path -> content.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, "/") {
			os.MkdirAll(full, 0o755)
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testPriorDirs are the drivers' prior-state dirs, as drivers.PriorDirs
// gives them (probe's own tests cannot import drivers, which imports
// probe; cmd's tests hold the callers to drivers.PriorDirs).
var testPriorDirs = []string{"aufs", "btrfs", "devicemapper", "fuse-overlayfs", "overlay", "overlay2", "vfs/dir", "zfs"}

func runFixture(t *testing.T, dir string) *Report {
	t.Helper()
	r, err := Run(context.Background(), Options{RootPrefix: dir, PriorDirs: testPriorDirs})
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != "fixture" {
		t.Fatalf("mode = %s", r.Mode)
	}
	return r
}

const xenialFS = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\n\text4\nnodev\toverlay\n"

func xenialTree() map[string]string {
	return map[string]string{
		"proc/sys/kernel/osrelease":                     "4.4.0-210-generic\n",
		"proc/filesystems":                              xenialFS,
		"proc/modules":                                  "overlay 49152 0 - Live 0x0000000000000000\n",
		"proc/self/mountinfo":                           "20 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw,errors=remount-ro,data=ordered\n",
		"lib/modules/4.4.0-210-generic/modules.dep":     "kernel/fs/overlayfs/overlay.ko:\nkernel/ubuntu/aufs/aufs.ko:\nkernel/fs/btrfs/btrfs.ko: kernel/lib/raid6/raid6_pq.ko\n",
		"lib/modules/4.4.0-210-generic/modules.builtin": "kernel/fs/ext4/ext4.ko\n",
		"etc/os-release":                                "ID=ubuntu\nVERSION_ID=\"16.04\"\n",
		"var/lib/docker/aufs/layers/abc":                "",
		"boot/config-4.4.0-210-generic":                 "CONFIG_OVERLAY_FS=m\nCONFIG_AUFS_FS=m\n",
	}
}

func TestFixtureXenial(t *testing.T) {
	r := runFixture(t, writeTree(t, xenialTree()))
	if r.Kernel.Version != "4.4.0" || r.OS.VersionID != "16.04" {
		t.Errorf("kernel %+v os %+v", r.Kernel, r.OS)
	}
	for name, want := range map[string]bool{FactOverlay: true, FactMultiLowerdir: true, FactAufs: true, FactBtrfs: false, FactDType: true} {
		if f := r.Facts[name]; f.Supported == nil || *f.Supported != want {
			t.Errorf("%s = %+v, want %v", name, f, want)
		}
	}
	if m := r.Facts[FactAufs].Module; m != ModuleLoadable {
		t.Errorf("aufs module = %s, want loadable", m)
	}
	if m := r.Facts[FactOverlay].Module; m != ModuleLoaded {
		t.Errorf("overlay module = %s, want loaded", m)
	}
	// 4.4 predates index (4.13): the version says no, and nothing else can.
	if f := r.Facts[FactIndex]; !f.No() || f.Method != MethodVersion {
		t.Errorf("index = %+v", f)
	}
	if len(r.PriorDrivers) != 1 || r.PriorDrivers[0] != "aufs" {
		t.Errorf("prior = %v", r.PriorDrivers)
	}
	if r.KernelConfig["CONFIG_AUFS_FS"] != "m" || r.KernelConfigSource != "/boot/config-4.4.0-210-generic" {
		t.Errorf("config %v from %s", r.KernelConfig, r.KernelConfigSource)
	}
}

func TestFixtureBackportsAndWSL(t *testing.T) {
	tree := xenialTree()
	delete(tree, "lib/modules/4.4.0-210-generic/modules.dep")
	tree["proc/sys/kernel/osrelease"] = "3.10.0-1160.el7.x86_64\n"
	tree["lib/modules/3.10.0-1160.el7.x86_64/modules.dep"] = "kernel/fs/overlayfs/overlay.ko.xz:\n"
	r := runFixture(t, writeTree(t, tree))
	f := r.Facts[FactMultiLowerdir]
	if !f.Yes() || f.Method != MethodInferred || *f.Version {
		t.Errorf("el7 multi-lowerdir = %+v, want an inferred yes against the version", f)
	}
	if !strings.Contains(f.Detail, "3.10.0-514") || !strings.Contains(f.Detail, "alone says no") {
		t.Errorf("detail %q should name the backport and the disagreement", f.Detail)
	}

	wsl := map[string]string{
		"proc/sys/kernel/osrelease": "4.4.0-19041-Microsoft\n",
		"proc/filesystems":          "nodev\tsysfs\nnodev\tproc\nnodev\ttmpfs\nnodev\tlxfs\nnodev\tdrvfs\n",
	}
	r = runFixture(t, writeTree(t, wsl))
	f = r.Facts[FactOverlay]
	if !f.No() || !*f.Version || !strings.Contains(f.Detail, "WSL1") || !strings.Contains(f.Hint, "WSL2") {
		t.Errorf("WSL1 overlay = %+v", f)
	}
	if !r.Facts[FactMultiLowerdir].No() {
		t.Errorf("WSL1 multi-lowerdir = %+v", r.Facts[FactMultiLowerdir])
	}
}

func TestFixtureGarbage(t *testing.T) {
	junk := string([]byte{0x7f, 'E', 'L', 'F', 0, 1, 2, 0xff, '\n'})
	tests := []struct {
		name  string
		edit  func(map[string]string)
		check func(t *testing.T, r *Report)
	}{
		{"binary release", func(m map[string]string) { m["proc/sys/kernel/osrelease"] = junk }, func(t *testing.T, r *Report) {
			if r.Kernel.Error == "" || r.Kernel.Version != "" {
				t.Errorf("kernel = %+v", r.Kernel)
			}
			if f := r.Facts[FactIndex]; f.Supported != nil || f.Version != nil || !strings.Contains(f.Detail, "kernel release unknown") {
				t.Errorf("index = %+v", f)
			}
		}},
		{"empty release", func(m map[string]string) { m["proc/sys/kernel/osrelease"] = "" }, func(t *testing.T, r *Report) {
			if r.Kernel.Error != "parse kernel release: empty string" {
				t.Errorf("kernel error = %q", r.Kernel.Error)
			}
		}},
		{"no release", func(m map[string]string) { delete(m, "proc/sys/kernel/osrelease") }, func(t *testing.T, r *Report) {
			if !strings.Contains(r.Kernel.Error, "no such file") {
				t.Errorf("kernel error = %q", r.Kernel.Error)
			}
		}},
		{"binary filesystems", func(m map[string]string) { m["proc/filesystems"] = junk }, func(t *testing.T, r *Report) {
			if !hasWarning(r, "parse filesystems") {
				t.Errorf("warnings %v", r.Warnings)
			}
		}},
		{"truncated config.gz", func(m map[string]string) { m["proc/config.gz"] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x73\x74" }, func(t *testing.T, r *Report) {
			if !hasWarning(r, "/proc/config.gz: parse kernel config") || r.KernelConfigSource != "/boot/config-4.4.0-210-generic" {
				t.Errorf("config source %q, warnings %v", r.KernelConfigSource, r.Warnings)
			}
		}},
		{"garbage modules.dep", func(m map[string]string) { m["lib/modules/4.4.0-210-generic/modules.dep"] = junk }, func(t *testing.T, r *Report) {
			if f := r.Facts[FactAufs]; f.Supported != nil || f.Module != ModuleUnknown {
				t.Errorf("aufs = %+v, want unknown", f)
			}
		}},
		{"garbage mountinfo", func(m map[string]string) { m["proc/self/mountinfo"] = "not a mountinfo line\n" }, func(t *testing.T, r *Report) {
			if r.DataRoot.Filesystem != "unknown" || r.Facts[FactDType].Supported != nil {
				t.Errorf("filesystem %q d_type %+v", r.DataRoot.Filesystem, r.Facts[FactDType])
			}
		}},
		{"garbage capture", func(m map[string]string) { m[CaptureFile] = "{" }, func(t *testing.T, r *Report) {
			if !hasWarning(r, "parse "+CaptureFile) {
				t.Errorf("warnings %v", r.Warnings)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := xenialTree()
			tt.edit(tree)
			r := runFixture(t, writeTree(t, tree))
			tt.check(t, r)
			// The document still encodes.
			if _, err := json.Marshal(r); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFixtureSymlinkEscape(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "filesystems"), []byte("nodev\taufs\n"), 0o644)
	tree := xenialTree()
	delete(tree, "proc/filesystems")
	dir := writeTree(t, tree)
	// An absolute symlink: resolved inside the tree, so it points at
	// nothing; a relative one climbing out stays inside the root too.
	os.Symlink(filepath.Join(outside, "filesystems"), filepath.Join(dir, "proc/filesystems"))
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.Remove(filepath.Join(dir, "etc/os-release"))
	os.Symlink("../../../../../../../../../"+filepath.Join(outside, "filesystems"), filepath.Join(dir, "etc/os-release"))
	r := runFixture(t, dir)
	if r.Facts[FactAufs].Module == ModuleBuiltin {
		t.Error("the probe read a file outside the fixture host")
	}
	if r.OS.ID != "" {
		t.Errorf("os-release read through an escaping symlink: %+v", r.OS)
	}
}

func TestFixtureCaptured(t *testing.T) {
	tree := xenialTree()
	capture := Capture{
		SchemaVersion: SchemaVersion,
		DataRoot:      DataRoot{Filesystem: "xfs", DType: Bool(false), Magic: "0x58465342", InodesTotal: 100, InodesFree: 50},
		Facts: map[string]Fact{
			FactMultiLowerdir: {Supported: Bool(true), Method: MethodMountTest, Detail: "a test mount succeeded"},
			FactNativeDiff:    {Supported: Bool(false), Method: MethodMountTest, Detail: "redirect_dir is enabled"},
		},
	}
	b, _ := json.Marshal(capture)
	tree[CaptureFile] = string(b)
	r := runFixture(t, writeTree(t, tree))
	if f := r.Facts[FactMultiLowerdir]; f.Method != MethodCaptured || !f.Yes() {
		t.Errorf("multi-lowerdir = %+v", f)
	}
	if f := r.Facts[FactNativeDiff]; f.Method != MethodCaptured || !f.No() {
		t.Errorf("native diff = %+v", f)
	}
	if f := r.Facts[FactDType]; f.Method != MethodCaptured || !f.No() || !strings.Contains(f.Hint, "ftype=1") {
		t.Errorf("d_type = %+v", f)
	}
	if r.DataRoot.Filesystem != "xfs" || r.DataRoot.InodesFree != 50 {
		t.Errorf("data root %+v", r.DataRoot)
	}
}

func TestNotRoot(t *testing.T) {
	uid := 1000
	r, err := Run(context.Background(), Options{DataRoot: t.TempDir(), Euid: &uid, PriorDirs: testPriorDirs})
	if err != nil {
		t.Fatal(err)
	}
	if r.Privileged {
		t.Fatal("privileged without root")
	}
	for _, name := range []string{FactOverlay, FactMultiLowerdir, FactNativeDiff, FactMetacopy} {
		f := r.Facts[name]
		if f.Supported != nil && f.Method == MethodMountTest {
			t.Errorf("%s = %+v: a mount test cannot decide without root", name, f)
		}
		if name != FactOverlay && !strings.Contains(f.Detail, "needs root") {
			t.Errorf("%s detail %q should say the test needs root", name, f.Detail)
		}
		// Left unknown for want of root, the remedy is root, not a kernel
		// (unless the kernel version says no as well).
		if f.Supported == nil && strings.Contains(f.Detail, "needs root") {
			want := "rerun as root to run the mount test (sudo graphprobe probe)"
			if f.Version != nil && !*f.Version {
				want += "; the kernel version says no: "
			}
			if !strings.HasPrefix(f.Hint, want) {
				t.Errorf("%s hint %q, want %q", name, f.Hint, want)
			}
		}
	}
}

func hasWarning(r *Report, sub string) bool {
	for _, w := range r.Warnings {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

// A probe asked for no prior-state dirs at all is a caller's mistake that
// would let a decision hide a host's images: it is an error, while an
// empty list skips the check on purpose.
func TestPriorDirsRequired(t *testing.T) {
	dir := t.TempDir()
	if _, err := Run(context.Background(), Options{DataRoot: dir}); !errors.Is(err, ErrNoPriorDirs) {
		t.Fatalf("Run without PriorDirs: err %v, want ErrNoPriorDirs", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "overlay2", "l"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), Options{DataRoot: dir, PriorDirs: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.PriorDrivers) != 0 {
		t.Errorf("an empty PriorDirs looked for prior state anyway: %v", r.PriorDrivers)
	}
	if r, err = Run(context.Background(), Options{DataRoot: dir, PriorDirs: testPriorDirs}); err != nil || len(r.PriorDrivers) != 1 {
		t.Errorf("prior drivers %v (err %v), want [overlay2]", r.PriorDrivers, err)
	}
}
