package boot

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

const repoRoot = "../.."

// refusalDropIn sets another driver than graphprobe decides (vfs, where
// overlay2 runs) with a dockerd flag, as some hosts do: a daemon.json
// storage-driver beside it would stop dockerd, so graphprobe must refuse
// (exit 4) and Docker must still start, with the flag's driver. (A flag
// that names the decided driver is left alone with exit 0.)
const refusalDropIn = `[Service]
ExecStart=
ExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock -s vfs
`

// sandboxTrouble is what graphprobe or systemd print when the unit's
// sandbox stops it from doing its work.
var sandboxTrouble = regexp.MustCompile(`(?i)permission denied|operation not permitted|read-only file system|denied|seccomp|audit`)

// TestSystemdBoot installs the package into a Debian bookworm system and
// boots it three times under qemu with systemd as PID 1:
//
//  1. first boot: graphprobe-select runs before docker.service, writes its
//     decision into daemon.json, and Docker runs with that driver; the
//     sandbox lets it do all of it without a denial or a warning.
//  2. the same disks again: nothing changes (daemon.json's bytes and
//     mtime), the unit still succeeds.
//  3. another copy whose docker.service sets the driver with -s: graphprobe
//     refuses (exit 4), daemon.json stays absent, the journal has the
//     warning, and Docker starts with the flag's driver.
func TestSystemdBoot(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresTool(t, "qemu-system-x86_64", "mmdebstrap", "mkfs.ext4", "mount", "umount", "chroot", "cp")
	if testing.Short() {
		t.Skip("boots a Debian system under qemu (minutes): not in -short")
	}
	start := time.Now()
	img := ensureImage(t)
	deb := buildDeb(t)
	work := t.TempDir()
	t.Logf("package %s (image ready after %s)", filepath.Base(deb), time.Since(start).Round(time.Second))

	// One prepared root: the package and the test unit installed as an
	// administrator would (dpkg -i in the system, its postinst enabling
	// the unit), then a copy for the refusal case.
	rootA := filepath.Join(work, "root-a.img")
	copyFile(t, img.Root, rootA)
	withMounted(t, rootA, func(dir string) {
		installPackage(t, dir, deb)
		writeFile(t, filepath.Join(dir, "etc/fstab"), "/dev/vda / ext4 rw 0 1\n/dev/vdb /var/lib/docker ext4 defaults 0 2\n", 0o644)
	})
	rootB := filepath.Join(work, "root-b.img")
	copyFile(t, rootA, rootB)
	withMounted(t, rootB, func(dir string) {
		writeFile(t, filepath.Join(dir, "etc/systemd/system/docker.service.d/storage.conf"), refusalDropIn, 0o644)
	})

	a := &vm{name: "a", root: rootA, data: newDataDisk(t, work, "data-a.img"),
		results: filepath.Join(work, "results-a.img"), kernel: img.Kernel, initrd: img.Initrd, logs: work}
	b := &vm{name: "b", root: rootB, data: newDataDisk(t, work, "data-b.img"),
		results: filepath.Join(work, "results-b.img"), kernel: img.Kernel, initrd: img.Initrd, logs: work}

	// The first boot and the refusal boot are independent: run them side
	// by side.
	var first, refused *boot
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); first, errA = a.run(1) }()
	go func() { defer wg.Done(); refused, errB = b.run(1) }()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("boot failed:\n%v\n%v", errA, errB)
	}
	logBoot(t, "first boot", first)
	checkSelected(t, "first boot", first)

	second, err := a.run(2)
	if err != nil {
		t.Fatal(err)
	}
	logBoot(t, "second boot", second)
	checkSelected(t, "second boot", second)
	for _, s := range []string{"daemon-json", "daemon-json-sha256", "daemon-json-stat", "docker-driver"} {
		if first.text(s) != second.text(s) {
			t.Errorf("second boot changed %s:\nfirst:  %s\nsecond: %s", s, first.text(s), second.text(s))
		}
	}

	logBoot(t, "refusal boot", refused)
	checkRefused(t, refused)
	t.Logf("total %s", time.Since(start).Round(time.Second))
}

