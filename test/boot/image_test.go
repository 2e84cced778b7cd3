package boot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/debapt"
	"github.com/graphprobe/graphprobe/internal/testutil"
)

// CacheEnv names the directory that holds the built images, overriding the
// default under the user's cache directory.
const CacheEnv = "GRAPHPROBE_BOOT_CACHE"

// MirrorEnv overrides the Debian mirror the image is built from.
const MirrorEnv = "GRAPHPROBE_DEBIAN_MIRROR"

const (
	suite         = "bookworm"
	defaultMirror = debapt.Mirror
	// rootSizeMiB is the root image's size; the system needs about 700 MiB
	// and Docker's own state goes to the data-root disk.
	rootSizeMiB = 1536
	// imageFormat changes whenever the way the image is made changes
	// without the inputs below changing, so that old caches are not reused.
	imageFormat = "2"
)

// imagePackages go into the root filesystem, all from one suite so that
// docker.io, containerd and runc are the ones Debian ships together.
// minbase has no init: systemd and systemd-sysv make systemd PID 1, udev
// makes the disks' device units appear (fstab waits for them), kmod gives
// graphprobe and dockerd modprobe, initramfs-tools builds the initrd that
// loads virtio_blk and ext4 for the kernel.
var imagePackages = []string{
	"systemd", "systemd-sysv", "udev", "kmod", "e2fsprogs",
	"docker.io", "containerd", "runc",
	"linux-image-amd64", "initramfs-tools",
}

// image is a built root filesystem and the kernel and initrd to boot it.
type image struct {
	Root, Kernel, Initrd string
}

func mirror() string {
	if m := os.Getenv(MirrorEnv); m != "" {
		return m
	}
	return defaultMirror
}

func cacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "graphprobe", "boot")
	}
	return "/var/cache/graphprobe-test/boot"
}

// imageKey names an image by all of its inputs: the whole mmdebstrap
// command (suite, mirror, packages, hooks) and what is done after it.
func imageKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "format %s\nsize %d\n", imageFormat, rootSizeMiB)
	for _, a := range mmdebstrapArgs("ROOT") {
		fmt.Fprintf(h, "%q\n", a)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ensureImage returns the cached image, building it first when missing.
// Building needs mmdebstrap and Debian's archive (a few minutes); a second
// run only finds it.
func ensureImage(t *testing.T) image {
	t.Helper()
	dir := filepath.Join(cacheDir(), suite+"-"+imageKey())
	img := image{
		Root:   filepath.Join(dir, "root.img"),
		Kernel: filepath.Join(dir, "vmlinuz"),
		Initrd: filepath.Join(dir, "initrd.img"),
	}
	if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
		t.Logf("image: cached in %s", dir)
		return img
	}
	testutil.RequiresTool(t, "mmdebstrap", "mkfs.ext4")
	start := time.Now()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatalf("make image cache: %v", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		t.Fatalf("make image cache: %v", err)
	}
	defer os.RemoveAll(tmp)
	rootDir := filepath.Join(tmp, "root")
	run(t, 30*time.Minute, "mmdebstrap", mmdebstrapArgs(rootDir)...)
	kernels, _ := filepath.Glob(filepath.Join(rootDir, "boot", "vmlinuz-*"))
	initrds, _ := filepath.Glob(filepath.Join(rootDir, "boot", "initrd.img-*"))
	if len(kernels) != 1 || len(initrds) != 1 {
		t.Fatalf("image: want one kernel and one initrd in /boot, got %v and %v", kernels, initrds)
	}
	copyFile(t, kernels[0], filepath.Join(tmp, "vmlinuz"))
	copyFile(t, initrds[0], filepath.Join(tmp, "initrd.img"))
	run(t, 10*time.Minute, "mkfs.ext4", "-q", "-F", "-L", "root", "-d", rootDir,
		filepath.Join(tmp, "root.img"), fmt.Sprintf("%dM", rootSizeMiB))
	if err := os.RemoveAll(rootDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "ready"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another run finished first: use its image.
		if _, serr := os.Stat(filepath.Join(dir, "ready")); serr != nil {
			t.Fatalf("image: %v", err)
		}
	}
	t.Logf("image: built in %s into %s", time.Since(start).Round(time.Second), dir)
	return img
}

// mmdebstrapArgs is the command that makes the root filesystem in rootDir.
func mmdebstrapArgs(rootDir string) []string {
	// The sources are given on the command line: mmdebstrap uses its own
	// apt state in the new tree, never the host's.
	return []string{
		"--variant=minbase", "--mode=root", "--quiet",
		`--aptopt=APT::Install-Recommends "false"`,
		"--include=" + strings.Join(imagePackages, ","),
		// An initrd with only what finds the root disk (MODULES=most
		// takes minutes to build here and is not needed on one machine
		// type).
		"--essential-hook=mkdir -p \"$1/etc/initramfs-tools/conf.d\" \"$1/usr/share/initramfs-tools/modules.d\"",
		"--essential-hook=echo MODULES=list >\"$1/etc/initramfs-tools/conf.d/graphprobe-boot.conf\"",
		"--essential-hook=printf '%s\\n' virtio_pci virtio_blk ext4 >\"$1/usr/share/initramfs-tools/modules.d/graphprobe-boot\"",
		// Nobody reads documentation in the test machine.
		"--dpkgopt=path-exclude=/usr/share/man/*",
		"--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-exclude=/usr/share/locale/*",
		"--customize-hook=echo graphprobe-boot >\"$1/etc/hostname\"",
		// Timers (apt, e2scrub, fstrim) would only slow the test boots down.
		"--customize-hook=chroot \"$1\" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer 2>/dev/null || true",
		suite, rootDir, "deb " + mirror() + " " + suite + " main",
	}
}

// run runs a command, failing the test with its output on error.
func run(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out.String(), 6000))
		}
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s: still running after %s\n%s", name, timeout, tail(out.String(), 6000))
	}
	return out.String()
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	// cp keeps the copy sparse (and shares blocks where the filesystem can).
	run(t, 5*time.Minute, "cp", "--sparse=always", "--reflink=auto", from, to)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
