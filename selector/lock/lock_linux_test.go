package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

const helperEnv = "GRAPHPROBE_LOCK_HELPER"

// TestMain doubles as the other graphprobe: re-executed with helperEnv
// set, the test binary takes the lock named there, says "locked", and holds
// it until its standard input closes.
func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(holdLock(path))
	}
	os.Exit(m.Run())
}

func holdLock(path string) int {
	l, err := Acquire(context.Background(), path, Options{Timeout: time.Minute})
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := l.Release(); err != nil {
		fmt.Println("error:", err)
		return 2
	}
	return 0
}

type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startHolder starts a helper process holding the lock at path and waits
// until it holds it.
func startHolder(t *testing.T, path string) *holder {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &holder{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	return h
}

func (h *holder) pid() int { return h.cmd.Process.Pid }

func filePID(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTimeoutNamesHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graphprobe.lock")
	h := startHolder(t, path)
	var waitedFor int
	_, err := Acquire(context.Background(), path, Options{Timeout: 200 * time.Millisecond, OnWait: func(pid int) { waitedFor = pid }})
	want := fmt.Sprintf("another graphprobe (pid %d) holds %s; waited 200ms", h.pid(), path)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	var he *HeldError
	if !errors.As(err, &he) || he.PID != h.pid() || waitedFor != h.pid() {
		t.Fatalf("HeldError %+v, OnWait saw %d", he, waitedFor)
	}
	if got := filePID(t, path); got != strconv.Itoa(h.pid())+"\n" {
		t.Fatalf("the waiter changed the pid file: %q", got)
	}
}

func TestNoWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graphprobe.lock")
	h := startHolder(t, path)
	_, err := Acquire(context.Background(), path, Options{})
	want := fmt.Sprintf("another graphprobe (pid %d) holds %s; waited 0s", h.pid(), path)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestWaitsThenProceeds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graphprobe.lock")
	h := startHolder(t, path)
	waiting := make(chan int, 1)
	type result struct {
		l   *Lock
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := Acquire(context.Background(), path, Options{Timeout: 5 * time.Minute, OnWait: func(pid int) { waiting <- pid }})
		done <- result{l, err}
	}()
	if pid := <-waiting; pid != h.pid() {
		t.Fatalf("waiting for pid %d, holder is %d", pid, h.pid())
	}
	select {
	case r := <-done:
		t.Fatalf("acquired while the holder still holds it: %v", r.err)
	default:
	}
	h.stdin.Close() // the holder releases and exits
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("holder: %v", err)
	}
	if got := filePID(t, path); got != strconv.Itoa(os.Getpid())+"\n" {
		t.Fatalf("pid file %q", got)
	}
	if err := r.l.Release(); err != nil {
		t.Fatal(err)
	}
	if got := filePID(t, path); got != "" {
		t.Fatalf("pid file after release %q", got)
	}
}

func TestKilledHolderReleases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graphprobe.lock")
	h := startHolder(t, path)
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = h.cmd.Wait()
	// The killed holder's pid is still in the file; the lock is free.
	if got := filePID(t, path); got != strconv.Itoa(h.pid())+"\n" {
		t.Fatalf("pid file %q", got)
	}
	l, err := Acquire(context.Background(), path, Options{Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if got := filePID(t, path); got != strconv.Itoa(os.Getpid())+"\n" {
		t.Fatalf("pid file %q", got)
	}
}

func TestCancelStopsWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graphprobe.lock")
	h := startHolder(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Acquire(ctx, path, Options{Timeout: time.Hour, OnWait: func(int) { cancel() }})
	want := fmt.Sprintf("wait for %s held by another graphprobe (pid %d): context canceled", path, h.pid())
	if !errors.Is(err, context.Canceled) || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestSameProcessTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "lock", "graphprobe.lock") // directories made
	l, err := Acquire(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(context.Background(), path, Options{})
	var he *HeldError
	if !errors.As(err, &he) || he.PID != os.Getpid() {
		t.Fatalf("second Acquire: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	l2, err := Acquire(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

func TestRefusesPlantedFiles(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	if err := os.Symlink(victim, p("symlink.lock")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p("missing"), p("dangling.lock")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(victim, p("hardlink.lock")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p("dir.lock"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p("fifo.lock"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file, want string
	}{
		{"symlink", "symlink.lock", "lock %s: the lock file is a symlink; refusing to follow it (remove it)"},
		{"dangling symlink", "dangling.lock", "lock %s: the lock file is a symlink; refusing to follow it (remove it)"},
		{"hard link", "hardlink.lock", "lock %s: the lock file has 2 hard links; refusing to use it (remove it)"},
		{"directory", "dir.lock", "lock %s: is a directory"},
		{"FIFO", "fifo.lock", "lock %s: the lock file is not a regular file; refusing to use it (remove it)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := p(tt.file)
			_, err := Acquire(context.Background(), path, Options{})
			want := fmt.Sprintf(tt.want, path)
			if err == nil || err.Error() != want {
				t.Fatalf("got %v\nwant %s", err, want)
			}
		})
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("victim file changed: %q", b)
	}
	if _, err := os.Stat(p("missing")); !os.IsNotExist(err) {
		t.Fatalf("dangling symlink target created: %v", err)
	}
}

func TestRefusesForeignOwner(t *testing.T) {
	testutil.RequiresRoot(t)
	path := filepath.Join(t.TempDir(), "graphprobe.lock")
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(context.Background(), path, Options{})
	want := fmt.Sprintf("lock %s: the lock file is owned by uid 1234, not by us (uid 0); refusing to use it (remove it)", path)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if got := filePID(t, path); got != "1\n" {
		t.Fatalf("file changed: %q", got)
	}
}

func TestWorldWritableFileTightened(t *testing.T) {
	path := filepath.Join(t.TempDir(), "graphprobe.lock")
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	l, err := Acquire(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if !strings.HasSuffix(filePID(t, path), "\n") {
		t.Fatal("no pid written")
	}
}
