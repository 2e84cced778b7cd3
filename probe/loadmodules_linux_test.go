package probe

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestLoadModulesRereadsOverlayParams: when --load-modules loads overlay,
// its parameters appear only then. The report must carry them, and the
// test mounts must pass index=off where the index parameter exists, as
// Docker and containerd do (a kernel booted with overlay.index=Y otherwise
// falls back to index=off during the run).
func TestLoadModulesRereadsOverlayParams(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/sys/kernel/osrelease", "6.1.0-50-amd64\n")
	write("proc/filesystems", "nodev\ttmpfs\n\text4\n")
	write("proc/modules", "")
	write("lib/modules/6.1.0-50-amd64/modules.dep", "kernel/fs/overlayfs/overlay.ko:\n")
	write("boot/config-6.1.0-50-amd64", "CONFIG_OVERLAY_FS=m\n# CONFIG_OVERLAY_FS_INDEX is not set\n")
	h, err := FixtureHost(root)
	if err != nil {
		t.Fatal(err)
	}
	var ran []string
	p := &prober{ctx: context.Background(), h: h, r: &Report{Facts: map[string]Fact{}, KernelConfig: map[string]string{}}}
	p.opts.Exec = func(_ context.Context, name string, args ...string) ([]byte, error) {
		ran = append(ran, name+" "+args[0])
		if name == "modprobe" && args[0] == "overlay" {
			// What the kernel does on load, booted with overlay.index=Y.
			write("proc/filesystems", "nodev\ttmpfs\n\text4\nnodev\toverlay\n")
			write("proc/modules", "overlay 155648 0 - Live 0x0000000000000000\n")
			write("sys/module/overlay/parameters/index", "Y\n")
			write("sys/module/overlay/parameters/metacopy", "N\n")
			write("sys/module/overlay/parameters/redirect_dir", "N\n")
		}
		return nil, nil
	}
	p.readKernel()
	p.readModules()
	p.readKernelConfig()
	p.readOverlayParams()
	if p.r.OverlayParameters != nil {
		t.Fatalf("parameters before the module is loaded: %v", p.r.OverlayParameters)
	}
	p.loadModules()
	if !reflect.DeepEqual(ran, []string{"modprobe overlay"}) {
		t.Fatalf("ran %q, want modprobe overlay", ran)
	}
	want := map[string]string{"index": "Y", "metacopy": "N", "redirect_dir": "N"}
	if !reflect.DeepEqual(p.r.OverlayParameters, want) {
		t.Errorf("overlayParameters after --load-modules = %v, want %v", p.r.OverlayParameters, want)
	}
	if got := p.liveEnv().indexOff(); !reflect.DeepEqual(got, []string{"index=off"}) {
		t.Errorf("test mount options after --load-modules = %q, want [index=off]", got)
	}
}
