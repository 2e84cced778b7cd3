package packaging

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// commitDate is what SOURCE_DATE_EPOCH defaults to: HEAD's commit date.
func commitDate(t *testing.T) time.Time {
	t.Helper()
	out := strings.TrimSpace(run(t, "git", "-C", root(t), "log", "-1", "--format=%ct", "HEAD"))
	sec, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		t.Fatalf("git log: %q", out)
	}
	return time.Unix(sec, 0)
}

// TestPackageContents opens the .deb and checks every entry: the files and
// only those, root-owned, with their modes, every timestamp the commit's
// date, a static binary that reports the package's version, a man page
// gzipped without name or date, and the conffile and maintainer scripts.
func TestPackageContents(t *testing.T) {
	pkg := sharedPackage(t)
	members, control, data, _ := readDeb(t, pkg.deb)
	if strings.Join(members, " ") != "debian-binary control.tar.gz data.tar.gz" {
		t.Errorf("ar members %v, want debian-binary control.tar.gz data.tar.gz", members)
	}
	epoch := commitDate(t)

	var files []string
	for name, m := range data {
		h := m.hdr
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "root" || h.Gname != "root" {
			t.Errorf("%s: owner %d/%d %s/%s, want root", name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %s, want the commit date %s", name, h.ModTime.UTC(), epoch.UTC())
		}
		if h.Typeflag == '5' {
			if perm := os.FileMode(h.Mode).Perm(); perm != 0o755 {
				t.Errorf("directory %s: mode %o, want 755", name, perm)
			}
			continue
		}
		files = append(files, name)
		want, ok := installedFiles[name]
		if !ok {
			t.Errorf("unexpected file %s in the package", name)
			continue
		}
		if perm := os.FileMode(h.Mode).Perm(); perm != want {
			t.Errorf("%s: mode %o, want %o", name, perm, want)
		}
	}
	sort.Strings(files)
	if len(files) != len(installedFiles) {
		t.Errorf("package files %v, want the %d of installedFiles", files, len(installedFiles))
	}

	// The binary: static (no ELF interpreter) and reporting the package's
	// version and the commit.
	ctl := string(control["/control"].data)
	version := controlField(ctl, "Version")
	if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`).MatchString(version) {
		t.Errorf("package version %q is not a Debian upstream version", version)
	}
	if controlField(ctl, "Package") != "graphprobe" {
		t.Errorf("control: Package %q", controlField(ctl, "Package"))
	}
	bin := data["/usr/bin/graphprobe"].data
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("/usr/bin/graphprobe: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("/usr/bin/graphprobe has an ELF interpreter: not a static binary (CGO_ENABLED=0)")
		}
	}
	if f.Section(".debug_info") != nil || f.Section(".symtab") != nil {
		t.Error("/usr/bin/graphprobe has debug or symbol sections: not built with -s -w")
	}
	exe := filepath.Join(t.TempDir(), "graphprobe")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	var info struct{ Version, Commit string }
	if err := json.Unmarshal([]byte(run(t, exe, "version", "--format", "json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Version != version {
		t.Errorf("packaged graphprobe reports version %q, the package is %q", info.Version, version)
	}
	head := strings.TrimSpace(run(t, "git", "-C", root(t), "rev-parse", "--short=12", "HEAD"))
	if info.Commit != head {
		t.Errorf("packaged graphprobe reports commit %q, HEAD is %q", info.Commit, head)
	}
	if !strings.Contains(string(bin), "-trimpath=true") {
		t.Error("the binary's build settings lack -trimpath=true")
	}
	if bytes.Contains(bin, []byte(root(t))) {
		t.Errorf("the binary contains the build directory %s", root(t))
	}

	// The man page: gzip without name and time (gzip -n), with the
	// package's version and the commit's date filled in.
	zr, err := gzip.NewReader(bytes.NewReader(data["/usr/share/man/man1/graphprobe.1.gz"].data))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("man page gzip header has name %q, time %s; want neither (gzip -n)", zr.Name, zr.ModTime)
	}
	page, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	th := regexp.MustCompile(`(?m)^\.TH GRAPHPROBE 1 "([^"]*)" "graphprobe ([^"]*)"`).FindSubmatch(page)
	if th == nil {
		t.Fatal("man page has no .TH line with date and version")
	}
	if string(th[1]) != epoch.UTC().Format("2006-01-02") || string(th[2]) != version {
		t.Errorf(".TH says %s, graphprobe %s; want %s, graphprobe %s", th[1], th[2], epoch.UTC().Format("2006-01-02"), version)
	}
	if bytes.Contains(page, []byte("@VERSION@")) || bytes.Contains(page, []byte("@DATE@")) {
		t.Error("man page has unfilled @VERSION@ or @DATE@")
	}

	// Control archive: the conffile, and the maintainer scripts from
	// packaging/deb, executable.
	if got := strings.TrimSpace(string(control["/conffiles"].data)); got != "/etc/default/graphprobe" {
		t.Errorf("conffiles %q, want /etc/default/graphprobe", got)
	}
	for _, s := range []string{"postinst", "postrm"} {
		m, ok := control["/"+s]
		if !ok {
			t.Errorf("control archive lacks %s", s)
			continue
		}
		src, err := os.ReadFile(filepath.Join(repoRoot, "packaging/deb", s))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.data, src) {
			t.Errorf("%s differs from packaging/deb/%s", s, s)
		}
		if os.FileMode(m.hdr.Mode).Perm()&0o111 == 0 {
			t.Errorf("%s is not executable", s)
		}
	}
	for _, name := range []string{"bash-completion/completions/graphprobe", "zsh/vendor-completions/_graphprobe"} {
		src := map[string]string{
			"bash-completion/completions/graphprobe": "packaging/completions/graphprobe.bash",
			"zsh/vendor-completions/_graphprobe":     "packaging/completions/_graphprobe",
		}[name]
		want, err := os.ReadFile(filepath.Join(repoRoot, src))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data["/usr/share/"+name].data, want) {
			t.Errorf("/usr/share/%s differs from %s", name, src)
		}
	}
}

// TestPackageIsReproducible builds the package a second time under another
// time zone, umask, temporary directory and output directory, at a later
// second, and wants the same bytes.
func TestPackageIsReproducible(t *testing.T) {
	first := sharedPackage(t)
	// At least one second later than the first build.
	time.Sleep(time.Until(fileTime(t, first.deb).Add(1100 * time.Millisecond)))
	tmp := t.TempDir()
	old := setUmask(0o027)
	second := buildPackage(t, filepath.Join(tmp, "out"), "TZ=Pacific/Kiritimati", "TMPDIR="+tmp, "LC_ALL=C.UTF-8")
	setUmask(old)

	if filepath.Base(first.deb) != filepath.Base(second.deb) {
		t.Fatalf("file names differ: %s and %s", filepath.Base(first.deb), filepath.Base(second.deb))
	}
	a, err := os.ReadFile(first.deb)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(second.deb)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		return
	}
	// Say which entries differ.
	_, ca, da, _ := readDeb(t, first.deb)
	_, cb, db, _ := readDeb(t, second.deb)
	for _, pair := range []struct {
		what string
		x, y map[string]debMember
	}{{"control", ca, cb}, {"data", da, db}} {
		for name, x := range pair.x {
			y, ok := pair.y[name]
			switch {
			case !ok:
				t.Errorf("%s %s: only in the first build", pair.what, name)
			case !bytes.Equal(x.data, y.data):
				t.Errorf("%s %s: contents differ", pair.what, name)
			case x.hdr.ModTime != y.hdr.ModTime || x.hdr.Mode != y.hdr.Mode:
				t.Errorf("%s %s: header differs (%s %o, %s %o)", pair.what, name, x.hdr.ModTime, x.hdr.Mode, y.hdr.ModTime, y.hdr.Mode)
			}
		}
	}
	t.Fatalf("two builds of the same tree differ: %s and %s", first.deb, second.deb)
}

func fileTime(t *testing.T, path string) time.Time {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.ModTime()
}

// TestPackageVersionFromGit checks the version scheme on a scratch
// repository: tag, commits after it, pre-release tag, no tag, and
// uncommitted changes.
func TestPackageVersionFromGit(t *testing.T) {
	testutil.RequiresTool(t, "git", "sed", "gzip", "date")
	// The script's version logic alone, run in a scratch repository with a
	// stand-in go and nfpm: only the version it reports matters here.
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
			"GIT_AUTHOR_DATE=2024-03-01T12:00:00Z", "GIT_COMMITTER_DATE=2024-03-01T12:00:00Z")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	for _, p := range []string{"scripts/package-deb.sh", "packaging/tools.env", "packaging/man/graphprobe.1.in"} {
		src, err := os.ReadFile(filepath.Join(repoRoot, p))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(repo, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, p), src, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A go that builds nothing and "runs nfpm" by touching the target.
	fake := filepath.Join(t.TempDir(), "go")
	script := `#!/bin/sh
case $1 in
env) echo amd64 ;;
build) while [ $# -gt 0 ]; do [ "$1" = -o ] && : >"$2"; shift; done ;;
run) while [ $# -gt 0 ]; do [ "$1" = --target ] && : >"$2"; shift; done ;;
esac
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "one")
	version := func() string {
		t.Helper()
		cmd := exec.Command("./scripts/package-deb.sh", filepath.Join(repo, "dist"))
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GO="+fake, "PACKAGE_VERSION=", "SOURCE_DATE_EPOCH=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("package-deb.sh: %v", err)
		}
		m := regexp.MustCompile(`graphprobe_(.*)_amd64\.deb$`).FindStringSubmatch(strings.TrimSpace(string(out)))
		if m == nil {
			t.Fatalf("package-deb.sh printed %q", out)
		}
		return m[1]
	}
	head := func() string {
		cmd := exec.Command("git", "rev-parse", "--short=12", "HEAD")
		cmd.Dir = repo
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	// dist/ is where the output goes: keep it out of "dirty".
	if err := os.WriteFile(filepath.Join(repo, ".git/info/exclude"), []byte("/dist/\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if got, want := version(), "0.0.0~git20240301120000."+head(); got != want {
		t.Errorf("no tag: version %q, want %q", got, want)
	}
	git("tag", "v1.2.0")
	if got := version(); got != "1.2.0" {
		t.Errorf("at tag v1.2.0: version %q, want 1.2.0", got)
	}
	git("commit", "-q", "--allow-empty", "-m", "two")
	if got, want := version(), "1.2.0+git1."+head(); got != want {
		t.Errorf("one commit after v1.2.0: version %q, want %q", got, want)
	}
	git("tag", "v1.3.0-rc.1")
	if got := version(); got != "1.3.0~rc.1" {
		t.Errorf("at tag v1.3.0-rc.1: version %q, want 1.3.0~rc.1", got)
	}
	if err := os.WriteFile(filepath.Join(repo, "new-file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := version(); got != "1.3.0~rc.1+dirty" {
		t.Errorf("with an uncommitted file: version %q, want 1.3.0~rc.1+dirty", got)
	}
	// Ordering as dpkg sees it: rc < release < release+git < next.
	if _, err := exec.LookPath("dpkg"); err == nil {
		for _, pair := range [][2]string{
			{"0.0.0~git20240301120000.abc", "1.2.0"},
			{"1.3.0~rc.1", "1.3.0"},
			{"1.2.0", "1.2.0+git1.abc"},
			{"1.2.0+git1.abc", "1.2.1"},
		} {
			if err := exec.Command("dpkg", "--compare-versions", pair[0], "lt", pair[1]).Run(); err != nil {
				t.Errorf("dpkg: %s is not older than %s", pair[0], pair[1])
			}
		}
	}
}
