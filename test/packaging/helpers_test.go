package packaging

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

const repoRoot = "../.."

// root is the repository's absolute path.
func root(t testing.TB) string {
	t.Helper()
	abs, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// built is one run of scripts/package-deb.sh.
type built struct {
	deb string // path of the .deb
	log string // the script's stderr
}

// buildPackage runs scripts/package-deb.sh into outDir with extra
// environment and returns the .deb it printed.
func buildPackage(t testing.TB, outDir string, env ...string) built {
	t.Helper()
	testutil.RequiresTool(t, "go", "git", "gzip", "sed")
	cmd := exec.Command("./scripts/package-deb.sh", outDir)
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/package-deb.sh: %v\n%s", err, stderr.String())
	}
	deb := strings.TrimSpace(stdout.String())
	if !filepath.IsAbs(deb) {
		deb = filepath.Join(root(t), deb)
	}
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("scripts/package-deb.sh printed %q: %v", deb, err)
	}
	return built{deb: deb, log: stderr.String()}
}

var (
	sharedOnce sync.Once
	sharedDir  string
	sharedPkg  built
	sharedErr  string
)

// sharedPackage is one package build that every test of this run uses;
// TestMain removes it.
func sharedPackage(t testing.TB) built {
	t.Helper()
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "graphprobe-package-test-")
		if err != nil {
			sharedErr = err.Error()
			return
		}
		sharedDir = dir
		rec := &recorder{TB: t}
		func() {
			defer func() {
				if r := recover(); r != nil && r != errStop {
					panic(r)
				}
			}()
			sharedPkg = buildPackage(rec, dir)
		}()
		if rec.failed {
			sharedErr = rec.msg
		}
		if rec.skipped {
			sharedErr = "skip: " + rec.msg
		}
	})
	switch {
	case strings.HasPrefix(sharedErr, "skip: "):
		t.Skip(strings.TrimPrefix(sharedErr, "skip: "))
	case sharedErr != "":
		t.Fatalf("building the package: %s", sharedErr)
	}
	return sharedPkg
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	if cliDir != "" {
		os.RemoveAll(cliDir)
	}
	os.Exit(code)
}

// recorder runs a helper once for several tests: it keeps the first
// test's failure or skip so that every later test reports it too.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

var errStop = fmt.Errorf("stop")

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	panic(errStop)
}
func (r *recorder) Fatal(args ...any) {
	r.failed, r.msg = true, fmt.Sprint(args...)
	panic(errStop)
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	panic(errStop)
}
func (r *recorder) Skip(args ...any) {
	r.skipped, r.msg = true, fmt.Sprint(args...)
	panic(errStop)
}

var (
	cliOnce sync.Once
	cliDir  string
	cliPath string
	cliErr  error
)

// cli builds graphprobe from the work tree, once, for its --help texts.
func cli(t testing.TB) string {
	t.Helper()
	testutil.RequiresTool(t, "go")
	cliOnce.Do(func() {
		if cliDir, cliErr = os.MkdirTemp("", "graphprobe-cli-"); cliErr != nil {
			return
		}
		cliPath = filepath.Join(cliDir, "graphprobe")
		cmd := exec.Command("go", "build", "-o", cliPath, "./cmd/graphprobe")
		cmd.Dir = root(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// run runs a command and returns its stdout; it fails the test on a
// non-zero exit.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// commands lists the commands `graphprobe --help` names.
func commands(t testing.TB) []string {
	t.Helper()
	out := run(t, cli(t), "--help")
	var names []string
	in := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "Commands:":
			in = true
		case in && strings.HasPrefix(line, "  "):
			names = append(names, strings.Fields(line)[0])
		case in:
			in = false
		}
	}
	if len(names) < 7 {
		t.Fatalf("graphprobe --help lists %d commands:\n%s", len(names), out)
	}
	return names
}

var (
	flagRE      = regexp.MustCompile(`(?m)^\s+(--[a-z][a-z0-9-]*)`)
	usageLineRE = regexp.MustCompile(`(?m)^Usage: .*$`)
	anyFlagRE   = regexp.MustCompile(`(--[a-z][a-z0-9-]*)`)
)

// helpFlags lists the flags a command's --help documents: those of its
// Usage line and those that start a line of its flag lists.
func helpFlags(t testing.TB, command string) []string {
	t.Helper()
	out := run(t, cli(t), "help", command)
	seen := map[string]bool{}
	var flags []string
	matches := flagRE.FindAllStringSubmatch(out, -1)
	matches = append(matches, anyFlagRE.FindAllStringSubmatch(usageLineRE.FindString(out), -1)...)
	for _, m := range matches {
		if !seen[m[1]] {
			seen[m[1]] = true
			flags = append(flags, m[1])
		}
	}
	sort.Strings(flags)
	return flags
}

// debMember is one file of a .deb's control or data archive.
type debMember struct {
	hdr  *tar.Header
	data []byte
}

// readDeb splits a .deb (an ar archive) and returns its members and the
// entries of control.tar.gz and data.tar.gz.
func readDeb(t testing.TB, path string) (members []string, control, data map[string]debMember, order []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("!<arch>\n")) {
		t.Fatalf("%s: not an ar archive", path)
	}
	rest := raw[8:]
	parts := map[string][]byte{}
	for len(rest) >= 60 {
		hdr := rest[:60]
		name := strings.TrimSuffix(strings.TrimSpace(string(hdr[0:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(hdr[48:58])))
		if err != nil || 60+size > len(rest) {
			t.Fatalf("%s: bad ar member header %q", path, hdr)
		}
		members = append(members, name)
		parts[name] = rest[60 : 60+size]
		rest = rest[60+size:]
		if size%2 == 1 && len(rest) > 0 {
			rest = rest[1:]
		}
	}
	control, _ = readTarGz(t, parts["control.tar.gz"])
	data, order = readTarGz(t, parts["data.tar.gz"])
	return members, control, data, order
}

func readTarGz(t testing.TB, b []byte) (map[string]debMember, []string) {
	t.Helper()
	if b == nil {
		t.Fatal("the .deb lacks a member (want control.tar.gz and data.tar.gz)")
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]debMember{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, ".")
		name = strings.TrimSuffix(name, "/")
		if name == "" {
			name = "/"
		}
		out[name] = debMember{hdr: h, data: content}
		order = append(order, name)
	}
	return out, order
}

// controlField reads one field of a control file.
func controlField(control, field string) string {
	for _, line := range strings.Split(control, "\n") {
		if v, ok := strings.CutPrefix(line, field+": "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// installedFiles are the files the package installs, with their modes.
var installedFiles = map[string]os.FileMode{
	"/usr/bin/graphprobe":                               0o755,
	"/usr/share/man/man1/graphprobe.1.gz":               0o644,
	"/usr/share/bash-completion/completions/graphprobe": 0o644,
	"/usr/share/zsh/vendor-completions/_graphprobe":     0o644,
	"/usr/lib/systemd/system/graphprobe-select.service": 0o644,
	"/etc/default/graphprobe":                           0o644,
}

const unitName = "graphprobe-select.service"

// setUmask sets the process umask and returns the previous one.
func setUmask(mask int) int { return syscall.Umask(mask) }
