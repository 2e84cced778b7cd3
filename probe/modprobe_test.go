package probe_test

import (
	"context"
	"github.com/graphprobe/graphprobe/drivers"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/probe"
)

func TestParseModprobeOptions(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string
	}{
		{"none", "# nothing\nblacklist aufs\n", map[string]string{}},
		{"overlay", "options overlay redirect_dir=Y metacopy=on\n", map[string]string{"redirect_dir": "Y", "metacopy": "on"}},
		{"later wins", "options overlay metacopy=Y\noptions overlay metacopy=N\n", map[string]string{"metacopy": "N"}},
		{"other module", "options overlayfs metacopy=Y\noptions fuse max_user_bgreq=1\n", map[string]string{}},
		{"comment after", "options overlay index=Y # for nfs_export\n", map[string]string{"index": "Y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := probe.ParseModprobeOptions(strings.NewReader(tt.in), "overlay"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseCmdlineParams(t *testing.T) {
	got := probe.ParseCmdlineParams("BOOT_IMAGE=/vmlinuz root=/dev/sda1 overlay.redirect_dir=Y overlay.metacopy=Y fuse.x=1 quiet", "overlay")
	want := map[string]string{"redirect_dir": "Y", "metacopy": "Y"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestNativeDiffBeforeOverlayLoads: with overlay not loaded, native diff
// is inferred; overlay.redirect_dir=/overlay.metacopy= on the command line
// or in modprobe.d decide it over the kernel config default, as they do
// once the module loads (seen on Debian's 6.12 booted with both =Y).
func TestNativeDiffBeforeOverlayLoads(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"config defaults", nil, true},
		{"command line", map[string]string{"proc/cmdline": "root=/dev/vda overlay.redirect_dir=Y overlay.metacopy=Y\n"}, false},
		{"command line off", map[string]string{"proc/cmdline": "overlay.redirect_dir=N\n"}, true},
		{"etc modprobe.d", map[string]string{"etc/modprobe.d/overlay.conf": "options overlay metacopy=Y\n"}, false},
		{"lib modprobe.d", map[string]string{"lib/modprobe.d/overlay.conf": "options overlay redirect_dir=on\n"}, false},
		{"run modprobe.d", map[string]string{"run/modprobe.d/overlay.conf": "options overlay redirect_dir=Y\n"}, false},
		{"etc shadows lib", map[string]string{
			"lib/modprobe.d/overlay.conf": "options overlay redirect_dir=Y\n",
			"etc/modprobe.d/overlay.conf": "options overlay redirect_dir=N\n"}, true},
		{"command line over modprobe.d", map[string]string{
			"etc/modprobe.d/overlay.conf": "options overlay metacopy=Y\n",
			"proc/cmdline":                "overlay.metacopy=N\n"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{
				"proc/sys/kernel/osrelease":                    "6.12.117+deb13-amd64\n",
				"proc/filesystems":                             "nodev\ttmpfs\n\text4\n",
				"proc/modules":                                 "",
				"lib/modules/6.12.117+deb13-amd64/modules.dep": "kernel/fs/overlayfs/overlay.ko.xz:\n",
				"boot/config-6.12.117+deb13-amd64":             "CONFIG_OVERLAY_FS=m\n# CONFIG_OVERLAY_FS_REDIRECT_DIR is not set\n# CONFIG_OVERLAY_FS_METACOPY is not set\n",
			}
			for k, v := range tt.files {
				files[k] = v
			}
			for p, s := range files {
				full := filepath.Join(root, p)
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r, err := probe.Run(context.Background(), probe.Options{RootPrefix: root, PriorDirs: drivers.PriorDirs()})
			if err != nil {
				t.Fatal(err)
			}
			f := r.Fact(probe.FactNativeDiff)
			if f.Supported == nil || *f.Supported != tt.want {
				t.Errorf("native diff = %v (%s), want %v", f.Supported, f.Detail, tt.want)
			}
		})
	}
}
