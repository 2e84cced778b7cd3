package vmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// dockerVersions are the engines select decides for inside each VM.
var dockerVersions = []string{"20.10.24", "24.0.7", "28.5.2", "29.0.0"}

// benchFS are the filesystems select runs its default benchmark on.
var benchFS = []string{"tmpfs", "ext4", "btrfs"}

// matrixBoot is one VM of the matrix: a kernel and extra command line.
type matrixBoot struct {
	suite   string
	cmdline string
	// aufs boots the aufs kernel of ../shared/kernels and runs the aufs
	// driver's real-kernel tests in it too.
	aufs bool
}

// matrixBoots are the four Debian kernels, and two command lines that
// change overlay's module defaults (the ones graphprobe's own hints tell
// users to set).
var matrixBoots = []matrixBoot{
	{suite: "bullseye"},
	{suite: "bookworm"},
	{suite: "trixie"},
	{suite: "sid"},
	{suite: "trixie", cmdline: "overlay.redirect_dir=Y overlay.metacopy=Y"},
	{suite: "bookworm", cmdline: "overlay.index=Y"},
	{suite: "aufs", aufs: true},
}

// repoRoot is the module's root, from this test's directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// buildStatic builds a static binary of a package of this module.
func buildStatic(t testing.TB, pkg, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
}

// buildTest builds a static test binary of a package of this module.
func buildTest(t testing.TB, pkg, out string) {
	t.Helper()
	cmd := exec.Command("go", "test", "-c", "-trimpath", "-o", out, pkg)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -c %s: %v\n%s", pkg, err, msg)
	}
}

// matrixInit is the /init of a matrix VM: mount the disks, then probe and
// select on each filesystem.
func matrixInit(extra string) string {
	var b strings.Builder
	b.WriteString(InitPrelude)
	b.WriteString(`for m in ext4 xfs btrfs loop fuse; do modprobe -q $m; done
mkdir -p /mnt/tmpfs && mount -t tmpfs tmpfs /mnt/tmpfs && mkdir /mnt/tmpfs/docker && echo tmpfs >/tmp/fslist
mnt() {
	mkdir -p /mnt/$1
	if run mount-$1 mount -t $2 /dev/$3 /mnt/$1; then mkdir -p /mnt/$1/docker; echo $1 >>/tmp/fslist; fi
}
`)
	for i, d := range StorageDisks {
		fmt.Fprintf(&b, "mnt %s %s vd%c\n", d.Name, d.FS, 'a'+i)
	}
	fmt.Fprintf(&b, `run cmdline cat /proc/cmdline
FS=$(cat /tmp/fslist)
# Without --load-modules first: nothing has loaded overlay yet.
for fs in $FS; do run probe-$fs graphprobe probe --format json --data-root /mnt/$fs/docker; done
for fs in $FS; do run probe-load-$fs graphprobe probe --load-modules --format json --data-root /mnt/$fs/docker; done
# A fixture host of this kernel, as a user would capture it.
run capture sh -c 'graphprobe capture --data-root /mnt/ext4/docker /tmp/capture.tar.gz >/dev/null && base64 /tmp/capture.tar.gz'
for fs in $FS; do
	for v in %s; do
		mkdir -p /tmp/cfg-$fs-$v
		run select-$fs-$v graphprobe select --dry-run --bench off --format json --docker-version $v \
			--data-root /mnt/$fs/docker --config /tmp/cfg-$fs-$v/daemon.json \
			--lock-file /tmp/cfg-$fs-$v/lock
	done
done
for fs in %s; do
	grep -qx $fs /tmp/fslist || continue
	mkdir -p /tmp/bench-$fs
	run bench-$fs graphprobe select --dry-run --format json --data-root /mnt/$fs/docker \
		--config /tmp/bench-$fs/daemon.json --lock-file /tmp/bench-$fs/lock
done
%s
# overlay2.size: xfs mounted afresh with project quotas, where the kernel
# has them, takes a per-container size limit (see checkSizeOption).
if grep -qx xfs /tmp/fslist && umount /mnt/xfs; then
	if run mount-xfs-pquota mount -t xfs -o pquota /dev/%s /mnt/xfs; then
		mkdir -p /tmp/size
		echo '{"storage-driver": "overlay2", "storage-opts": ["overlay2.size=10G"]}' >/tmp/size/daemon.json
		run size-xfs graphprobe select --dry-run --bench off --format json --docker-version 24.0.7 \
			--data-root /mnt/xfs/docker --config /tmp/size/daemon.json --lock-file /tmp/size/lock
	fi
fi
run dmesg dmesg
`, strings.Join(dockerVersions, " "), strings.Join(benchFS, " "), extra, xfsDevice())
	b.WriteString(InitEnd)
	return b.String()
}

