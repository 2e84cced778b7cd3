package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/version"
	"github.com/moby/sys/mountinfo"
)

// DefaultDataRoot is Docker's default data-root.
const DefaultDataRoot = "/var/lib/docker"

// CaptureFile is the file of a captured host, at the top of its tree, that
// holds the live results a fixture cannot reproduce (test mounts, d_type,
// statfs). Facts taken from it are reported with method "captured".
const CaptureFile = "graphprobe-capture.json"

// Capture is the content of CaptureFile.
type Capture struct {
	SchemaVersion int             `json:"schemaVersion"`
	Release       string          `json:"release"`
	DataRoot      DataRoot        `json:"dataRoot"`
	Facts         map[string]Fact `json:"facts"`
	Docker        Docker          `json:"docker"`
	Privileged    bool            `json:"privileged"`
}

// Options says what to probe.
type Options struct {
	// RootPrefix reads a captured host instead of the live one.
	RootPrefix string
	// DataRoot is Docker's data-root as seen on the host (default
	// /var/lib/docker).
	DataRoot string
	// LoadModules allows modprobe of overlay (and the other storage
	// modules) before testing. Off by default: a probe changes nothing.
	LoadModules bool
	// NoMountTests skips the live test mounts even as root.
	NoMountTests bool
	// Exec runs a host command (dockerd --version, fuse-overlayfs
	// --version, modprobe). Nil uses os/exec with a timeout.
	Exec ExecFunc
	// DockerSocket is the daemon socket to ping (default
	// /var/run/docker.sock, or DOCKER_HOST when it names a unix socket).
	DockerSocket string
	// Euid overrides the effective uid for tests (-1: the real one).
	Euid *int
	// DockerdPath is the PATH dockerd runs with, where it finds
	// fuse-overlayfs: the docker unit's Environment=PATH (DockerdPathFrom
	// names where it is set). Empty: on the live host this process's PATH
	// (a unit of the same service manager gets the same default), in a
	// fixture the default PATH.
	DockerdPath     []string
	DockerdPathFrom string
	// PriorDirs are the directories under the data-root whose entries are
	// a storage driver's images and containers (drivers.PriorDirs; the
	// caller passes them, since probe knows no driver table); the first
	// path element names the driver in Report.PriorDrivers. It is
	// required: a probe that silently looked for no prior state would let
	// a decision hide a host's images. An empty, non-nil slice says that
	// the caller wants no prior-state check.
	PriorDirs []string
}

// ErrNoPriorDirs is Run's error when Options.PriorDirs is nil.
var ErrNoPriorDirs = errors.New("probe: Options.PriorDirs is nil: pass drivers.PriorDirs(), or an empty slice to skip the prior-state check")

// ExecFunc runs name with args and returns its combined output.
type ExecFunc func(ctx context.Context, name string, args ...string) ([]byte, error)

// Run probes the host. It fails only when it cannot start (a missing fixture
// tree); everything that goes wrong afterwards becomes an unknown fact with
// its reason.
func Run(ctx context.Context, opts Options) (*Report, error) {
	start := time.Now()
	var h *Host
	if opts.RootPrefix != "" {
		var err error
		if h, err = FixtureHost(opts.RootPrefix); err != nil {
			return nil, err
		}
	} else {
		h = LiveHost()
	}
	if opts.DataRoot != "" && !path.IsAbs(opts.DataRoot) {
		return nil, fmt.Errorf("data-root %q: must be an absolute path", opts.DataRoot)
	}
	if opts.PriorDirs == nil {
		return nil, ErrNoPriorDirs
	}
	if opts.Exec == nil {
		opts.Exec = defaultExec
	}
	p := &prober{ctx: ctx, opts: opts, h: h, rows: factRows, r: &Report{
		SchemaVersion: SchemaVersion,
		Facts:         map[string]Fact{},
		KernelConfig:  map[string]string{},
		PriorDrivers:  []string{},
	}}
	if err := p.checkDataRoot(); err != nil {
		return nil, err
	}
	p.run()
	p.r.DurationMillis = float64(time.Since(start).Microseconds()) / 1000
	return p.r, nil
}

