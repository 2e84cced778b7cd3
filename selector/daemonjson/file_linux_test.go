package daemonjson

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
	"golang.org/x/sys/unix"
)

const (
	oldJSON = "{\n  \"debug\": true,\n  \"storage-driver\": \"aufs\"\n}\n"
	newJSON = "{\n  \"debug\": true,\n  \"storage-driver\": \"overlay2\"\n}\n"
)

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask
		t.Fatal(err)
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// names lists a directory, to show that nothing else was left in it.
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	if err := os.Mkdir(p("dir.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(p("fifo.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("fifo.json", p("to-fifo.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/null", p("to-null.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("missing/daemon.json", p("dangling.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop-b.json", p("loop-a.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop-a.json", p("loop-b.json")); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(p("big.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(100 << 20); err != nil { // sparse: costs no disk
		t.Fatal(err)
	}
	big.Close()
	writeFile(t, p("just-over.json"), "{}"+strings.Repeat(" ", MaxSize-1), 0o644)

	tests := []struct {
		name string
		path string
		want string
	}{
		{"directory", p("dir.json"), "open %s: a directory, not a regular file: replace it with a JSON file"},
		{"FIFO is not opened", p("fifo.json"), "open %s: a FIFO, not a regular file: replace it with a JSON file"},
		{"symlink to a FIFO", p("to-fifo.json"), "open %s (symlink to " + p("fifo.json") + "): a FIFO, not a regular file: replace it with a JSON file"},
		{"device", p("to-null.json"), "open %s (symlink to /dev/null): a character device, not a regular file: replace it with a JSON file"},
		{"dangling symlink", p("dangling.json"), "open %s: dangling symlink to " + p("missing/daemon.json") + ": fix or remove the link"},
		{"symlink loop", p("loop-a.json"), "open %s: more than 40 levels of symbolic links"},
		{"100 MiB file", p("big.json"), "open %s: file is 100 MiB; a daemon.json over 1 MiB is refused"},
		{"one byte over the limit", p("just-over.json"), "open %s: file is 1048577 bytes; a daemon.json over 1 MiB is refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := names(t, dir)
			f, err := Open(tt.path)
			want := fmt.Sprintf(tt.want, tt.path)
			if err == nil || err.Error() != want {
				t.Fatalf("Open: got %v (%+v)\nwant %s", err, f, want)
			}
			if after := names(t, dir); !slices.Equal(before, after) {
				t.Fatalf("directory changed: %v → %v", before, after)
			}
		})
	}
}

func TestOpenMissingFile(t *testing.T) {
	dir := t.TempDir()
	f, err := Open(filepath.Join(dir, "daemon.json"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Exists || f.Content != nil || f.Mode != 0o644 || f.UID != os.Getuid() || f.GID != os.Getgid() {
		t.Fatalf("got %+v", f)
	}
	res, err := f.Update([]byte(newJSON))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Written || res.Backup != "" || res.Path != filepath.Join(dir, "daemon.json") {
		t.Fatalf("got %+v", res)
	}
	if got := readString(t, res.Path); got != newJSON {
		t.Fatalf("content %q", got)
	}
	fi, _ := os.Stat(res.Path)
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if got := names(t, dir); !slices.Equal(got, []string{"daemon.json"}) {
		t.Fatalf("directory holds %v", got)
	}
}

func TestUpdateCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "docker", "daemon.json")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Update([]byte(newJSON)); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, path); got != newJSON {
		t.Fatalf("content %q", got)
	}
}

func TestUpdateReplacesAndKeepsBackup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.json")
	writeFile(t, path, oldJSON, 0o600)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Exists || string(f.Content) != oldJSON || f.Target != path {
		t.Fatalf("got %+v", f)
	}

	// Same content: nothing written, no backup made.
	res, err := f.Update([]byte(oldJSON))
	if err != nil || res.Written || res.Backup != "" {
		t.Fatalf("got %+v %v", res, err)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"daemon.json"}) {
		t.Fatalf("directory holds %v", got)
	}

	res, err = f.Update([]byte(newJSON))
	if err != nil {
		t.Fatal(err)
	}
	backup := path + ".graphprobe-backup"
	if !res.Written || res.Backup != backup || res.Path != path {
		t.Fatalf("got %+v", res)
	}
	if got := readString(t, path); got != newJSON {
		t.Fatalf("content %q", got)
	}
	if got := readString(t, backup); got != oldJSON {
		t.Fatalf("backup %q", got)
	}
	for _, p := range []string{path, backup} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v, want the original's 0600", p, fi.Mode())
		}
	}
	if got := names(t, dir); !slices.Equal(got, []string{"daemon.json", "daemon.json.graphprobe-backup"}) {
		t.Fatalf("directory holds %v", got)
	}

	// A later change backs up the content it replaces.
	third := strings.Replace(newJSON, "overlay2", "btrfs", 1)
	if _, err := f.Update([]byte(third)); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, backup); got != newJSON {
		t.Fatalf("backup %q, want the previous content", got)
	}
}

