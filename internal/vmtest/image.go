package vmtest

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ImageRelease reads the release (uname -r) from an x86 bzImage: the boot
// header's kernel_version field points at "6.1.192-aufs (user@host) #1 ...".
func ImageRelease(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	hdr := make([]byte, 0x210)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return "", fmt.Errorf("read the boot header of %s: %w", path, err)
	}
	if string(hdr[0x202:0x206]) != "HdrS" {
		return "", fmt.Errorf("read the boot header of %s: not an x86 bzImage", path)
	}
	off := int64(binary.LittleEndian.Uint16(hdr[0x20E:])) + 0x200
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, off)
	s := string(buf[:n])
	if i := strings.IndexAny(s, " \x00"); i > 0 {
		return s[:i], nil
	}
	return "", fmt.Errorf("read the kernel version of %s: none in the boot header", path)
}

// ImageKernel describes a kernel with everything built in: its image and,
// optionally, its config (plain or .xz, unpacked into the cache).
func ImageKernel(name, image, config string) (Kernel, error) {
	rel, err := ImageRelease(image)
	if err != nil {
		return Kernel{}, err
	}
	k := Kernel{Name: name, Release: rel, Vmlinuz: image}
	if config == "" {
		return k, nil
	}
	if !strings.HasSuffix(config, ".xz") {
		k.Config = config
		return k, nil
	}
	cache, err := CacheDir()
	if err != nil {
		return k, err
	}
	out := filepath.Join(cache, "kernels", name, "config-"+rel)
	if _, err := os.Stat(out); err != nil {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return k, err
		}
		data, err := exec.Command("xz", "-dc", config).Output()
		if err != nil {
			return k, fmt.Errorf("unpack %s: %w (install xz-utils)", config, err)
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			return k, err
		}
	}
	k.Config = out
	return k, nil
}