// xfsDevice is the virtio name of the xfs disk (with d_type).
func xfsDevice() string {
	for i, d := range StorageDisks {
		if d.Name == "xfs" {
			return fmt.Sprintf("vd%c", 'a'+i)
		}
	}
	panic("no xfs disk")
}

// checkSizeOption: a kernel with XFS_QUOTA mounts xfs with pquota, and
// select then accepts overlay2.size there (dockerd's rule: project quotas
// on xfs); a kernel without it refuses the mount.
func checkSizeOption(k Kernel, cmdline string, secs map[string]Section) []error {
	truth, err := newKernelTruth(k, cmdline)
	if err != nil {
		return []error{err}
	}
	m, ran := secs["mount-xfs-pquota"]
	if !ran {
		return []error{fmt.Errorf("%s: the xfs disk was not remounted with pquota", k.Release)}
	}
	if truth.config["CONFIG_XFS_QUOTA"] != "y" {
		if m.RC == 0 {
			return []error{fmt.Errorf("%s: xfs mounted with pquota on a kernel without CONFIG_XFS_QUOTA", k.Release)}
		}
		return nil
	}
	if m.RC != 0 {
		return []error{fmt.Errorf("%s: mount -o pquota failed with CONFIG_XFS_QUOTA=y: %s", k.Release, m.Stderr)}
	}
	s := secs["size-xfs"]
	var doc struct{ Driver string }
	if s.RC != 0 || json.Unmarshal([]byte(s.Stdout), &doc) != nil || doc.Driver != "overlay2" {
		return []error{fmt.Errorf("%s: select with overlay2.size=10G on xfs with pquota: exit %d, driver %q, want exit 0 and overlay2:\n%s", k.Release, s.RC, doc.Driver, tail(s.Stderr, 1500))}
	}
	return nil
}

