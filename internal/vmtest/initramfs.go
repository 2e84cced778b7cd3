package vmtest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// StorageModules are the modules a storage test needs: the filesystems of
// the disks, overlay and fuse, loop, virtio for the disks, and the
// checksum algorithms btrfs asks the crypto API for by name (modules.dep
// cannot see those).
var StorageModules = []string{
	"virtio_pci", "virtio_blk", "ext4", "xfs", "btrfs", "overlay", "fuse", "loop",
	"crc32c_generic", "crc32c_intel", "libcrc32c", "xxhash_generic", "sha256_generic", "blake2b_generic",
	"aufs",
}

// Busybox is the static busybox the initramfs runs (Debian's
// busybox-static installs it as /bin/busybox).
func Busybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("find busybox: not installed (apt-get install busybox-static)")
}

// moduleName is how modprobe names a module file.
func moduleName(path string) string {
	b := filepath.Base(path)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		b = strings.TrimSuffix(b, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(b, ".ko"), "-", "_")
}

// moduleClosure resolves names (and their dependencies) to module paths
// relative to the modules dir, reading its modules.dep. Names the kernel
// does not have as modules (built in, or absent) are left out.
func moduleClosure(modDir string, names []string) ([]string, error) {
	f, err := os.Open(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	defer f.Close()
	deps := map[string][]string{}
	path := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n := moduleName(mod)
		path[n] = mod
		deps[n] = strings.Fields(rest)
	}
	seen := map[string]bool{}
	var walk func(n string)
	walk = func(n string) {
		p, ok := path[n]
		if !ok || seen[p] {
			return
		}
		seen[p] = true
		for _, d := range deps[n] {
			walk(moduleName(d))
		}
	}
	for _, n := range names {
		walk(strings.ReplaceAll(n, "-", "_"))
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// copyModule writes a module uncompressed: busybox's insmod does not read
// every compression the kernel packages use.
func copyModule(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	var tool string
	switch filepath.Ext(src) {
	case ".xz":
		tool = "xz"
	case ".zst":
		tool = "zstd"
	case ".gz":
		tool = "gzip"
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	if tool == "" {
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(out, in)
		return err
	}
	var stderr strings.Builder
	cmd := exec.Command(tool, "-dc", src)
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("decompress %s: %w: %s", src, err, stderr.String())
	}
	return out.Close()
}

// cpioGz packs dir into a gzip'd newc cpio archive, owned by root.
func cpioGz(ctx context.Context, dir, out string) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", "find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -1 > "+shellQuote(out))
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pack %s with cpio: %w: %s (install cpio)", dir, err, msg)
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// BaseInitramfs is the cached part of a kernel's initramfs: busybox, the
// kernel's storage modules with a modules.dep made for them, and its config
// at /boot/config-<release> (where a Debian host has it). The program under
// test and /init go in a second archive (Initramfs), which the kernel
// unpacks over the first.
func BaseInitramfs(ctx context.Context, k Kernel) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	bb, err := Busybox()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintln(h, "v1", k.Release, k.Vmlinuz, k.Modules, k.Config, bb, strings.Join(StorageModules, ","))
	if st, err := os.Stat(bb); err == nil {
		fmt.Fprintln(h, st.Size(), st.ModTime().UnixNano())
	}
	out := filepath.Join(cache, "initramfs", k.Release+"-"+hex.EncodeToString(h.Sum(nil))[:12]+".cpio.gz")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp(filepath.Dir(out), "stage-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run", "mnt", "etc", "boot", "root", "var/lib"} {
		if err := os.MkdirAll(filepath.Join(stage, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := testutil.CopyFile(bb, filepath.Join(stage, "bin/busybox"), 0o755); err != nil {
		return "", err
	}
	if k.Config != "" {
		if err := testutil.CopyFile(k.Config, filepath.Join(stage, "boot", "config-"+k.Release), 0o644); err != nil {
			return "", err
		}
	}
	if k.Modules != "" {
		mods, err := moduleClosure(k.Modules, StorageModules)
		if err != nil {
			return "", err
		}
		dstDir := filepath.Join(stage, "lib/modules", k.Release)
		for _, m := range mods {
			dst := filepath.Join(dstDir, strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, ".xz"), ".zst"), ".gz"))
			if err := copyModule(filepath.Join(k.Modules, m), dst); err != nil {
				return "", err
			}
		}
		for _, f := range []string{"modules.builtin", "modules.builtin.modinfo", "modules.order"} {
			if _, err := os.Stat(filepath.Join(k.Modules, f)); err == nil {
				if err := testutil.CopyFile(filepath.Join(k.Modules, f), filepath.Join(dstDir, f), 0o644); err != nil {
					return "", err
				}
			}
		}
		if msg, err := exec.CommandContext(ctx, "depmod", "-b", stage, k.Release).CombinedOutput(); err != nil {
			return "", fmt.Errorf("depmod the initramfs of %s: %w: %s (install kmod)", k.Release, err, msg)
		}
	}
	tmp := out + ".tmp"
	if err := cpioGz(ctx, stage, tmp); err != nil {
		return "", err
	}
	return out, os.Rename(tmp, out)
}

// Initramfs writes to out the base archive followed by one holding files
// (destination in the VM → source on the host, made executable) and /init.
func Initramfs(ctx context.Context, base, out, init string, files map[string]string) error {
	stage, err := os.MkdirTemp(filepath.Dir(out), "stage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := os.WriteFile(filepath.Join(stage, "init"), []byte(init), 0o755); err != nil {
		return err
	}
	for dst, src := range files {
		if err := os.MkdirAll(filepath.Join(stage, filepath.Dir(dst)), 0o755); err != nil {
			return err
		}
		if err := testutil.CopyFile(src, filepath.Join(stage, dst), 0o755); err != nil {
			return err
		}
	}
	extra := out + ".extra"
	if err := cpioGz(ctx, stage, extra); err != nil {
		return err
	}
	defer os.Remove(extra)
	// The kernel unpacks concatenated archives one after the other.
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	defer w.Close()
	for _, p := range []string{base, extra} {
		if base == "" && p == base {
			continue
		}
		r, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, r)
		r.Close()
		if err != nil {
			return err
		}
	}
	return w.Close()
}
