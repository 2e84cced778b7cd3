package packaging

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// wantsLink is where enabling the unit puts it: WantedBy=docker.service.
const wantsLink = "/etc/systemd/system/docker.service.wants/" + unitName

// footprintDirs are where installing, enabling, removing or purging the
// package leaves traces; footprint lists every path under them whose name
// mentions graphprobe, and the docker.service.wants directories that
// enabling the unit may create.
var footprintDirs = []string{
	"/etc", "/usr/bin", "/usr/share/man/man1", "/usr/share/bash-completion/completions",
	"/usr/share/zsh/vendor-completions", "/usr/lib/systemd/system", "/lib/systemd/system",
	"/var/lib/systemd", "/var/lib/dpkg/info",
}

func footprint(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, dir := range footprintDirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // unreadable or gone: not ours
			}
			if strings.Contains(d.Name(), "graphprobe") || d.Name() == "docker.service.wants" {
				info, _ := os.Lstat(path)
				out = append(out, path+" "+info.Mode().Type().String())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(out)
	return out
}

// dpkgStatus is dpkg's status of the graphprobe package ("" when dpkg does
// not know it).
func dpkgStatus() string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "graphprobe").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func dpkg(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("dpkg", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestInstallRemovePurge installs the package with dpkg, checks what it put
// where, runs the installed graphprobe and systemd-analyze verify on the
// installed unit, then removes and purges it and wants the machine as it
// was. Cleanup purges the package even when the test fails half-way.
func TestInstallRemovePurge(t *testing.T) {
	testutil.RequiresRoot(t)
	// man: systemd-analyze verify looks up the unit's Documentation=man:
	// page with it, and fails without it.
	testutil.RequiresTool(t, "dpkg", "dpkg-query", "dpkg-deb", "systemd-analyze", "man", "bash")
	// Refuse to touch a machine that has graphprobe installed already: the
	// purge at the end would remove it.
	if st := dpkgStatus(); st != "" && !strings.HasSuffix(st, "not-installed") {
		mustNotInstall(t, "the graphprobe package is already on this machine (%s); remove it with dpkg -P graphprobe", st)
	}
	for path := range installedFiles {
		if _, err := os.Lstat(path); err == nil {
			mustNotInstall(t, "%s exists already: installing the package would replace it", path)
		}
	}
	pkg := sharedPackage(t)
	before := footprint(t)
	t.Cleanup(func() {
		if dpkgStatus() != "" {
			if out, err := exec.Command("dpkg", "-P", "graphprobe").CombinedOutput(); err != nil {
				t.Errorf("cleanup: dpkg -P graphprobe: %v\n%s", err, out)
			}
		}
		if after := footprint(t); strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Errorf("the machine is not as it was:\nbefore:\n  %s\nafter:\n  %s",
				strings.Join(before, "\n  "), strings.Join(after, "\n  "))
		}
	})

	version := strings.TrimSpace(run(t, "dpkg-deb", "-f", pkg.deb, "Version"))
	dpkg(t, "-i", pkg.deb)

	if st := dpkgStatus(); st != "install ok installed" {
		t.Fatalf("after dpkg -i: status %q", st)
	}
	_, _, data, _ := readDeb(t, pkg.deb)
	for path, mode := range installedFiles {
		st, err := os.Lstat(path)
		if err != nil {
			t.Errorf("installed file: %v", err)
			continue
		}
		if st.Mode().Perm() != mode || !st.Mode().IsRegular() {
			t.Errorf("%s: mode %s, want a file with %o", path, st.Mode(), mode)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[path].data) {
			t.Errorf("%s differs from the package's copy", path)
		}
	}

	// The installed binary reports the package's version.
	var info struct {
		SchemaVersion              int
		Version, Commit, GoVersion string
	}
	if err := json.Unmarshal([]byte(run(t, "/usr/bin/graphprobe", "version", "--format", "json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Version != version || info.SchemaVersion != 1 || info.GoVersion == "" || info.Commit == "unknown" {
		t.Errorf("/usr/bin/graphprobe version: %+v; the package is %s", info, version)
	}
	text := run(t, "/usr/bin/graphprobe", "version")
	if !strings.Contains(text, "graphprobe "+version+" ") {
		t.Errorf("graphprobe version prints %q, want the package version %s", text, version)
	}

	// postinst enabled the unit into docker.service's wants, pointing at
	// the installed unit.
	target, err := filepath.EvalSymlinks(wantsLink)
	if err != nil {
		t.Errorf("the unit is not enabled: %v", err)
	} else if a, b := stat(t, target), stat(t, "/usr/lib/systemd/system/"+unitName); !os.SameFile(a, b) {
		t.Errorf("%s points at %s, not the installed unit", wantsLink, target)
	}

	// systemd-analyze verify on the installed unit: exit 0 and not one
	// line of output (unknown keys, missing binaries, a man page it cannot
	// find and bad dependencies are only warnings, with exit 0).
	verify := exec.Command("systemd-analyze", "verify", "/usr/lib/systemd/system/"+unitName)
	out, err := verify.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitName, err, out)
	}

	// The completions load from where bash-completion looks; man finds
	// the page.
	got := run(t, "bash", "--norc", "--noprofile", "-c",
		"source /usr/share/bash-completion/completions/graphprobe && complete -p graphprobe")
	if strings.TrimSpace(got) != "complete -F _graphprobe graphprobe" {
		t.Errorf("installed bash completion registers %q", got)
	}
	if got := strings.TrimSpace(run(t, "man", "-w", "graphprobe")); got != "/usr/share/man/man1/graphprobe.1.gz" {
		t.Errorf("man -w graphprobe: %q", got)
	}

	// Remove: everything but the conffile goes; the unit is no longer
	// enabled in effect.
	dpkg(t, "-r", "graphprobe")
	if st := dpkgStatus(); st != "deinstall ok config-files" {
		t.Errorf("after dpkg -r: status %q", st)
	}
	for path := range installedFiles {
		_, err := os.Lstat(path)
		switch {
		case path == "/etc/default/graphprobe" && err != nil:
			t.Errorf("dpkg -r removed the conffile %s: %v", path, err)
		case path != "/etc/default/graphprobe" && err == nil:
			t.Errorf("dpkg -r left %s", path)
		}
	}
	if _, err := filepath.EvalSymlinks(wantsLink); err == nil {
		t.Errorf("after dpkg -r, %s still leads to a unit", wantsLink)
	}

	// Purge: nothing is left.
	dpkg(t, "-P", "graphprobe")
	if st := dpkgStatus(); st != "" && !strings.HasSuffix(st, "not-installed") {
		t.Errorf("after dpkg -P: status %q", st)
	}
	if after := footprint(t); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("after dpkg -P, left behind or missing:\nbefore:\n  %s\nafter:\n  %s",
			strings.Join(before, "\n  "), strings.Join(after, "\n  "))
	}
}

func stat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// mustNotInstall skips, or fails under GRAPHPROBE_REQUIRE_ROOT=1: the
// machine is not one the test may install on.
func mustNotInstall(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(testutil.RequireRootEnv) == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
