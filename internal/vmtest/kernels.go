package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/graphprobe/graphprobe/internal/debapt"
)

// CacheEnv overrides the cache directory.
const CacheEnv = "GRAPHPROBE_VM_CACHE"

// RefreshEnv set to 1 re-resolves the kernel packages against the archive
// (otherwise the versions picked on the first fill are kept, so that a test
// run does not change under a new upload).
const RefreshEnv = "GRAPHPROBE_VM_REFRESH"

// CacheDir is where kernels, initramfs bases and disk images are kept.
func CacheDir() (string, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the cache dir: %w (set %s)", err, CacheEnv)
	}
	return filepath.Join(base, "graphprobe", "vm"), nil
}

// Kernel is an unpacked kernel: its image, modules and config.
type Kernel struct {
	Name    string `json:"name"`    // a label: the Debian suite, or the file name
	Release string `json:"release"` // uname -r
	Vmlinuz string `json:"vmlinuz"`
	// Modules is the lib/modules/<release> dir; "" for a kernel with
	// everything built in.
	Modules string `json:"modules"`
	// Config is the kernel's config file ("" when unknown).
	Config string `json:"config"`
}

// resolved records what a suite's kernel was resolved to on the first fill.
type resolved struct {
	Suite    string    `json:"suite"`
	Version  string    `json:"version"`
	Packages []string  `json:"packages"`
	Resolved time.Time `json:"resolved"`
	Kernel   Kernel    `json:"kernel"`
}

// fetchMu serialises cache fills within one test binary.
var fetchMu sync.Mutex

// DebianKernels returns the current linux-image-amd64 kernel of each suite
// (bullseye, bookworm, trixie, sid, ...), downloading and unpacking it into
// the cache on first use.
func DebianKernels(ctx context.Context, suites ...string) ([]Kernel, error) {
	fetchMu.Lock()
	defer fetchMu.Unlock()
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	out := make([]Kernel, 0, len(suites))
	var missing []string
	for _, s := range suites {
		r, err := readResolved(cache, s)
		if err != nil || os.Getenv(RefreshEnv) == "1" {
			missing = append(missing, s)
			continue
		}
		out = append(out, r.Kernel)
	}
	if len(missing) == 0 {
		return out, nil
	}
	a := debapt.State{Dir: filepath.Join(cache, "apt"), Suites: suites}
	// Fetched afresh: the kernels are resolved only when missing, and
	// then against the archive as it is now.
	if err := a.Prepare(ctx, true); err != nil {
		return nil, err
	}
	madison, err := a.Query(ctx, "madison", "linux-image-amd64")
	if err != nil {
		return nil, err
	}
	versions := parseMadison(madison)
	for _, s := range missing {
		v, ok := versions[s]
		if !ok {
			return nil, fmt.Errorf("find linux-image-amd64 in %s: not in the archive's index", s)
		}
		r, err := fetchKernel(ctx, a, cache, s, v)
		if err != nil {
			return nil, err
		}
		out = append(out, r.Kernel)
	}
	// Keep the suites' order.
	byName := map[string]Kernel{}
	for _, k := range out {
		byName[k.Name] = k
	}
	out = out[:0]
	for _, s := range suites {
		out = append(out, byName[s])
	}
	return out, nil
}

func readResolved(cache, suite string) (*resolved, error) {
	data, err := os.ReadFile(filepath.Join(cache, "kernels", suite+".json"))
	if err != nil {
		return nil, err
	}
	var r resolved
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if _, err := os.Stat(r.Kernel.Vmlinuz); err != nil {
		return nil, err
	}
	return &r, nil
}

// parseMadison maps a suite to the linux-image-amd64 version it carries.
func parseMadison(out []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) < 3 {
			continue
		}
		ver := strings.TrimSpace(f[1])
		src := strings.Fields(f[2])
		if len(src) < 2 {
			continue
		}
		suite, _, _ := strings.Cut(src[1], "/")
		if _, ok := m[suite]; !ok {
			m[suite] = ver
		}
	}
	return m
}

var depName = regexp.MustCompile(`^(linux-[a-z]+-[0-9][^ ]*)`)

// depends lists the linux-* packages a package depends on.
func depends(show []byte) []string {
	var deps []string
	sc := bufio.NewScanner(bytes.NewReader(show))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break // the first stanza only
		}
		if !strings.HasPrefix(line, "Depends:") {
			continue
		}
		for _, alt := range strings.Split(strings.TrimPrefix(line, "Depends:"), ",") {
			if m := depName.FindStringSubmatch(strings.TrimSpace(alt)); m != nil {
				deps = append(deps, m[1])
			}
		}
	}
	return deps
}

