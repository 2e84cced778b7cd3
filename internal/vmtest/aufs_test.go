package vmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// AufsKernelEnv names a directory holding the aufs kernel (bzImage-*-aufs
// and its config-*.xz); by default ../shared/kernels beside the checkout.
const AufsKernelEnv = "GRAPHPROBE_AUFS_KERNELS"

// AufsKernel finds the kernel with aufs built in.
func AufsKernel(repo string) (Kernel, error) {
	dir := os.Getenv(AufsKernelEnv)
	if dir == "" {
		dir = filepath.Join(repo, "..", "shared", "kernels")
	}
	images, _ := filepath.Glob(filepath.Join(dir, "bzImage-*-aufs"))
	if len(images) == 0 {
		return Kernel{}, fmt.Errorf("find the aufs kernel: no bzImage-*-aufs in %s (set %s)", dir, AufsKernelEnv)
	}
	sort.Strings(images)
	image := images[len(images)-1]
	config := filepath.Join(dir, "config-"+strings.TrimPrefix(filepath.Base(image), "bzImage-")+".xz")
	if _, err := os.Stat(config); err != nil {
		config = ""
	}
	return ImageKernel("aufs", image, config)
}

// aufsInit runs, in the aufs kernel's VM, the aufs driver's tests (with
// the conformance suite on real aufs mounts over the ext4 and xfs disks),
// overlay2's conformance suite for comparison, and both drivers' bench.
const aufsInit = `export GRAPHPROBE_REQUIRE_ROOT=1 TMPDIR=/tmp
export GRAPHPROBE_TESTFS_ext4=/mnt/ext4 GRAPHPROBE_TESTFS_xfs=/mnt/xfs GRAPHPROBE_TESTFS_btrfs=/mnt/btrfs GRAPHPROBE_TESTFS_ext4_nodtype=/mnt/ext4-nodtype
run aufs-test /bin/aufs.test -test.v -test.count=1 -test.timeout 5m
run overlay2-test /bin/overlay2.test -test.v -test.count=1 -test.run '^TestConformance$' -test.timeout 5m
mkdir -p /mnt/ext4/bench
run bench-aufs-overlay2 graphprobe bench aufs overlay2 --bench quick --docker-version 20.10.24 --data-root /mnt/ext4/bench/docker
`

var testLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)

// testResults maps each (sub)test of a -test.v output to PASS/FAIL/SKIP.
func testResults(out string) map[string]string {
	res := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if m := testLine.FindStringSubmatch(line); m != nil {
			res[m[2]] = m[1]
		}
	}
	return res
}

// checkAufs checks the aufs VM's test runs: the aufs test binary passed
// with nothing skipped on the real kernel, and every conformance check
// overlay2 passes in the same kernel, aufs passes on both ext4 and xfs.
func checkAufs(t *testing.T, secs map[string]Section) []error {
	var errs []error
	at, ok := secs["aufs-test"]
	if !ok {
		return []error{fmt.Errorf("aufs kernel: the aufs tests did not run")}
	}
	res := testResults(at.Stdout)
	if at.RC != 0 {
		errs = append(errs, fmt.Errorf("aufs kernel: aufs.test exit %d:\n%s", at.RC, tail(at.Stdout, 4000)))
	}
	for _, name := range []string{"TestConformanceRealKernel/ext4", "TestConformanceRealKernel/xfs", "TestRealKernelMountOptions/ext4", "TestRealKernelMountOptions/xfs"} {
		if res[name] != "PASS" {
			errs = append(errs, fmt.Errorf("aufs kernel: %s: got %q, want PASS", name, res[name]))
		}
	}
	for name, r := range res {
		if r == "SKIP" && (strings.HasPrefix(name, "TestConformanceRealKernel") || strings.HasPrefix(name, "TestRealKernel")) {
			errs = append(errs, fmt.Errorf("aufs kernel: %s skipped on a kernel with aufs", name))
		}
	}
	ot := secs["overlay2-test"]
	ovl := testResults(ot.Stdout)
	var passedBoth []string
	for name, r := range ovl {
		check, ok := strings.CutPrefix(name, "TestConformance/")
		if !ok || r != "PASS" || strings.HasPrefix(check, "refuses") {
			continue
		}
		for _, fs := range []string{"ext4", "xfs"} {
			if got := res["TestConformanceRealKernel/"+fs+"/"+check]; got != "PASS" {
				errs = append(errs, fmt.Errorf("aufs kernel: conformance check %s on %s: overlay2 passes it, aufs got %q", check, fs, got))
			}
		}
		passedBoth = append(passedBoth, check)
	}
	// overlay2 must pass its whole suite on this 6.1 kernel too: deep
	// chains there need relative paths, as the kernel has no lowerdir+.
	if ot.RC != 0 {
		errs = append(errs, fmt.Errorf("aufs kernel (6.1): overlay2's conformance suite failed (exit %d):\n%s", ot.RC, tail(ot.Stdout+ot.Stderr, 3000)))
	}
	if len(passedBoth) == 0 {
		errs = append(errs, fmt.Errorf("aufs kernel: no overlay2 conformance check passed to compare with (exit %d):\n%s", ot.RC, tail(ot.Stdout+ot.Stderr, 3000)))
	}
	sort.Strings(passedBoth)
	t.Logf("aufs kernel: aufs passes on ext4 and xfs every conformance check overlay2 passes: %s", strings.Join(passedBoth, ", "))
	for _, line := range strings.Split(at.Stdout, "\n") {
		if strings.Contains(line, "branches through") {
			t.Logf("aufs kernel:%s", line)
		}
	}
	if b, ok := secs["bench-aufs-overlay2"]; ok {
		t.Logf("aufs kernel: graphprobe bench aufs overlay2 --bench quick --docker-version 20.10.24 (exit %d), on ext4:\n%s%s", b.RC, b.Stdout, b.Stderr)
	}
	return errs
}
