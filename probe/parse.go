package probe

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode/utf8"
)

// maxLine bounds one line of any host file we parse; longer lines are an
// error, not an allocation.
const maxLine = 64 << 10

func newScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	return sc
}

// checkText rejects binary junk early so that a garbage fixture file gives a
// clear reason rather than a half-parsed answer.
func checkText(name string, line []byte, n int) error {
	if bytes.IndexByte(line, 0) >= 0 || !utf8.Valid(line) {
		return fmt.Errorf("parse %s: line %d: not text", name, n)
	}
	return nil
}

// eachLine calls fn with every non-blank line of r (trimmed, numbered from
// 1), after refusing binary junk; with skipComments, "#" lines are skipped
// too. name is the file's name in errors.
func eachLine(r io.Reader, name string, skipComments bool, fn func(n int, line string) error) error {
	sc := newScanner(r)
	n := 0
	for sc.Scan() {
		n++
		b := sc.Bytes()
		if err := checkText(name, b, n); err != nil {
			return err
		}
		line := strings.TrimSpace(string(b))
		if line == "" || (skipComments && strings.HasPrefix(line, "#")) {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("parse %s: %w", name, err)
	}
	return nil
}

// Filesystems is /proc/filesystems: the filesystem types the running kernel
// has registered (built in, or from a loaded module).
type Filesystems map[string]bool

// ParseFilesystems reads /proc/filesystems ("nodev\tsysfs" or "\text4").
func ParseFilesystems(r io.Reader) (Filesystems, error) {
	fs := Filesystems{}
	err := eachLine(r, "filesystems", false, func(n int, line string) error {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 1:
			fs[fields[0]] = true
		case len(fields) == 2 && fields[0] == "nodev":
			fs[fields[1]] = true
		default:
			return fmt.Errorf("parse filesystems: line %d: want [nodev] NAME, got %q", n, truncate(line, 64))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fs, nil
}

// ParseProcModules reads /proc/modules and returns the loaded module names.
// Module names are normalised: the kernel treats '-' and '_' alike.
func ParseProcModules(r io.Reader) (map[string]bool, error) {
	mods := map[string]bool{}
	err := eachLine(r, "modules", false, func(n int, line string) error {
		// name size refcount deps state address
		fields := strings.Fields(line)
		if len(fields) < 3 {
			return fmt.Errorf("parse modules: line %d: want NAME SIZE REFS ..., got %q", n, truncate(line, 64))
		}
		mods[normModule(fields[0])] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mods, nil
}

// ParseModulesDep reads lib/modules/R/modules.dep ("kernel/fs/overlayfs/overlay.ko.zst: deps")
// and returns the module names it lists, mapped to their file path.
func ParseModulesDep(r io.Reader) (map[string]string, error) {
	mods := map[string]string{}
	err := eachLine(r, "modules.dep", true, func(n int, line string) error {
		file, _, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("parse modules.dep: line %d: want PATH: DEPS, got %q", n, truncate(line, 64))
		}
		name, ok := moduleName(file)
		if !ok {
			return fmt.Errorf("parse modules.dep: line %d: %q is not a module file", n, truncate(file, 64))
		}
		mods[name] = file
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mods, nil
}

// ParseModulesBuiltin reads lib/modules/R/modules.builtin (one
// "kernel/fs/overlayfs/overlay.ko" per line).
func ParseModulesBuiltin(r io.Reader) (map[string]bool, error) {
	mods := map[string]bool{}
	err := eachLine(r, "modules.builtin", true, func(n int, line string) error {
		name, ok := moduleName(line)
		if !ok {
			return fmt.Errorf("parse modules.builtin: line %d: %q is not a module file", n, truncate(line, 64))
		}
		mods[name] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mods, nil
}

// moduleName maps "kernel/fs/aufs/aufs.ko.xz" to "aufs".
func moduleName(file string) (string, bool) {
	base := path.Base(strings.TrimSpace(file))
	for _, ext := range []string{".ko.zst", ".ko.xz", ".ko.gz", ".ko"} {
		if strings.HasSuffix(base, ext) && len(base) > len(ext) {
			return normModule(strings.TrimSuffix(base, ext)), true
		}
	}
	return "", false
}

func normModule(name string) string { return strings.ReplaceAll(name, "-", "_") }

// KernelConfig holds CONFIG_* values: "y", "m", a string or number, or "n"
// for "# CONFIG_X is not set".
type KernelConfig map[string]string

// ParseKernelConfig reads a kernel .config, plain or gzip-compressed (as
// /proc/config.gz is).
func ParseKernelConfig(r io.Reader) (KernelConfig, error) {
	br := bufio.NewReader(r)
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("parse kernel config: %w", err)
		}
		defer zr.Close()
		// Decompress first, so that a truncated file is reported as
		// such rather than as a half line. A kernel config is a few
		// hundred KiB; anything far larger is junk.
		data, err := io.ReadAll(io.LimitReader(zr, 16<<20))
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, errors.New("parse kernel config: gzip stream truncated")
			}
			return nil, fmt.Errorf("parse kernel config: %w", err)
		}
		return parseKernelConfig(bytes.NewReader(data))
	}
	return parseKernelConfig(br)
}

func parseKernelConfig(r io.Reader) (KernelConfig, error) {
	cfg := KernelConfig{}
	err := eachLine(r, "kernel config", false, func(n int, line string) error {
		switch {
		case strings.HasPrefix(line, "# CONFIG_") && strings.HasSuffix(line, " is not set"):
			cfg[strings.TrimSuffix(strings.TrimPrefix(line, "# "), " is not set")] = "n"
		case strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "CONFIG_") && strings.Contains(line, "="):
			name, val, _ := strings.Cut(line, "=")
			cfg[name] = strings.Trim(val, `"`)
		default:
			return fmt.Errorf("parse kernel config: line %d: want CONFIG_NAME=VALUE, got %q", n, truncate(line, 64))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(cfg) == 0 {
		return nil, errors.New("parse kernel config: no CONFIG_ lines")
	}
	return cfg, nil
}

// Tristate gives y, m or n for a bool/tristate option, and "unknown" when the
// config does not mention it (it may predate the option).
func (c KernelConfig) Tristate(name string) string {
	if c == nil {
		return "unknown"
	}
	switch v, ok := c[name]; {
	case !ok:
		return "unknown"
	case v == "y" || v == "m" || v == "n":
		return v
	default:
		return "unknown"
	}
}

// OSRelease is /etc/os-release.
type OSRelease struct {
	ID         string `json:"id"`
	VersionID  string `json:"versionId"`
	PrettyName string `json:"prettyName,omitempty"`
	IDLike     string `json:"idLike,omitempty"`
}

// ParseOSRelease reads os-release(5): KEY=value lines, values optionally
// quoted with shell quoting.
func ParseOSRelease(r io.Reader) (OSRelease, error) {
	var os OSRelease
	err := eachLine(r, "os-release", true, func(n int, line string) error {
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("parse os-release: line %d: want KEY=VALUE, got %q", n, truncate(line, 64))
		}
		val = unquoteOSRelease(val)
		switch key {
		case "ID":
			os.ID = val
		case "VERSION_ID":
			os.VersionID = val
		case "PRETTY_NAME":
			os.PrettyName = val
		case "ID_LIKE":
			os.IDLike = val
		}
		return nil
	})
	if err != nil {
		return OSRelease{}, err
	}
	return os, nil
}

func unquoteOSRelease(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
		if strings.ContainsRune(v, '\\') {
			var b strings.Builder
			for i := 0; i < len(v); i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				b.WriteByte(v[i])
			}
			v = b.String()
		}
	}
	return v
}
