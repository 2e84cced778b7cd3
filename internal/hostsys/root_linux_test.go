package hostsys_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/graphprobe/graphprobe/internal/hostsys"
)

// capturedTree lays out a captured host with the links a hostile or merely
// unusual capture holds.
func capturedTree(t *testing.T) (root, outside string) {
	t.Helper()
	outside = t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("machine's own"), 0o600); err != nil {
		t.Fatal(err)
	}
	root = t.TempDir()
	for _, d := range []string{"etc/docker", "usr/lib/systemd/system", "lib", "etc/systemd/system"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/docker/daemon.json":                `{"storage-driver":"overlay2"}`,
		"usr/lib/systemd/system/docker.service": "[Service]\n",
		"secret":                                "the capture's own",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"etc/abs":                           "/etc/docker/daemon.json",        // absolute: taken inside the tree
		"etc/up":                            "../../../../../../secret",       // climbs past the top: stops there
		"etc/out":                           filepath.Join(outside, "secret"), // the machine's file by its real path
		"lib/systemd":                       "../usr/lib/systemd",             // a merged-/usr link
		"etc/systemd/system/docker.service": "/dev/null",                      // systemctl mask
		"etc/systemd/system/masked-rel":     "../../../dev/null",              // a relative mask
		"etc/loop1":                         "loop2",
		"etc/loop2":                         "loop1",
	}
	for p, target := range links {
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

func TestRootOpen(t *testing.T) {
	dir, _ := capturedTree(t)
	r := hostsys.NewRoot(dir)
	for _, tt := range []struct {
		name, path, want string
	}{
		{"plain", "/etc/docker/daemon.json", `{"storage-driver":"overlay2"}`},
		{"absolute link", "/etc/abs", `{"storage-driver":"overlay2"}`},
		{"link past the top", "/etc/up", "the capture's own"},
		{"dot-dot past the top", "/../../secret", "the capture's own"},
		{"merged /usr", "/lib/systemd/system/docker.service", "[Service]\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, err := r.Open(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("read %q, want %q", b, tt.want)
			}
		})
	}
	// The machine's file by its real path is looked for inside the tree,
	// where it does not exist.
	if f, err := r.Open("/etc/out"); err == nil {
		b, _ := io.ReadAll(f)
		f.Close()
		t.Fatalf("opened the machine's own file through a link: %q", b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open /etc/out: %v, want not exist", err)
	}
}

func TestRootResolve(t *testing.T) {
	dir, _ := capturedTree(t)
	r := hostsys.NewRoot(dir)
	for _, tt := range []struct {
		name, path, want string
	}{
		{"plain", "/etc/docker/daemon.json", "/etc/docker/daemon.json"},
		{"absolute link", "/etc/abs", "/etc/docker/daemon.json"},
		{"link past the top", "/etc/up", "/secret"},
		{"merged /usr", "/lib/systemd/system/docker.service", "/usr/lib/systemd/system/docker.service"},
		{"mask", "/etc/systemd/system/docker.service", hostsys.DevNull},
		{"relative mask", "/etc/systemd/system/masked-rel", hostsys.DevNull},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Resolve(tt.path)
			if err != nil || got != tt.want {
				t.Errorf("Resolve(%s) = %q, %v; want %q", tt.path, got, err, tt.want)
			}
		})
	}
	_, err := r.Resolve("/etc/loop1")
	if want := "read /etc/loop1: too many levels of symbolic links"; err == nil || err.Error() != want || !errors.Is(err, syscall.ELOOP) {
		t.Errorf("Resolve of a loop: %v, want %q wrapping ELOOP", err, want)
	}
	if _, err := r.Resolve("/etc/out"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Resolve of a link to the machine's file: %v, want not exist", err)
	}
}

func TestRootConfined(t *testing.T) {
	dir, outside := capturedTree(t)
	if err := os.Symlink(outside, filepath.Join(dir, "etc", "escape")); err != nil {
		t.Fatal(err)
	}
	r := hostsys.NewRoot(dir)
	if err := r.Confined("/etc/escape/secret"); err == nil {
		t.Error("a directory linked out of the tree passed Confined")
	}
	if err := r.Confined("/lib/systemd/system/docker.service"); err != nil {
		t.Errorf("a directory linked inside the tree: %v", err)
	}
	if err := hostsys.NewRoot("/").Confined("/etc/escape/secret"); err != nil {
		t.Errorf("the live host confines nothing: %v", err)
	}
}

func TestRootPath(t *testing.T) {
	for _, tt := range []struct{ root, p, want string }{
		{"/", "etc/docker/daemon.json", "/etc/docker/daemon.json"},
		{"", "/proc/../etc/x", "/etc/x"},
		{"/tmp/host", "/../../etc/x", "/tmp/host/etc/x"},
		{"/tmp/host/", "/", "/tmp/host"},
	} {
		if got := hostsys.NewRoot(tt.root).Path(tt.p); got != tt.want {
			t.Errorf("NewRoot(%q).Path(%q) = %q, want %q", tt.root, tt.p, got, tt.want)
		}
	}
}
