package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// slots bounds the VMs this process runs at once: each takes a core under
// TCG.
var slots = make(chan struct{}, 2)

// VM is one boot of a kernel with an initramfs and disks.
type VM struct {
	Kernel  Kernel
	Initrd  string
	Append  string   // extra kernel command line
	Disks   []string // raw images, attached in order as vda, vdb, ...
	Memory  int      // MiB; 1024 when 0
	Timeout time.Duration
}

// Result is what a boot left: the console (ttyS0), the data the guest wrote
// to ttyS1, and how long it took.
type Result struct {
	Console string
	Data    string
	Elapsed time.Duration
	Accel   string
}

// Sections splits the data by the markers the guest's /init writes:
//
//	@@@BEGIN <name> rc=<n>
//	...stdout...
//	@@@STDERR
//	...stderr...
//	@@@END <name>
func (r *Result) Sections() map[string]Section {
	out := map[string]Section{}
	var cur *Section
	var name string
	var b *strings.Builder
	sc := bufio.NewScanner(strings.NewReader(r.Data))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, "@@@BEGIN "):
			f := strings.Fields(strings.TrimPrefix(line, "@@@BEGIN "))
			cur = &Section{RC: -1}
			if len(f) > 0 {
				name = f[0]
			}
			if len(f) > 1 {
				cur.RC, _ = strconv.Atoi(strings.TrimPrefix(f[1], "rc="))
			}
			b = &strings.Builder{}
		case cur != nil && line == "@@@STDERR":
			cur.Stdout = b.String()
			b = &strings.Builder{}
		case cur != nil && strings.HasPrefix(line, "@@@END "):
			cur.Stderr = b.String()
			out[name] = *cur
			cur = nil
		case cur != nil:
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return out
}

// Section is one command's output.
type Section struct {
	RC     int
	Stdout string
	Stderr string
}

// accelerators are tried in order: KVM where the CPU has it, else TCG.
func accelerators() []string {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		f.Close()
		return []string{"kvm", "tcg"}
	}
	return []string{"tcg"}
}

// Run boots the VM and waits until it powers off or the timeout expires.
func (vm VM) Run(ctx context.Context) (*Result, error) {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-slots }()
	var last error
	for _, accel := range accelerators() {
		r, err := vm.run(ctx, accel)
		if err == nil {
			return r, nil
		}
		last = err
		var ae *accelError
		if !errors.As(err, &ae) {
			return r, err
		}
	}
	return nil, last
}

type accelError struct{ msg string }

func (e *accelError) Error() string { return e.msg }

func (vm VM) run(ctx context.Context, accel string) (*Result, error) {
	dir, err := os.MkdirTemp("", "graphprobe-vm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	console, data := filepath.Join(dir, "console"), filepath.Join(dir, "data")
	mem := vm.Memory
	if mem == 0 {
		mem = 1024
	}
	timeout := vm.Timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	args := []string{
		"-accel", accel, "-m", strconv.Itoa(mem), "-smp", "1",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
		"-serial", "file:" + console, "-serial", "file:" + data,
		"-kernel", vm.Kernel.Vmlinuz, "-initrd", vm.Initrd,
		"-append", strings.TrimSpace("console=ttyS0 panic=-1 quiet loglevel=4 " + vm.Append),
	}
	if accel == "kvm" {
		args = append(args, "-cpu", "host")
	} else {
		args = append(args, "-cpu", "max")
	}
	for _, d := range vm.Disks {
		args = append(args, "-drive", "file="+d+",if=virtio,format=raw,snapshot=on")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	r := &Result{Elapsed: time.Since(start), Accel: accel}
	c, _ := os.ReadFile(console)
	d, _ := os.ReadFile(data)
	r.Console, r.Data = string(c), string(d)
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if accel == "kvm" && r.Console == "" {
			return r, &accelError{msg: fmt.Sprintf("boot %s with kvm: %v: %s", vm.Kernel.Release, err, msg)}
		}
		if ctx.Err() != nil {
			return r, fmt.Errorf("boot %s: no poweroff within %s (console tail: %s)", vm.Kernel.Release, timeout, tail(r.Console, 1500))
		}
		return r, fmt.Errorf("boot %s: qemu-system-x86_64: %w: %s (install qemu-system-x86)", vm.Kernel.Release, err, msg)
	}
	return r, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// InitPrelude is the start of an /init script: busybox applets, the kernel
// filesystems, and run/sections helpers that frame output on ttyS1.
const InitPrelude = `#!/bin/busybox sh
/bin/busybox --install -s /bin
# The kernel asks /sbin/modprobe for modules it needs by alias.
ln -s /bin/busybox /sbin/modprobe
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/shm /dev/pts
mount -t tmpfs shm /dev/shm
mount -t tmpfs tmp /tmp
exec 3>/dev/ttyS1
# Checksums the filesystems ask the crypto API for by name, then the disks.
for m in crc32c_generic crc32c_intel libcrc32c virtio_pci virtio_blk; do modprobe -q $m; done
# run NAME CMD...: run CMD, frame its rc, stdout and stderr on ttyS1.
run() {
	n=$1; shift
	"$@" >/tmp/.out 2>/tmp/.err
	rc=$?
	echo "@@@BEGIN $n rc=$rc" >&3
	cat /tmp/.out >&3
	echo "@@@STDERR" >&3
	cat /tmp/.err >&3
	echo "@@@END $n" >&3
	return $rc
}
`

// InitEnd powers the VM off once the output is flushed.
const InitEnd = `
sync
echo "@@@DONE" >&3
poweroff -f
`