// TestKernelMatrix boots Debian's kernels and checks every fact the probe
// reports inside them against the truth table of kernelTruth.
func TestKernelMatrix(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresTool(t, "qemu-system-x86_64", "cpio", "depmod", "dpkg", "apt-get", "mkfs.xfs", "mkfs.btrfs", "mkfs.ext4")
	if runtime.GOARCH != "amd64" {
		t.Skip("the kernel matrix boots amd64 kernels")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	suites := []string{"bullseye", "bookworm", "trixie", "sid"}
	kernels, err := DebianKernels(ctx, suites...)
	if err != nil {
		t.Fatal(err)
	}
	bySuite := map[string]Kernel{}
	for _, k := range kernels {
		bySuite[k.Name] = k
	}
	aufsKernel, err := AufsKernel(repoRoot(t))
	if err != nil {
		// The aufs tests must not vanish quietly in CI.
		if os.Getenv(testutil.RequireRootEnv) == "1" {
			t.Fatal(err)
		}
		t.Logf("no aufs kernel, skipping its boot: %v", err)
	} else {
		bySuite["aufs"] = aufsKernel
	}
	var disks []string
	for _, d := range StorageDisks {
		img, err := d.Image(ctx)
		if err != nil {
			t.Fatal(err)
		}
		disks = append(disks, img)
	}
	tmp := t.TempDir()
	gp := filepath.Join(tmp, "graphprobe")
	buildStatic(t, "./cmd/graphprobe", gp)
	aufsTest, ovl2Test := filepath.Join(tmp, "aufs.test"), filepath.Join(tmp, "overlay2.test")
	buildTest(t, "./drivers/aufs", aufsTest)
	buildTest(t, "./drivers/overlay2", ovl2Test)
	t.Logf("kernels, disks and graphprobe ready in %s", time.Since(start).Round(time.Millisecond))

	type outcome struct {
		boot matrixBoot
		k    Kernel
		res  *Result
		err  error
	}
	outcomes := make([]outcome, len(matrixBoots))
	var wg sync.WaitGroup
	for i, mb := range matrixBoots {
		k, ok := bySuite[mb.suite]
		if only := os.Getenv("GRAPHPROBE_KERNEL_MATRIX_ONLY"); !ok || (only != "" && only != mb.suite) {
			continue
		}
		extra, files := "", map[string]string{"bin/graphprobe": gp}
		if mb.aufs {
			extra, files["bin/aufs.test"], files["bin/overlay2.test"] = aufsInit, aufsTest, ovl2Test
		}
		base, err := BaseInitramfs(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		initrd := filepath.Join(tmp, fmt.Sprintf("initrd-%d", i))
		if err := Initramfs(ctx, base, initrd, matrixInit(extra), files); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := VM{Kernel: k, Initrd: initrd, Append: mb.cmdline, Disks: disks, Memory: 1536, Timeout: 6 * time.Minute}.Run(ctx)
			outcomes[i] = outcome{boot: mb, k: k, res: r, err: err}
		}()
	}
	wg.Wait()
	var table []string
	checked, wrong := 0, 0
	for _, o := range outcomes {
		if o.k.Release == "" {
			continue
		}
		name := o.k.Release
		if o.boot.cmdline != "" {
			name += " " + o.boot.cmdline
		}
		if o.err != nil {
			t.Errorf("%s: %v", name, o.err)
			continue
		}
		t.Logf("%s: booted and ran in %s (%s)", name, o.res.Elapsed.Round(100*time.Millisecond), o.res.Accel)
		if !strings.Contains(o.res.Data, "@@@DONE") {
			t.Errorf("%s: the VM stopped before its checks ended; console:\n%s", name, tail(o.res.Console, 3000))
			continue
		}
		secs := o.res.Sections()
		if dir := os.Getenv("GRAPHPROBE_VM_DUMP"); dir != "" {
			d := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			os.MkdirAll(d, 0o755)
			for n, s := range secs {
				os.WriteFile(filepath.Join(d, n+".json"), []byte(s.Stdout), 0o644)
				os.WriteFile(filepath.Join(d, n+".err"), []byte(fmt.Sprintf("rc=%d\n%s", s.RC, s.Stderr)), 0o644)
			}
		}
		if o.boot.cmdline == "" {
			checkCapture(t, o.k, secs)
		}
		rows, n, errs := checkVM(o.k, o.boot.cmdline, secs)
		checked += n
		wrong += len(errs)
		for _, e := range errs {
			t.Error(e)
		}
		table = append(table, rows...)
		for _, e := range checkSizeOption(o.k, o.boot.cmdline, secs) {
			t.Error(e)
		}
		if o.boot.aufs {
			for _, e := range checkAufs(t, secs) {
				t.Error(e)
			}
		}
	}
	sort.Strings(table)
	head := "| kernel | command line | data-root | userxattr | native diff | lowerdir+ | select " + strings.Join(dockerVersions, " | select ") + " | select (benchmark) |\n|" + strings.Repeat("---|", 7+len(dockerVersions))
	t.Logf("kernel matrix: %d facts checked, %d wrong, %s in all (facts from probe --load-modules):\n%s\n%s",
		checked, wrong, time.Since(start).Round(time.Second), head, strings.Join(table, "\n"))
}