// checkSelected checks a boot where graphprobe decided and wrote the driver.
func checkSelected(t *testing.T, name string, b *boot) {
	t.Helper()
	sel, dock := b.props("select"), b.props("docker")
	if sel["Result"] != "success" || sel["ExecMainStatus"] != "0" {
		t.Errorf("%s: graphprobe-select.service Result=%s ExecMainStatus=%s, want success and 0; journal:\n%s",
			name, sel["Result"], sel["ExecMainStatus"], b.text("select-journal"))
	}
	checkOrder(t, name, sel, dock)
	if dock["ActiveState"] != "active" {
		t.Errorf("%s: docker.service is %s/%s, want active", name, dock["ActiveState"], dock["SubState"])
	}
	if b.sections["daemon-json"].status != 0 {
		t.Fatalf("%s: no /etc/docker/daemon.json: %s", name, b.text("daemon-json"))
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(b.text("daemon-json")), &cfg); err != nil {
		t.Fatalf("%s: daemon.json: %v\n%s", name, err, b.text("daemon-json"))
	}
	want, _ := cfg["storage-driver"].(string)
	if want == "" {
		t.Errorf("%s: daemon.json has no storage-driver:\n%s", name, b.text("daemon-json"))
	}
	if got := b.text("docker-driver"); got != want {
		t.Errorf("%s: docker info reports driver %q, daemon.json says %q", name, got, want)
	}
	for _, e := range b.journal(t, "select-journal-priorities") {
		msg, _ := e.Message.(string)
		if e.Priority <= "4" {
			t.Errorf("%s: graphprobe-select journal has priority %s: %v", name, e.Priority, e.Message)
		} else if sandboxTrouble.MatchString(msg) {
			t.Errorf("%s: graphprobe-select journal: %s", name, msg)
		}
	}
	checkNoDenials(t, name, b)
}

// checkRefused checks the boot where graphprobe must refuse and Docker
// must start anyway.
func checkRefused(t *testing.T, b *boot) {
	t.Helper()
	const name = "refusal boot"
	sel, dock := b.props("select"), b.props("docker")
	if sel["Result"] != "success" || sel["ExecMainStatus"] != "4" {
		t.Errorf("%s: graphprobe-select.service Result=%s ExecMainStatus=%s, want success and 4; journal:\n%s",
			name, sel["Result"], sel["ExecMainStatus"], b.text("select-journal"))
	}
	checkOrder(t, name, sel, dock)
	if dock["ActiveState"] != "active" {
		t.Errorf("%s: docker.service is %s/%s, want active (a refusal must not stop Docker)", name, dock["ActiveState"], dock["SubState"])
	}
	if got := b.text("docker-driver"); got != "vfs" {
		t.Errorf("%s: docker info reports driver %q, want vfs (the -s flag's)", name, got)
	}
	if b.sections["daemon-json"].status == 0 {
		t.Errorf("%s: graphprobe wrote daemon.json although it refused:\n%s", name, b.text("daemon-json"))
	}
	warned := false
	for _, e := range b.journal(t, "select-journal-priorities") {
		msg, _ := e.Message.(string)
		if e.Priority == "4" && strings.Contains(msg, "graphprobe refused to change the storage driver (exit 4)") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("%s: no warning-priority refusal line in the journal:\n%s", name, b.text("select-journal-priorities"))
	}
	checkNoDenials(t, name, b)
}