func TestBackupNotRewrittenWhenEqual(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.json")
	backup := BackupPath(path)
	writeFile(t, path, oldJSON, 0o644)
	writeFile(t, backup, oldJSON, 0o644)
	before, _ := os.Stat(backup)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Update([]byte(newJSON)); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(backup)
	if !os.SameFile(before, after) {
		t.Fatal("backup with the same content was replaced")
	}
}

func TestUpdateThroughSymlink(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc", "docker")
	real := filepath.Join(root, "srv", "config")
	for _, d := range []string{etc, real} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(real, "docker.json")
	writeFile(t, target, oldJSON, 0o640)
	link := filepath.Join(etc, "daemon.json")
	if err := os.Symlink("../../srv/config/docker.json", link); err != nil {
		t.Fatal(err)
	}
	f, err := Open(link)
	if err != nil {
		t.Fatal(err)
	}
	if f.Target != target || f.Path != link {
		t.Fatalf("got %+v", f)
	}
	res, err := f.Update([]byte(newJSON))
	if err != nil {
		t.Fatal(err)
	}
	if res.Path != target || res.Backup != target+".graphprobe-backup" {
		t.Fatalf("got %+v", res)
	}
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v %v", fi, err)
	}
	if got := readString(t, link); got != newJSON {
		t.Fatalf("content through the link %q", got)
	}
	if got := names(t, etc); !slices.Equal(got, []string{"daemon.json"}) {
		t.Fatalf("link directory holds %v", got)
	}
	if got := names(t, real); !slices.Equal(got, []string{"docker.json", "docker.json.graphprobe-backup"}) {
		t.Fatalf("target directory holds %v", got)
	}
}

func TestUpdateKeepsOwnerAndMode(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.json")
	writeFile(t, path, oldJSON, 0o640)
	if err := os.Chown(path, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.UID != 1234 || f.GID != 5678 || f.Mode != 0o640 {
		t.Fatalf("got %+v", f)
	}
	res, err := f.Update([]byte(newJSON))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, res.Backup} {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 1234 || st.Gid != 5678 || st.Mode&0o7777 != 0o640 {
			t.Fatalf("%s: %d:%d %#o, want 1234:5678 0640", p, st.Uid, st.Gid, st.Mode&0o7777)
		}
	}
}

