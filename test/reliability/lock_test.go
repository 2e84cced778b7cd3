package reliability

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

// holdLock starts `select` to driver and stops it (SIGSTOP) as soon as it
// has written its pid into the lock file, so that it holds the lock for as
// long as the test wants, whatever the machine's speed. Should the run
// have released the lock before it stopped (a very slow machine), it is
// let finish and another is started.
func holdLock(t *testing.T, h *host, driver string) *proc {
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		if p := tryHoldLock(t, h, driver); p != nil {
			return p
		}
	}
	t.Fatal("select never held the lock while stopped")
	return nil
}

func tryHoldLock(t *testing.T, h *host, driver string) *proc {
	t.Helper()
	w := newWatcher(t)
	defer w.close()
	dir, _ := h.lockDir()
	if err := w.add(dir, unix.IN_MODIFY|unix.IN_CLOSE_WRITE); err != nil {
		t.Fatal(err)
	}
	p := startGP(t, h.opts(), h.selectArgs("--driver", driver, "--bench", "quick", "--format", "json")...)
	want := strconv.Itoa(p.pid())
	holds := func() bool {
		b, err := os.ReadFile(h.lock)
		return err == nil && strings.TrimSpace(string(b)) == want
	}
	for !holds() {
		// Wake on any change in the lock's directory; the timeout only
		// lets the loop notice a run that ended.
		if _, ok := w.next(100 * time.Millisecond); !ok && p.exited() {
			t.Fatalf("select ended before it held the lock\n%s", p.wait())
		}
	}
	if err := syscall.Kill(p.pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Wait until it has stopped (WNOWAIT leaves the state for os/exec).
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, p.pid(), &info, unix.WSTOPPED|unix.WNOWAIT, nil); err != nil {
		t.Fatalf("waitid: %v", err)
	}
	if !holds() {
		syscall.Kill(p.pid(), syscall.SIGCONT)
		p.wait()
		return nil
	}
	t.Cleanup(func() { syscall.Kill(p.pid(), syscall.SIGCONT) })
	return p
}

func (h *host) lockDir() (string, string) {
	i := strings.LastIndexByte(h.lock, '/')
	return h.lock[:i], h.lock[i+1:]
}

// TestConcurrentSelects: while one select holds the lock, a second one
// waits and says which pid it waits for; once the first is done the second
// runs on the first one's result. daemon.json ends as the second wrote it,
// and its backup is exactly what the first wrote.
func TestConcurrentSelects(t *testing.T) {
	h := newHost(t, testutil.Ext4, 256)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	mountsBefore := mountsOf(t, h.mountRoots()...)

	a := holdLock(t, h, "overlay2")
	b := startGP(t, h.opts(), h.selectArgs("--driver", "vfs", "--bench", "off", "--format", "json")...)
	line := b.waitLine("waiting")
	t.Logf("second run: %s", line)
	if !strings.Contains(line, fmt.Sprintf("(pid %d)", a.pid())) || !strings.Contains(line, h.lock) {
		t.Errorf("the waiting run's message does not name the holder (pid %d) and the lock file: %q", a.pid(), line)
	}
	if got := readFile(t, h.config); !bytes.Equal(got, []byte(vfsConfig)) {
		t.Errorf("daemon.json changed while the first run was stopped holding the lock: %q", got)
	}
	syscall.Kill(a.pid(), syscall.SIGCONT)
	ra, rb := a.wait(), b.wait()
	if ra.code != 0 || rb.code != 0 {
		t.Fatalf("first: %s\nsecond: %s", ra, rb)
	}
	da, db := parseSelect(t, ra), parseSelect(t, rb)
	if !da.DaemonJSON.Written || !db.DaemonJSON.Written {
		t.Fatalf("both runs should have written: first %+v, second %+v", da.DaemonJSON, db.DaemonJSON)
	}
	// The second read daemon.json only after the first had written it.
	if !strings.Contains(db.DaemonJSON.Diff, `-  "storage-driver": "overlay2"`) {
		t.Errorf("the second run did not start from the first one's result; its diff:\n%s", db.DaemonJSON.Diff)
	}
	if got := string(readFile(t, h.config)); got != vfsConfig {
		t.Errorf("daemon.json = %q, want %q", got, vfsConfig)
	}
	firstResult := strings.Replace(vfsConfig, `"vfs"`, `"overlay2"`, 1)
	if got := string(readFile(t, h.config+".graphprobe-backup")); got != firstResult {
		t.Errorf("backup = %q, want the first run's result %q", got, firstResult)
	}
	checkNothingLeft(t, h, mountsBefore)
}

// TestLockTimeout: with a short --lock-timeout the waiting run gives up with
// exit 1 and a message naming the holder's pid, and changes nothing.
func TestLockTimeout(t *testing.T) {
	h := newHost(t, testutil.Ext4, 256)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	mountsBefore := mountsOf(t, h.mountRoots()...)
	a := holdLock(t, h, "overlay2")
	before := snapshot(t, h.etc)
	rb := runGP(t, h.opts(), h.selectArgs("--driver", "vfs", "--bench", "off", "--lock-timeout", "300ms")...)
	t.Logf("waiter: exit %d after %v: %s", rb.code, rb.dur.Round(time.Millisecond), strings.TrimSpace(rb.stderr))
	if rb.code != 1 || !strings.Contains(rb.stderr, fmt.Sprintf("pid %d", a.pid())) || !strings.Contains(rb.stderr, "holds") {
		t.Errorf("want exit 1 and a message naming pid %d as the holder; got %s", a.pid(), rb)
	}
	requireUnchanged(t, "the config dir (while the holder is stopped)", before, snapshot(t, h.etc))
	syscall.Kill(a.pid(), syscall.SIGCONT)
	if ra := a.wait(); ra.code != 0 {
		t.Fatalf("holder: %s", ra)
	}
	if got := string(readFile(t, h.config)); !strings.Contains(got, `"storage-driver": "overlay2"`) {
		t.Errorf("daemon.json = %q, want the holder's result", got)
	}
	checkNothingLeft(t, h, mountsBefore)
}
