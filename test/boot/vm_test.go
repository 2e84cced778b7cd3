package boot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bootTimeout bounds one boot: under TCG on a loaded 2-core machine a boot
// to Docker took up to 4 minutes (graphprobe's default benchmark included);
// a guest that hangs fails the test instead of the suite.
const bootTimeout = 7 * time.Minute

// vm is one machine's disks: the root filesystem, the data-root
// (/var/lib/docker) and the raw results disk the guest writes to.
type vm struct {
	name                 string
	root, data, results  string
	kernel, initrd, logs string
}

// boot is what one boot left on the results disk, and how long it took.
type boot struct {
	sections map[string]section
	console  string
	wall     time.Duration
}

type section struct {
	text   string
	status int
}

// run boots the machine until it powers itself off, with a fresh results
// disk, and returns what the guest wrote. KVM is tried first; qemu falls
// back to TCG by itself when KVM cannot be used (-accel is tried in order).
// It reports errors rather than failing the test, so that two machines can
// boot side by side.
func (m *vm) run(n int) (*boot, error) {
	if err := os.WriteFile(m.results, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Truncate(m.results, 4<<20); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	args := []string{
		"-accel", "kvm", "-accel", "tcg", "-cpu", "max",
		"-m", "1024", "-smp", "2",
		"-display", "none", "-monitor", "none", "-serial", "stdio",
		"-nic", "none", "-no-reboot",
		// An entropy source, as cloud machines have: without one the
		// kernel's random pool is not ready for minutes under TCG, and
		// dockerd (`dockerd --version` included) blocks in getrandom until
		// it is. graphprobe then fails safely (see TestEngineVersion); with
		// it, the boot is the one users' machines see.
		"-device", "virtio-rng-pci",
		"-kernel", m.kernel, "-initrd", m.initrd,
		// panic=-1 with -no-reboot: a kernel panic ends qemu at once.
		"-append", "root=/dev/vda rw console=ttyS0 panic=-1 quiet systemd.show_status=1",
		"-drive", "file=" + m.root + ",format=raw,if=virtio",
		"-drive", "file=" + m.data + ",format=raw,if=virtio",
		"-drive", "file=" + m.results + ",format=raw,if=virtio",
	}
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	// The console goes to a file as it comes, to follow a slow boot.
	logFile, err := os.Create(filepath.Join(m.logs, fmt.Sprintf("%s-boot%d.console", m.name, n)))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	var out bytes.Buffer
	w := io.MultiWriter(&out, logFile)
	cmd.Stdout, cmd.Stderr = w, w
	start := time.Now()
	err = cmd.Run()
	b := &boot{console: out.String(), wall: time.Since(start)}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s boot %d: no poweroff within %s; console:\n%s", m.name, n, bootTimeout, tail(b.console, 8000))
	}
	if err != nil {
		return nil, fmt.Errorf("%s boot %d: qemu: %v; console:\n%s", m.name, n, err, tail(b.console, 8000))
	}
	raw, err := os.ReadFile(m.results)
	if err != nil {
		return nil, err
	}
	if i := bytes.IndexByte(raw, 0); i >= 0 {
		raw = raw[:i]
	}
	b.sections, err = parseResults(string(raw))
	if err != nil {
		return nil, fmt.Errorf("%s boot %d: results disk: %v; console:\n%s", m.name, n, err, tail(b.console, 8000))
	}
	return b, nil
}

// parseResults reads "@@name" sections, each closed by "@@status N",
// up to "@@end".
func parseResults(s string) (map[string]section, error) {
	secs := map[string]section{}
	var name string
	var body strings.Builder
	for _, line := range strings.Split(s, "\n") {
		switch {
		case line == "@@end":
			return secs, nil
		case strings.HasPrefix(line, "@@status "):
			st, err := strconv.Atoi(strings.TrimPrefix(line, "@@status "))
			if err != nil || name == "" {
				return nil, fmt.Errorf("bad status line %q", line)
			}
			secs[name] = section{text: body.String(), status: st}
			name = ""
			body.Reset()
		case strings.HasPrefix(line, "@@"):
			name = strings.TrimPrefix(line, "@@")
		default:
			body.WriteString(line)
			body.WriteByte('\n')
		}
	}
	return nil, fmt.Errorf("no @@end: the guest did not finish writing (%d bytes)", len(s))
}

// text returns a section's output, trimmed.
func (b *boot) text(name string) string { return strings.TrimSpace(b.sections[name].text) }

// props parses a "Key=value" section (systemctl show).
func (b *boot) props(name string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(b.text(name), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// usec reads a monotonic timestamp property in microseconds.
func usec(t *testing.T, p map[string]string, key string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(p[key], 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", key, p[key], err)
	}
	return v
}

// journalEntry is one line of journalctl -o json.
type journalEntry struct {
	Priority string `json:"PRIORITY"`
	Message  any    `json:"MESSAGE"` // a string, or bytes when not UTF-8
}

func (b *boot) journal(t *testing.T, name string) []journalEntry {
	t.Helper()
	var es []journalEntry
	for _, line := range strings.Split(b.text(name), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var e journalEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journal line %q: %v", line, err)
		}
		es = append(es, e)
	}
	return es
}