type prober struct {
	ctx  context.Context
	opts Options
	h    *Host
	r    *Report

	// rows are the facts to decide: factRows, or a test's own table.
	rows    []factRow
	kv      version.Kernel
	kvOK    bool
	mods    *moduleFacts
	capture *Capture
	live    *liveResults
	params  map[string]string
	mounts  []*mountinfo.Info

	fuseVersion string
	wsl1        bool

	dTypeMethod Method
	dTypeNote   string
}

// checkDataRoot refuses a data-root that exists as something other than a
// directory, before anything is probed or made there.
func (p *prober) checkDataRoot() error {
	dr := p.opts.DataRoot
	if dr == "" {
		if !p.h.Live() {
			return nil // decided after the capture is read; fixtures make nothing
		}
		dr = DefaultDataRoot
	}
	_, _, err := p.dataRootProbePath(path.Clean(dr))
	return err
}

func (p *prober) warn(format string, args ...any) {
	p.r.Warnings = append(p.r.Warnings, fmt.Sprintf(format, args...))
}

func (p *prober) euid() int {
	if p.opts.Euid != nil {
		return *p.opts.Euid
	}
	return os.Geteuid()
}

func (p *prober) run() {
	r := p.r
	if p.h.Live() {
		r.Mode = "live"
		r.Privileged = p.euid() == 0
	} else {
		r.Mode = "fixture"
		p.readCapture()
	}
	if p.opts.DataRoot == "" {
		// A capture made with another data-root says which.
		p.opts.DataRoot = DefaultDataRoot
		if p.capture != nil && path.IsAbs(p.capture.DataRoot.Path) {
			p.opts.DataRoot = p.capture.DataRoot.Path
		}
	}
	p.readKernel()
	p.readOS()
	p.readModules()
	p.readKernelConfig()
	p.readOverlayParams()
	p.readMounts()
	p.readDataRoot()
	if p.h.Live() && p.opts.LoadModules && r.Privileged {
		p.loadModules()
	}
	// External commands (dockerd --version, fuse-overlayfs --version) run
	// while the test mounts do.
	dockerDone := make(chan struct{})
	go func() {
		defer close(dockerDone)
		p.readDocker()
		if p.h.Live() {
			if bin, ok := p.lookDockerdPath("fuse-overlayfs"); ok {
				p.fuseVersion = p.fuseOverlayfsVersion(bin)
			}
		}
	}()
	if p.h.Live() {
		p.live = p.runLiveTests()
	}
	<-dockerDone
	p.decideFacts()
	p.readPriorDrivers()
	sort.Strings(r.Warnings)
}

// lookDockerdPath finds a program the way dockerd will: on the PATH it runs
// with.
func (p *prober) lookDockerdPath(name string) (string, bool) {
	return p.h.LookPathIn(p.dockerdPath(), name)
}

func (p *prober) dockerdPath() []string {
	if len(p.opts.DockerdPath) > 0 {
		return p.opts.DockerdPath
	}
	if p.h.Live() {
		if env := os.Getenv("PATH"); env != "" {
			return filepath.SplitList(env)
		}
	}
	return DefaultPath
}

func (p *prober) readCapture() {
	data, err := p.h.ReadFile("/" + CaptureFile)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		p.warn("read %s: %v", CaptureFile, err)
		return
	}
	var c Capture
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		p.warn("parse %s: %v", CaptureFile, err)
		return
	}
	if c.SchemaVersion != SchemaVersion {
		p.warn("%s: schemaVersion %d, want %d; ignored", CaptureFile, c.SchemaVersion, SchemaVersion)
		return
	}
	p.capture = &c
}