func TestNewFileTakesDirectoryOwner(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := filepath.Join(t.TempDir(), "docker")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 4321, 8765); err != nil {
		t.Fatal(err)
	}
	f, err := Open(filepath.Join(dir, "daemon.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Update([]byte(newJSON))
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(res.Path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 4321 || st.Gid != 8765 || st.Mode&0o7777 != 0o644 {
		t.Fatalf("%d:%d %#o, want 4321:8765 0644", st.Uid, st.Gid, st.Mode&0o7777)
	}
}

func TestUpdateReadOnlyDirectory(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.json")
	writeFile(t, path, oldJSON, 0o644)
	// Root ignores permission bits, so make the directory really read-only.
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Update([]byte(newJSON))
	want := fmt.Sprintf("write %s (backup %s.graphprobe-backup): create temporary file in %s: read-only file system", path, path, dir)
	if err == nil || !errors.Is(err, unix.EROFS) || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if got := readString(t, path); got != oldJSON {
		t.Fatalf("content %q", got)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"daemon.json"}) {
		t.Fatalf("directory holds %v", got)
	}
}

func TestUpdateRefusesWorldWritableDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "daemon.json")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Update([]byte(newJSON))
	want := fmt.Sprintf("write %s: directory %s is writable by every user, so another user could swap the file: run chmod o-w %s", path, dir, dir)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func TestUpdateRefusesConcurrentChange(t *testing.T) {
	tests := []struct {
		name   string
		before string // "" = no file at Open
		meddle func(path string) error
		want   string
	}{
		{"content edited", oldJSON, func(p string) error { return os.WriteFile(p, []byte(`{"x":1}`), 0o644) },
			"write %s: the file changed since it was read; rerun graphprobe to merge with the new content"},
		{"file replaced with the same content", oldJSON, func(p string) error {
			if err := os.WriteFile(p+".new", []byte(oldJSON), 0o644); err != nil {
				return err
			}
			return os.Rename(p+".new", p)
		}, "write %s: the file changed since it was read; rerun graphprobe to merge with the new content"},
		{"file removed", oldJSON, os.Remove, "write %s: the file was removed since it was read; rerun graphprobe"},
		{"file appeared", "", func(p string) error { return os.WriteFile(p, []byte(`{}`), 0o644) },
			"write %s: the file appeared since graphprobe looked; rerun graphprobe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "daemon.json")
			if tt.before != "" {
				writeFile(t, path, tt.before, 0o644)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.meddle(path); err != nil {
				t.Fatal(err)
			}
			meddled, _ := os.ReadFile(path)
			_, err = f.Update([]byte(newJSON))
			if want := fmt.Sprintf(tt.want, path); err == nil || err.Error() != want {
				t.Fatalf("got %v\nwant %s", err, want)
			}
			if now, _ := os.ReadFile(path); string(now) != string(meddled) {
				t.Fatalf("the other writer's content was lost: %q", now)
			}
		})
	}
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestUpdateRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.json")
	writeFile(t, path, oldJSON, 0o644)
	dead := tempName("daemon.json", deadPID(t), "0123456789abcdef")
	live := tempName("daemon.json", os.Getppid(), "fedcba9876543210")
	other := ".daemon.json.swp"
	for _, n := range []string{dead, live, other} {
		writeFile(t, filepath.Join(dir, n), "partial", 0o600)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Update([]byte(newJSON))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.RemovedTemps, []string{filepath.Join(dir, dead)}) {
		t.Fatalf("removed %v", res.RemovedTemps)
	}
	want := []string{live, other, "daemon.json", "daemon.json.graphprobe-backup"}
	slices.Sort(want)
	if got := names(t, dir); !slices.Equal(got, want) {
		t.Fatalf("directory holds %v, want %v", got, want)
	}
}

func TestTempPID(t *testing.T) {
	tests := []struct {
		name string
		pid  int
		ok   bool
	}{
		{".daemon.json.graphprobe-123.abcd.tmp", 123, true},
		{".daemon.json.graphprobe-0.abcd.tmp", 0, false},
		{".daemon.json.graphprobe-x.abcd.tmp", 0, false},
		{".daemon.json.graphprobe-123.tmp", 0, false},
		{".daemon.json.graphprobe-123.ab.cd.tmp", 0, false},
		{".other.json.graphprobe-123.abcd.tmp", 0, false},
		{"daemon.json.graphprobe-backup", 0, false},
	}
	for _, tt := range tests {
		pid, ok := tempPID("daemon.json", tt.name)
		if pid != tt.pid || ok != tt.ok {
			t.Errorf("tempPID(%q) = %d, %v; want %d, %v", tt.name, pid, ok, tt.pid, tt.ok)
		}
	}
}

// recordOps replaces the durability calls with ones that log their order
// and can fail on a chosen call.
func recordOps(t *testing.T, failOn string) *[]string {
	t.Helper()
	var log []string
	saved := sys
	t.Cleanup(func() { sys = saved })
	tmpLabel := func(name string) string {
		if strings.HasSuffix(name, tempSuffix) {
			return "<tmp>"
		}
		return name
	}
	sys = sysOps{
		fsync: func(fd int, name string) error {
			ev := "fsync " + tmpLabel(filepath.Base(name))
			log = append(log, ev)
			if ev == failOn {
				return syscall.EIO
			}
			return saved.fsync(fd, name)
		},
		rename: func(dirfd int, from, to string) error {
			ev := "rename " + tmpLabel(from) + " " + to
			log = append(log, ev)
			if ev == failOn {
				return syscall.EIO
			}
			return saved.rename(dirfd, from, to)
		},
	}
	return &log
}