// fetchKernel downloads the kernel image package that the metapackage
// version points to, and the linux-{base,binary,modules} packages newer
// kernels split it into, then unpacks them.
func fetchKernel(ctx context.Context, a debapt.State, cache, suite, version string) (*resolved, error) {
	show, err := a.Query(ctx, "show", "linux-image-amd64="+version)
	if err != nil {
		return nil, err
	}
	var image string
	for _, d := range depends(show) {
		if strings.HasPrefix(d, "linux-image-") {
			image = d
		}
	}
	if image == "" {
		return nil, fmt.Errorf("find the kernel image of linux-image-amd64 %s (%s): no linux-image-* dependency", version, suite)
	}
	abi := strings.TrimPrefix(image, "linux-image-")
	pkgs := []string{image}
	show, err = a.Query(ctx, "show", image)
	if err != nil {
		return nil, err
	}
	for _, d := range depends(show) {
		if strings.HasSuffix(d, "-"+abi) && d != image {
			pkgs = append(pkgs, d)
		}
	}
	debs := filepath.Join(cache, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return nil, err
	}
	if err := a.Download(ctx, debs, pkgs...); err != nil {
		return nil, err
	}
	root := filepath.Join(cache, "kernels", abi)
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	for _, p := range pkgs {
		matches, _ := filepath.Glob(filepath.Join(debs, p+"_*.deb"))
		if len(matches) == 0 {
			return nil, fmt.Errorf("find the downloaded %s in %s: missing after apt-get download", p, debs)
		}
		if out, err := exec.CommandContext(ctx, "dpkg", "-x", matches[len(matches)-1], tmp).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("unpack %s: %w: %s", matches[len(matches)-1], err, out)
		}
	}
	os.RemoveAll(root)
	if err := os.Rename(tmp, root); err != nil {
		return nil, err
	}
	k, err := UnpackedKernel(suite, root)
	if err != nil {
		return nil, err
	}
	r := &resolved{Suite: suite, Version: version, Packages: pkgs, Resolved: time.Now().UTC(), Kernel: k}
	data, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(filepath.Join(cache, "kernels", suite+".json"), data, 0o644); err != nil {
		return nil, err
	}
	return r, nil
}

// UnpackedKernel finds the kernel image, modules and config in a tree made
// by dpkg -x of a Debian kernel package (or laid out the same way):
// boot/vmlinuz-<release> or lib/modules/<release>/vmlinuz, with
// lib/modules under / or /usr.
func UnpackedKernel(name, root string) (Kernel, error) {
	k := Kernel{Name: name}
	for _, mods := range []string{"lib/modules", "usr/lib/modules"} {
		entries, _ := os.ReadDir(filepath.Join(root, mods))
		for _, e := range entries {
			if e.IsDir() {
				k.Release = e.Name()
				k.Modules = filepath.Join(root, mods, e.Name())
			}
		}
	}
	if k.Release == "" {
		return k, fmt.Errorf("find the kernel in %s: no lib/modules/<release> dir", root)
	}
	for _, p := range []string{
		filepath.Join(root, "boot", "vmlinuz-"+k.Release),
		filepath.Join(k.Modules, "vmlinuz"),
	} {
		if _, err := os.Stat(p); err == nil {
			k.Vmlinuz = p
			break
		}
	}
	for _, p := range []string{
		filepath.Join(root, "boot", "config-"+k.Release),
		filepath.Join(k.Modules, "config"),
	} {
		if _, err := os.Stat(p); err == nil {
			k.Config = p
			break
		}
	}
	if k.Vmlinuz == "" {
		return k, fmt.Errorf("find the kernel image of %s in %s: no boot/vmlinuz-%s", k.Release, root, k.Release)
	}
	if _, err := os.Stat(filepath.Join(k.Modules, "modules.dep")); errors.Is(err, os.ErrNotExist) {
		// Packages ship no modules.dep: depmod runs at install.
		base := strings.TrimSuffix(strings.TrimSuffix(k.Modules, "/"+k.Release), "/lib/modules")
		if out, err := exec.Command("depmod", "-b", base, k.Release).CombinedOutput(); err != nil {
			return k, fmt.Errorf("depmod %s: %w: %s (install kmod)", k.Release, err, out)
		}
	}
	return k, nil
}