func (p *prober) readKernel() {
	var release string
	if p.h.Live() {
		var err error
		release, err = unameRelease()
		if err != nil {
			p.r.Kernel.Error = err.Error()
			return
		}
	} else {
		line, err := p.h.ReadLine("/proc/sys/kernel/osrelease")
		if err != nil {
			p.r.Kernel.Error = fmt.Sprintf("read kernel release: %v", err)
			return
		}
		release = line
	}
	p.r.Kernel.Release = strings.TrimSpace(release)
	if !isPrintable(p.r.Kernel.Release) {
		p.r.Kernel.Release = fmt.Sprintf("%q", truncate(p.r.Kernel.Release, 64))
		p.r.Kernel.Error = "parse kernel release: not text"
		return
	}
	kv, err := version.ParseKernel(release)
	if err != nil {
		p.r.Kernel.Error = err.Error()
		return
	}
	p.kv, p.kvOK = kv, true
	p.r.Kernel.Version = kv.String()
	if kv.WSL == 1 {
		// WSL1 translates Linux syscalls on the Windows kernel: there is no
		// Linux kernel to load a module into.
		p.wsl1 = true
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func isPrintable(s string) bool {
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == 0xfffd {
			return false
		}
	}
	return true
}

func (p *prober) readOS() {
	for _, f := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		data, err := p.h.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			p.warn("read %s: %v", f, err)
			return
		}
		osr, err := ParseOSRelease(bytes.NewReader(data))
		if err != nil {
			p.warn("%s: %v", f, err)
			return
		}
		p.r.OS = osr
		return
	}
}

// release for paths; a garbage release must not become a path.
func (p *prober) releaseDir() string {
	rel := p.r.Kernel.Release
	if rel == "" || strings.ContainsAny(rel, "/\x00") || rel == "." || rel == ".." || !isPrintable(rel) {
		return ""
	}
	return rel
}

func (p *prober) readModules() {
	m := &moduleFacts{release: p.releaseDir(), live: p.h.Live(), noModules: p.wsl1}
	p.mods = m
	if data, err := p.h.ReadFile("/proc/filesystems"); err != nil {
		p.warn("read /proc/filesystems: %v", err)
	} else if fsys, err := ParseFilesystems(bytes.NewReader(data)); err != nil {
		p.warn("%v", err)
	} else {
		m.fs = fsys
	}
	if data, err := p.h.ReadFile("/proc/modules"); err != nil {
		m.loadedErr = err
		if errors.Is(err, fs.ErrNotExist) && p.h.Live() {
			// The kernel was built without CONFIG_MODULES.
			m.noModules = true
		} else if !errors.Is(err, fs.ErrNotExist) {
			p.warn("read /proc/modules: %v", err)
		}
	} else if mods, err := ParseProcModules(bytes.NewReader(data)); err != nil {
		m.loadedErr = err
		p.warn("%v", err)
	} else {
		m.loaded = mods
	}
	if m.release == "" {
		m.depErr = errors.New("kernel release unknown")
		m.builtinErr = m.depErr
	} else {
		dir := "/lib/modules/" + m.release
		if data, err := p.h.ReadFile(dir + "/modules.dep"); err != nil {
			m.depErr = err
		} else if dep, err := ParseModulesDep(bytes.NewReader(data)); err != nil {
			m.depErr = err
			p.warn("%v", err)
		} else {
			m.dep = dep
		}
		if data, err := p.h.ReadFile(dir + "/modules.builtin"); err != nil {
			m.builtinErr = err
		} else if b, err := ParseModulesBuiltin(bytes.NewReader(data)); err != nil {
			m.builtinErr = err
			p.warn("%v", err)
		} else {
			m.builtin = b
		}
	}
	m.sysModule = func(name string) (bool, bool) {
		st, err := p.h.Lstat("/sys/module/" + name)
		if err != nil || !st.IsDir() {
			return false, false
		}
		return true, p.h.Exists("/sys/module/" + name + "/initstate")
	}
}

// kernelConfigOptions are the options reported in kernelConfig.
var kernelConfigOptions = []string{
	"CONFIG_OVERLAY_FS", "CONFIG_OVERLAY_FS_REDIRECT_DIR", "CONFIG_OVERLAY_FS_INDEX",
	"CONFIG_OVERLAY_FS_METACOPY", "CONFIG_AUFS_FS", "CONFIG_BTRFS_FS", "CONFIG_BLK_DEV_DM",
	"CONFIG_DM_THIN_PROVISIONING", "CONFIG_FUSE_FS",
}

