package probe

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The fuzz targets check that no input crashes a parser or makes it hang,
// and that what a parser accepts is consistent.

func FuzzParseFilesystems(f *testing.F) {
	seed, _ := os.ReadFile("testdata/filesystems-debian-12")
	f.Add(seed)
	f.Add([]byte("nodev\toverlayfs\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := ParseFilesystems(bytes.NewReader(b))
		if err == nil {
			for name := range fs {
				if name == "" || strings.ContainsAny(name, " \t\n") {
					t.Fatalf("bad name %q", name)
				}
			}
		}
	})
}

func FuzzParseModules(f *testing.F) {
	seed, _ := os.ReadFile("testdata/modules.dep-6.1.0-56-cloud-amd64")
	f.Add(seed[:min(len(seed), 2000)])
	f.Add([]byte("kernel/fs/aufs/aufs.ko.xz:\n"))
	f.Add([]byte("overlay 151552 0 - Live 0xffffffffc0a6b000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ParseModulesDep(bytes.NewReader(b)); err == nil {
			for name := range m {
				if name == "" || strings.Contains(name, "-") {
					t.Fatalf("bad module name %q", name)
				}
			}
		}
		_, _ = ParseModulesBuiltin(bytes.NewReader(b))
		_, _ = ParseProcModules(bytes.NewReader(b))
	})
}

func FuzzParseKernelConfig(f *testing.F) {
	seed, _ := os.ReadFile("testdata/config-6.1.0-56-cloud-amd64.gz")
	f.Add(seed)
	f.Add([]byte("CONFIG_OVERLAY_FS=m\n# CONFIG_AUFS_FS is not set\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ParseKernelConfig(bytes.NewReader(b))
		if err == nil {
			for _, o := range kernelConfigOptions {
				switch cfg.Tristate(o) {
				case "y", "m", "n", "unknown":
				default:
					t.Fatalf("Tristate(%s) = %q", o, cfg.Tristate(o))
				}
			}
		}
	})
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n30 27 0:40 / /var/lib/docker rw - xfs /dev/sdb rw\n"))
	f.Add([]byte("1021 963 0:52 / / rw,relatime master:296 - overlay overlay rw,lowerdir=/a:/b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		mounts, err := ParseMountinfo(bytes.NewReader(b))
		if err == nil {
			_ = mountFor(mounts, "/var/lib/docker")
		}
	})
}

func FuzzParseOSRelease(f *testing.F) {
	seed, _ := os.ReadFile("testdata/os-release-debian-12")
	f.Add(seed)
	f.Add([]byte("ID='a\\'b'\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseOSRelease(bytes.NewReader(b))
	})
}