// checkOrder checks that graphprobe-select had finished before dockerd
// was started.
func checkOrder(t *testing.T, name string, sel, dock map[string]string) {
	t.Helper()
	selStart := usec(t, sel, "ExecMainStartTimestampMonotonic")
	selEnd := usec(t, sel, "InactiveEnterTimestampMonotonic")
	dockStart := usec(t, dock, "ExecMainStartTimestampMonotonic")
	if selStart == 0 || selEnd == 0 {
		t.Errorf("%s: graphprobe-select.service did not run (start %d, end %d µs)", name, selStart, selEnd)
		return
	}
	if dockStart == 0 || dockStart < selEnd {
		t.Errorf("%s: dockerd started at %d µs, graphprobe-select ended at %d µs: want it after", name, dockStart, selEnd)
	}
}

// checkNoDenials looks for the kernel's audit, seccomp and LSM denials.
func checkNoDenials(t *testing.T, name string, b *boot) {
	t.Helper()
	if s := b.text("audit"); s != "" && !strings.Contains(s, "-- No entries --") {
		t.Errorf("%s: kernel log has denials:\n%s", name, s)
	}
}

func logBoot(t *testing.T, name string, b *boot) {
	t.Helper()
	dock := b.props("docker")
	t.Logf("%s: %s wall, virt %s, kernel %s; docker active at %.1f s, check at %s s uptime; driver %s",
		name, b.wall.Round(100*time.Millisecond), b.text("virt"), b.text("kernel"),
		float64(usec(t, dock, "ActiveEnterTimestampMonotonic"))/1e6,
		strings.Fields(b.text("uptime") + " ?")[0], b.text("docker-driver"))
	t.Logf("%s: kernel random pool: %s", name, b.text("crng"))
	t.Logf("%s: graphprobe-select journal:\n%s", name, b.text("select-journal"))
	if f := b.text("failed"); f != "" {
		t.Logf("%s: failed units:\n%s", name, f)
	}
}

// buildDeb builds the package with scripts/package-deb.sh.
func buildDeb(t *testing.T) string {
	t.Helper()
	testutil.RequiresTool(t, "go", "git", "gzip", "sed")
	abs, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("./scripts/package-deb.sh", t.TempDir())
	cmd.Dir = abs
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/package-deb.sh: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// withMounted loop-mounts a root image, runs f on it and unmounts it.
func withMounted(t *testing.T, img string, f func(dir string)) {
	t.Helper()
	dir, err := os.MkdirTemp("", "graphprobe-boot-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	run(t, time.Minute, "mount", "-o", "loop", img, dir)
	mounted := true
	defer func() {
		if mounted {
			exec.Command("umount", dir).Run()
		}
		os.Remove(dir)
	}()
	f(dir)
	run(t, time.Minute, "umount", dir)
	mounted = false
}

// installPackage installs the .deb and the guest's check unit.
func installPackage(t *testing.T, dir, deb string) {
	t.Helper()
	copyFile(t, deb, filepath.Join(dir, "tmp", "graphprobe.deb"))
	out := run(t, 2*time.Minute, "chroot", dir, "dpkg", "-i", "/tmp/graphprobe.deb")
	t.Logf("dpkg -i:\n%s", strings.TrimSpace(out))
	os.Remove(filepath.Join(dir, "tmp", "graphprobe.deb"))
	// The postinst enables the unit into docker.service's wants: the boot
	// shows whether it did.
	copyFile(t, filepath.Join("testdata", "guest", "graphprobe-boot-check"), filepath.Join(dir, "usr/local/sbin/graphprobe-boot-check"))
	copyFile(t, filepath.Join("testdata", "guest", "graphprobe-boot-check.service"), filepath.Join(dir, "etc/systemd/system/graphprobe-boot-check.service"))
	run(t, time.Minute, "chroot", dir, "systemctl", "enable", "graphprobe-boot-check.service")
}

func newDataDisk(t *testing.T, work, name string) string {
	t.Helper()
	p := filepath.Join(work, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(p, 2<<30); err != nil {
		t.Fatal(err)
	}
	run(t, time.Minute, "mkfs.ext4", "-q", "-F", "-L", "docker", p)
	return p
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
