package vmtest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// Docker20Env names the root of an unpacked Debian docker.io 20.10 (with
// usr/sbin/dockerd); by default the engine cache scripts/docker-cache fills
// is searched for one.
const Docker20Env = "GRAPHPROBE_DOCKER20_ROOT"

// docker20Root finds an unpacked dockerd 20.10.
func docker20Root() string {
	if r := os.Getenv(Docker20Env); r != "" {
		return r
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	candidates, _ := filepath.Glob(filepath.Join(base, "graphprobe", "*", "*", "*", "usr", "sbin", "dockerd"))
	more, _ := filepath.Glob(filepath.Join(base, "graphprobe", "*", "*", "usr", "sbin", "dockerd"))
	for _, d := range append(candidates, more...) {
		out, err := exec.Command(d, "--version").Output()
		if err == nil && strings.Contains(string(out), "version 20.10.") {
			return strings.TrimSuffix(d, "/usr/sbin/dockerd")
		}
	}
	return ""
}

var lddPath = regexp.MustCompile(`(?:=>\s*)?(/\S+)\s+\(0x`)

// withLibs adds the shared libraries of each binary (as ldd lists them) to
// files, at the same paths.
func withLibs(t *testing.T, files map[string]string, bins ...string) {
	t.Helper()
	for _, b := range bins {
		out, err := exec.Command("ldd", b).Output()
		if err != nil {
			continue // static
		}
		for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
			real, err := filepath.EvalSymlinks(m[1])
			if err != nil {
				t.Fatalf("ldd %s: %v", b, err)
			}
			files[strings.TrimPrefix(m[1], "/")] = real
		}
	}
}

// TestAufsDockerd starts Debian's dockerd 20.10 with storage-driver aufs in
// the aufs kernel's VM, imports an image and creates a container, stops it,
// and has graphprobe's aufs driver open the layers it made; graphprobe
// select on that data-root keeps aufs for 20.10 and refuses 24.
func TestAufsDockerd(t *testing.T) {
	testutil.RequiresRoot(t)
	testutil.RequiresTool(t, "qemu-system-x86_64", "cpio", "ldd")
	k, err := AufsKernel(repoRoot(t))
	if err != nil {
		t.Skipf("no aufs kernel: %v", err)
	}
	root := docker20Root()
	if root == "" {
		t.Skipf("no dockerd 20.10 (run make docker-cache, or set %s)", Docker20Env)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	gp, aufsTest := filepath.Join(tmp, "graphprobe"), filepath.Join(tmp, "aufs.test")
	buildStatic(t, "./cmd/graphprobe", gp)
	buildTest(t, "./drivers/aufs", aufsTest)
	files := map[string]string{"bin/graphprobe": gp, "bin/aufs.test": aufsTest}
	var bins []string
	for _, b := range []string{"usr/sbin/dockerd", "usr/bin/containerd", "usr/bin/containerd-shim-runc-v2", "usr/bin/runc", "usr/bin/docker", "usr/bin/docker-init"} {
		p := filepath.Join(root, b)
		if _, err := os.Stat(p); err != nil {
			t.Skipf("dockerd 20.10 at %s lacks %s", root, b)
		}
		files[b] = p
		bins = append(bins, p)
	}
	withLibs(t, files, bins...)
	ext4, err := StorageDisks[0].Image(ctx)
	if err != nil {
		t.Fatal(err)
	}
	init := InitPrelude + `mkdir -p /mnt/ext4 /run /etc /sys/fs/cgroup /var/lib
mount -t ext4 /dev/vda /mnt/ext4
mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null
echo 'root:x:0:0:root:/root:/bin/sh' >/etc/passwd
echo 'root:x:0:' >/etc/group
DR=/mnt/ext4/docker
D="docker -H unix:///run/docker.sock"
dockerd --storage-driver aufs --data-root $DR --exec-root /run/docker --pidfile /run/docker.pid \
	-H unix:///run/docker.sock --iptables=false --ip-forward=false --ip-masq=false --bridge=none >/tmp/dockerd.log 2>&1 &
pid=$!
i=0; while [ $i -lt 120 ] && ! $D info >/dev/null 2>&1; do sleep 1; i=$((i+1)); done
run info $D info --format '{{.Driver}}'
run import sh -c "tar -C / -cf - bin/busybox | $D import - graphprobe/busybox:1"
run create $D create --name c1 graphprobe/busybox:1 /bin/busybox true
kill $pid; i=0; while [ $i -lt 60 ] && kill -0 $pid 2>/dev/null; do sleep 1; i=$((i+1)); done
run dockerd-log cat /tmp/dockerd.log
run open-layers env GRAPHPROBE_AUFS_DOCKER_HOME=$DR/aufs /bin/aufs.test -test.v -test.run '^TestOpenDockerLayers$'
for v in 20.10.24 24.0.7; do
	mkdir -p /tmp/c-$v
	run select-$v graphprobe select --dry-run --bench off --format json --docker-version $v --data-root $DR \
		--config /tmp/c-$v/daemon.json --lock-file /tmp/c-$v/lock
done
` + InitEnd
	base, err := BaseInitramfs(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(tmp, "initrd")
	if err := Initramfs(ctx, base, initrd, init, files); err != nil {
		t.Fatal(err)
	}
	r, err := VM{Kernel: k, Initrd: initrd, Disks: []string{ext4}, Memory: 1536, Timeout: 7 * time.Minute}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("aufs kernel with dockerd 20.10: booted and ran in %s (%s)", r.Elapsed.Round(100*time.Millisecond), r.Accel)
	secs := r.Sections()
	if s := secs["info"]; s.RC != 0 || strings.TrimSpace(s.Stdout) != "aufs" {
		t.Fatalf("dockerd 20.10 with storage-driver aufs: docker info says %q (rc %d, %s); dockerd log:\n%s", strings.TrimSpace(s.Stdout), s.RC, s.Stderr, tail(secs["dockerd-log"].Stdout, 3000))
	}
	for _, n := range []string{"import", "create", "open-layers"} {
		if s := secs[n]; s.RC != 0 {
			t.Errorf("%s: rc %d\n%s%s", n, s.RC, tail(s.Stdout, 3000), s.Stderr)
		}
	}
	if !strings.Contains(secs["open-layers"].Stdout, "--- PASS: TestOpenDockerLayers") {
		t.Errorf("graphprobe's aufs driver on dockerd's layers:\n%s", secs["open-layers"].Stdout)
	}
	for _, l := range strings.Split(secs["open-layers"].Stdout, "\n") {
		if strings.Contains(l, "layers opened") {
			t.Log(strings.TrimSpace(l))
		}
	}
	var d selectDoc
	s20 := secs["select-20.10.24"]
	if err := json.Unmarshal([]byte(s20.Stdout), &d); err != nil || s20.RC != 0 || d.Driver != "aufs" {
		t.Errorf("select --docker-version 20.10.24 on dockerd's aufs data-root: rc %d, driver %q, want 0 and aufs (%v) %s", s20.RC, d.Driver, err, s20.Stderr)
	}
	s24 := secs["select-24.0.7"]
	if s24.RC != 4 {
		t.Errorf("select --docker-version 24.0.7 on dockerd's aufs data-root: rc %d, want 4 (refused: 24 removed aufs) %s", s24.RC, s24.Stderr)
	}
	t.Logf("docker info: %s; select 20.10.24: %s (exit %d); select 24.0.7: exit %d: %s",
		strings.TrimSpace(secs["info"].Stdout), d.Driver, s20.RC, s24.RC, strings.TrimSpace(s24.Stderr))
}