func (p *prober) readKernelConfig() {
	rel := p.releaseDir()
	candidates := []string{"/proc/config.gz"}
	if rel != "" {
		candidates = append(candidates,
			"/boot/config-"+rel,
			"/usr/src/linux-"+rel+"/.config",
			"/usr/src/linux/.config",
			"/lib/modules/"+rel+"/build/.config",
			"/usr/lib/modules/"+rel+"/config")
	}
	var cfg KernelConfig
	for _, c := range candidates {
		data, err := p.h.ReadFile(c)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			p.warn("read %s: %v", c, err)
			continue
		}
		parsed, err := ParseKernelConfig(bytes.NewReader(data))
		if err != nil {
			p.warn("%s: %v", c, err)
			continue
		}
		cfg = parsed
		p.r.KernelConfigSource = c
		break
	}
	p.mods.config = cfg
	if cfg != nil && cfg.Tristate("CONFIG_MODULES") == "n" {
		p.mods.noModules = true
	}
	for _, o := range kernelConfigOptions {
		p.r.KernelConfig[o] = cfg.Tristate(o)
	}
}

func (p *prober) readOverlayParams() {
	entries, err := p.h.ReadDir("/sys/module/overlay/parameters")
	if err != nil {
		return
	}
	p.params = map[string]string{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		v, err := p.h.ReadLine("/sys/module/overlay/parameters/" + e.Name())
		if err != nil || !isPrintable(v) {
			continue
		}
		p.params[e.Name()] = strings.TrimSpace(v)
	}
	if len(p.params) > 0 {
		p.r.OverlayParameters = p.params
	}
}

// paramOn reads a Y/N overlay module parameter: nil when absent.
func (p *prober) paramOn(name string) *bool {
	v, ok := p.params[name]
	if !ok {
		return nil
	}
	if on := paramValueOn(v); on != nil {
		return on
	}
	return Bool(false)
}

// paramValueOn reads a boolean module parameter value as the kernel does
// (param_set_bool): nil when it is not a boolean ("follow", "nofollow" of
// old redirect_dir values count as on and off).
func paramValueOn(v string) *bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "y", "1", "on", "yes", "true", "follow":
		return Bool(true)
	case "n", "0", "off", "no", "false", "nofollow":
		return Bool(false)
	}
	return nil
}

func (p *prober) readMounts() {
	file := "/proc/self/mountinfo"
	var data []byte
	var err error
	if p.h.Live() {
		data, err = hostsys.ReadMountinfo()
	} else {
		data, err = p.h.ReadFile(file)
	}
	if err != nil {
		if !(errors.Is(err, fs.ErrNotExist) && !p.h.Live()) {
			p.warn("read %s: %v", file, err)
		}
		return
	}
	mounts, err := ParseMountinfo(bytes.NewReader(data))
	if err != nil {
		p.warn("%v", err)
		return
	}
	p.mounts = mounts
}

// mountFor finds the mount holding path: the longest mount point that
// contains it. Later entries of mountinfo shadow earlier ones at the same
// mount point.
func mountFor(mounts []*mountinfo.Info, p string) *mountinfo.Info {
	var best *mountinfo.Info
	for _, m := range mounts {
		mp := path.Clean(m.Mountpoint)
		if mp == "/" || p == mp || strings.HasPrefix(p, mp+"/") {
			if best == nil || len(mp) >= len(path.Clean(best.Mountpoint)) {
				best = m
			}
		}
	}
	return best
}

func (p *prober) readPriorDrivers() {
	p.r.PriorDrivers = readPriorDrivers(p.h, p.r.DataRoot.Path, p.opts.PriorDirs)
}

// readPriorDrivers names the drivers whose prior-state dir under dataRoot
// holds data. dockerd itself leaves vfs out and so silently hides vfs
// images when it picks another driver; vfs/dir is among the dirs so that
// the decision can refuse that.
func readPriorDrivers(h *Host, dataRoot string, dirs []string) []string {
	out := []string{}
	for _, d := range dirs {
		if entries, err := h.ReadDir(path.Join(dataRoot, d)); err == nil && len(entries) > 0 {
			name, _, _ := strings.Cut(d, "/")
			out = append(out, name)
		}
	}
	return out
}