func TestUpdateDurabilityOrder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.json")
	writeFile(t, path, oldJSON, 0o644)
	log := recordOps(t, "")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Update([]byte(newJSON)); err != nil {
		t.Fatal(err)
	}
	base := filepath.Base(dir)
	want := []string{
		"fsync <tmp>", "rename <tmp> daemon.json.graphprobe-backup", "fsync " + base,
		"fsync <tmp>", "rename <tmp> daemon.json", "fsync " + base,
	}
	if !slices.Equal(*log, want) {
		t.Fatalf("calls\n got %q\nwant %q", *log, want)
	}
}

func TestUpdateFailureLeavesNothing(t *testing.T) {
	for _, failOn := range []string{"fsync <tmp>", "rename <tmp> daemon.json", "rename <tmp> daemon.json.graphprobe-backup"} {
		t.Run(failOn, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "daemon.json")
			writeFile(t, path, oldJSON, 0o644)
			recordOps(t, failOn)
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := f.Update([]byte(newJSON))
			if !errors.Is(err, syscall.EIO) || res.Written {
				t.Fatalf("got %+v %v", res, err)
			}
			if got := readString(t, path); got != oldJSON {
				t.Fatalf("content %q", got)
			}
			for _, n := range names(t, dir) {
				if strings.HasSuffix(n, tempSuffix) {
					t.Fatalf("temporary file %s left", n)
				}
			}
		})
	}
}

func TestSaveReport(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.json")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.SaveReport([]byte(`{"schemaVersion":1,"driver":"overlay2"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got != path+".graphprobe-report.json" {
		t.Fatalf("path %s", got)
	}
	if s := readString(t, got); s != "{\"schemaVersion\":1,\"driver\":\"overlay2\"}\n" {
		t.Fatalf("content %q", s)
	}
	if fi, _ := os.Stat(got); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v", fi.Mode())
	}
	_, err = f.SaveReport([]byte(`{"schemaVersion":`))
	if want := "write " + got + ": report is not valid JSON"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if s := readString(t, got); s != "{\"schemaVersion\":1,\"driver\":\"overlay2\"}\n" {
		t.Fatalf("refused report replaced the old one: %q", s)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"daemon.json.graphprobe-report.json"}) {
		t.Fatalf("directory holds %v", got)
	}
}

// The report's diff and the backup hold daemon.json's content: a 0600
// daemon.json with proxy credentials must not give a 0644 copy of it.
func TestSideFilesNoWiderThanDaemonJSON(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mode       os.FileMode
		oldBackup  os.FileMode // 0: no backup before the run
		wantReport os.FileMode
		wantBackup os.FileMode
	}{
		{name: "private", mode: 0o600, wantReport: 0o600, wantBackup: 0o600},
		{name: "group readable", mode: 0o640, wantReport: 0o640, wantBackup: 0o640},
		{name: "group writable and executable", mode: 0o775, wantReport: 0o644, wantBackup: 0o644},
		{name: "wide backup of an older run", mode: 0o600, oldBackup: 0o644, wantReport: 0o600, wantBackup: 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "daemon.json")
			writeFile(t, path, oldJSON, tc.mode)
			if tc.oldBackup != 0 {
				writeFile(t, BackupPath(path), oldJSON, tc.oldBackup)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := f.Update([]byte(newJSON))
			if err != nil {
				t.Fatal(err)
			}
			report, err := f.SaveReport([]byte(`{"schemaVersion":1}`))
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string]os.FileMode{report: tc.wantReport, res.Backup: tc.wantBackup} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != want {
					t.Errorf("%s: mode %#o, want %#o", filepath.Base(p), fi.Mode().Perm(), want)
				}
			}
		})
	}
}

func TestSideFilesTakeDaemonJSONOwner(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.json")
	writeFile(t, path, oldJSON, 0o600)
	if err := os.Chown(path, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Update([]byte(newJSON)); err != nil {
		t.Fatal(err)
	}
	report, err := f.SaveReport([]byte(`{"schemaVersion":1}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{report, BackupPath(path)} {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 1234 || st.Gid != 5678 || st.Mode&0o7777 != 0o600 {
			t.Errorf("%s: %d:%d %#o, want 1234:5678 0600", p, st.Uid, st.Gid, st.Mode&0o7777)
		}
	}
}
