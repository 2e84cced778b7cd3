package debapt

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Mirror is the Debian archive every package comes from.
const Mirror = "http://deb.debian.org/debian"

// Keyring verifies the archive's signatures.
const Keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// listsTTL is how long fetched package lists are used before a refresh:
// long enough that a test run never waits on the archive twice, short
// enough that sid's replaced versions are found again the next day.
const listsTTL = 24 * time.Hour

// State is a private apt configuration in Dir for the given suites.
type State struct {
	Dir    string
	Suites []string
	// Log receives each command and its output; nil discards them.
	Log io.Writer
}

func (s State) options() []string {
	return []string{
		"-o", "Dir::Etc::sourcelist=" + filepath.Join(s.Dir, "sources.list"),
		"-o", "Dir::Etc::sourceparts=-",
		"-o", "Dir::Etc::preferencesparts=-",
		"-o", "Dir::State::Lists=" + filepath.Join(s.Dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(s.Dir, "cache"),
		"-o", "Dir::State::status=/dev/null",
		"-o", "APT::Architecture=amd64",
		"-o", "APT::Architectures=amd64",
		"-o", "APT::Get::List-Cleanup=0",
		"-o", "Acquire::Languages=none",
		// The desktop metadata indexes are megabytes nobody here reads.
		"-o", "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::CNF::DefaultEnabled=false",
		// The private dirs belong to root, so the _apt sandbox user could
		// not write them.
		"-o", "APT::Sandbox::User=root",
		// Callers serialise their fills (a flock on their cache); apt's
		// own locks would point at the system's state.
		"-o", "Debug::NoLocking=1",
		"-q",
	}
}

// Prepare writes the sources list and fetches the package lists unless a
// fetch younger than a day is there (or refresh asks for one anyway).
func (s State) Prepare(ctx context.Context, refresh bool) error {
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return fmt.Errorf("prepare apt state: %w", err)
		}
	}
	if _, err := os.Stat(Keyring); err != nil {
		return fmt.Errorf("prepare apt state: %w (install debian-archive-keyring)", err)
	}
	var list strings.Builder
	for _, suite := range s.Suites {
		fmt.Fprintf(&list, "deb [arch=amd64 signed-by=%s] %s %s main\n", Keyring, Mirror, suite)
	}
	sources := filepath.Join(s.Dir, "sources.list")
	old, _ := os.ReadFile(sources)
	if string(old) != list.String() {
		if err := os.WriteFile(sources, []byte(list.String()), 0o644); err != nil {
			return fmt.Errorf("prepare apt state: %w", err)
		}
		refresh = true
	}
	stamp := filepath.Join(s.Dir, "updated")
	if st, err := os.Stat(stamp); err == nil && time.Since(st.ModTime()) < listsTTL && !refresh {
		return nil
	}
	if _, err := s.run(ctx, "", "apt-get", "update"); err != nil {
		return fmt.Errorf("update private package lists: %w", err)
	}
	return os.WriteFile(stamp, nil, 0o644)
}

// Query runs apt-cache (show, madison, ...) on the prepared lists and
// returns its output.
func (s State) Query(ctx context.Context, args ...string) ([]byte, error) {
	return s.run(ctx, "", "apt-cache", args...)
}

// Download fetches pkgs (name, name/suite or name=version) into dir. When
// it fails, the lists are fetched again and it is tried once more: a suite
// such as sid replaces its versions often.
func (s State) Download(ctx context.Context, dir string, pkgs ...string) error {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("download %s: no apt-get on this system: %w", strings.Join(pkgs, " "), err)
	}
	if err := s.Prepare(ctx, false); err != nil {
		return err
	}
	get := func() error {
		_, err := s.run(ctx, dir, "apt-get", append([]string{"download"}, pkgs...)...)
		return err
	}
	if err := get(); err != nil {
		s.logf("apt-get download failed (%v): fetching the package lists again\n", err)
		if uerr := s.Prepare(ctx, true); uerr != nil {
			return fmt.Errorf("download packages: %w (%v)", err, uerr)
		}
		if err := get(); err != nil {
			return fmt.Errorf("download packages: %w", err)
		}
	}
	return nil
}

func (s State) logf(format string, args ...any) {
	if s.Log != nil {
		fmt.Fprintf(s.Log, format, args...)
	}
}

// run runs tool with the private options in dir, under a ten-minute bound
// (a stalled mirror must not hang a test run until its global timeout).
func (s State) run(ctx context.Context, dir, tool string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	full := append(s.options(), args...)
	cmd := exec.CommandContext(ctx, tool, full...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	s.logf("+ %s %s\n", tool, strings.Join(args, " "))
	err := cmd.Run()
	if s.Log != nil {
		if tool != "apt-cache" {
			s.Log.Write(stdout.Bytes())
		}
		s.Log.Write(stderr.Bytes())
	}
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, tail(stderr.String()+stdout.String(), 600))
	}
	return stdout.Bytes(), nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
