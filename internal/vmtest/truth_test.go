package vmtest

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/version"
)

// kernelTruth is what a kernel has, from its release, its config and its
// command line alone: independent of the probe under test.
type kernelTruth struct {
	kv      version.Kernel
	config  map[string]string // CONFIG_X -> y|m|n
	cmdline map[string]string // overlay.<param> -> value
}

// featureKernels are the upstream kernels that brought each overlay
// feature (the thresholds of domain.md, written down here on their own).
var featureKernels = map[string]version.Kernel{
	probe.FactOverlay:       version.K(3, 18),
	probe.FactMultiLowerdir: version.K(4, 0),
	probe.FactRedirectDir:   version.K(4, 10),
	probe.FactIndex:         version.K(4, 13),
	probe.FactMetacopy:      version.K(4, 19),
	probe.FactVolatile:      version.K(5, 10),
	probe.FactUserxattr:     version.K(5, 11),
	probe.FactLowerdirPlus:  version.K(6, 8),
}

// overlayParamConfig maps an overlay module parameter to the config option
// that sets its default.
var overlayParamConfig = map[string]string{
	"redirect_dir": "CONFIG_OVERLAY_FS_REDIRECT_DIR",
	"index":        "CONFIG_OVERLAY_FS_INDEX",
	"metacopy":     "CONFIG_OVERLAY_FS_METACOPY",
}

func newKernelTruth(k Kernel, cmdline string) (*kernelTruth, error) {
	kv, err := version.ParseKernel(k.Release)
	if err != nil {
		return nil, err
	}
	t := &kernelTruth{kv: kv, config: map[string]string{}, cmdline: map[string]string{}}
	if k.Config != "" {
		f, err := os.Open(k.Config)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		var r io.Reader = f
		if strings.HasSuffix(k.Config, ".gz") {
			if r, err = gzip.NewReader(f); err != nil {
				return nil, err
			}
		}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			if name, ok := strings.CutPrefix(line, "# "); ok && strings.HasSuffix(name, " is not set") {
				t.config[strings.TrimSuffix(name, " is not set")] = "n"
			} else if name, val, ok := strings.Cut(line, "="); ok && strings.HasPrefix(name, "CONFIG_") {
				t.config[name] = val
			}
		}
	}
	for _, w := range strings.Fields(cmdline) {
		if name, val, ok := strings.Cut(w, "="); ok && strings.HasPrefix(name, "overlay.") {
			t.cmdline[strings.TrimPrefix(name, "overlay.")] = val
		}
	}
	return t, nil
}

func yes(v string) bool {
	switch strings.ToLower(v) {
	case "y", "1", "on", "yes", "true":
		return true
	}
	return false
}

// param is the value an overlay module parameter takes when the module
// loads: the command line wins over the config default.
func (t *kernelTruth) param(name string) bool {
	if v, ok := t.cmdline[name]; ok {
		return yes(v)
	}
	return t.config[overlayParamConfig[name]] == "y"
}

// has says whether the kernel has an overlay feature.
func (t *kernelTruth) has(fact string) bool {
	if fact == probe.FactNativeDiff {
		return t.kv.AtLeast(version.K(4, 8)) && !t.param("redirect_dir") && !t.param("metacopy")
	}
	return t.kv.AtLeast(featureKernels[fact])
}

// moduleState is how a kernel carries a module, from its config.
func (t *kernelTruth) moduleState(option string, loaded bool) probe.ModuleState {
	switch t.config[option] {
	case "y":
		return probe.ModuleBuiltin
	case "m":
		if loaded {
			return probe.ModuleLoaded
		}
		return probe.ModuleLoadable
	}
	return probe.ModuleAbsent
}

// mounts says whether the kernel mounts a disk at all.
func (t *kernelTruth) mounts(d Disk) bool {
	if d.Name == "xfs-ftype0" {
		return t.config["CONFIG_XFS_SUPPORT_V4"] == "y"
	}
	return true
}

// userXattrs says whether a filesystem stores user.* xattrs on this
// kernel: tmpfs only from 6.6 ("shmem: add support for user extended
// attributes").
func (t *kernelTruth) userXattrs(fs string) bool {
	return fs != "tmpfs" || t.kv.AtLeast(version.K(6, 6))
}

// selectWant is the driver Docker V takes on a fresh data-root of fs, in
// this VM (no fuse-overlayfs binary, no zfs; aufs when the kernel has it): the priority lists
// of domain.md.
func selectWant(fs string, dtype bool, docker string, aufs bool) string {
	v29 := strings.HasPrefix(docker, "29.")
	switch {
	case !dtype && aufs && strings.HasPrefix(docker, "20."):
		// aufs needs no d_type and comes before vfs up to 23.0.
		return "aufs"
	case !dtype:
		// No overlay without d_type; Docker 29 keeps the graph-driver
		// store there (its overlayfs snapshotter needs d_type too, and
		// dockerd 29 does not start with "native").
		return "vfs"
	case fs == "btrfs" && strings.HasPrefix(docker, "20."):
		return "btrfs"
	case v29:
		return "overlayfs"
	}
	return "overlay2"
}

type mismatch struct{ kernel, fs, fact, got, want string }

func (m mismatch) Error() string {
	return fmt.Sprintf("kernel %s, filesystem %s, fact %s: got %s, want %s", m.kernel, m.fs, m.fact, m.got, m.want)
}

func boolStr(b *bool) string {
	if b == nil {
		return "unknown"
	}
	return fmt.Sprint(*b)
}

type selectDoc struct {
	DockerVersion string `json:"dockerVersion"`
	Driver        string `json:"driver"`
	ImageStore    string `json:"imageStore"`
	Candidates    []struct {
		Driver    string          `json:"driver"`
		Eligible  bool            `json:"eligible"`
		Benchmark json.RawMessage `json:"benchmark"`
	} `json:"candidates"`
}

// checkVM compares what the VM printed with the truth table. It returns the
// rows of the per-kernel table and every mismatch.
func checkVM(k Kernel, cmdline string, secs map[string]Section) (rows []string, checked int, errs []error) {
	t, err := newKernelTruth(k, cmdline)
	if err != nil {
		return nil, 0, []error{err}
	}
	name := k.Release
	if cmdline != "" {
		name += " (" + cmdline + ")"
	}
	bad := func(fs, fact, got, want string) {
		if got != want {
			errs = append(errs, mismatch{name, fs, fact, got, want})
		}
	}
	check := func(fs, fact, got, want string) { checked++; bad(fs, fact, got, want) }
	hasAufs := t.config["CONFIG_AUFS_FS"] == "y" || t.config["CONFIG_AUFS_FS"] == "m"

	type fsCase struct {
		name  string
		dtype bool
	}
	cases := []fsCase{{"tmpfs", true}}
	for _, d := range StorageDisks {
		s, ran := secs["mount-"+d.Name]
		check(d.Name, "mounts", fmt.Sprint(ran && s.RC == 0), fmt.Sprint(t.mounts(d)))
		if ran && s.RC == 0 {
			cases = append(cases, fsCase{d.Name, d.DType})
		}
	}
	for _, c := range cases {
		row := []string{k.Release, cmdline, c.name}
		for _, load := range []bool{false, true} {
			sec := "probe-" + c.name
			if load {
				sec = "probe-load-" + c.name
			}
			s, ok := secs[sec]
			if !ok || s.RC != 0 {
				errs = append(errs, fmt.Errorf("kernel %s, filesystem %s: %s did not run (rc %d): %s", name, c.name, sec, s.RC, s.Stderr))
				continue
			}
			var r probe.Report
			if err := json.Unmarshal([]byte(s.Stdout), &r); err != nil {
				errs = append(errs, fmt.Errorf("kernel %s, filesystem %s: %s: %v", name, c.name, sec, err))
				continue
			}
			fs := c.name
			if load {
				fs += " (--load-modules)"
			}
			check(fs, "kernel.release", r.Kernel.Release, k.Release)
			check(fs, "dataRoot.dType", boolStr(r.DataRoot.DType), fmt.Sprint(c.dtype))
			check(fs, probe.FactDType, boolStr(r.Fact(probe.FactDType).Supported), fmt.Sprint(c.dtype))
			check(fs, probe.FactBtrfs, boolStr(r.Fact(probe.FactBtrfs).Supported), fmt.Sprint(c.name == "btrfs"))
			check(fs, "overlay module", string(r.Fact(probe.FactOverlay).Module), string(t.moduleState("CONFIG_OVERLAY_FS", load)))
			check(fs, "aufs module", string(r.Fact(probe.FactAufs).Module), string(t.moduleState("CONFIG_AUFS_FS", load)))
			check(fs, probe.FactAufs, boolStr(r.Fact(probe.FactAufs).Supported), fmt.Sprint(hasAufs))
			for _, fact := range []string{probe.FactOverlay, probe.FactMultiLowerdir, probe.FactNativeDiff, probe.FactRedirectDir,
				probe.FactIndex, probe.FactMetacopy, probe.FactVolatile, probe.FactUserxattr, probe.FactLowerdirPlus} {
				want := t.has(fact)
				if fact == probe.FactUserxattr && (load || t.config["CONFIG_OVERLAY_FS"] == "y") {
					// The live test runs on the data-root's filesystem,
					// whose upper must take user.* xattrs.
					want = want && t.userXattrs(c.name)
				}
				check(fs, fact, boolStr(r.Fact(fact).Supported), fmt.Sprint(want))
			}
			if load {
				for _, p := range []string{"redirect_dir", "index", "metacopy"} {
					got, ok := r.OverlayParameters[p]
					if !ok {
						got = "absent"
					}
					want := "N"
					if t.param(p) {
						want = "Y"
					}
					check(fs, "overlayParameters."+p, got, want)
				}
				row = append(row, yn(r.Fact(probe.FactUserxattr).Supported), yn(r.Fact(probe.FactNativeDiff).Supported), yn(r.Fact(probe.FactLowerdirPlus).Supported))
			}
		}
		for _, v := range dockerVersions {
			s, ok := secs["select-"+c.name+"-"+v]
			got := "did not run"
			if ok && s.RC == 0 {
				var d selectDoc
				if err := json.Unmarshal([]byte(s.Stdout), &d); err != nil {
					got = "bad json: " + err.Error()
				} else {
					got = d.Driver
				}
			} else if ok {
				got = fmt.Sprintf("exit %d: %s", s.RC, strings.TrimSpace(s.Stderr))
			}
			want := selectWant(c.name, c.dtype, v, hasAufs)
			check(c.name, "select --docker-version "+v, got, want)
			row = append(row, got)
		}
		bench := "-"
		if s, ok := secs["bench-"+c.name]; ok {
			var d selectDoc
			switch {
			case s.RC != 0:
				bench = fmt.Sprintf("exit %d", s.RC)
				check(c.name, "select (benchmark)", fmt.Sprintf("exit %d: %s", s.RC, strings.TrimSpace(s.Stderr)), "exit 0")
			case json.Unmarshal([]byte(s.Stdout), &d) != nil:
				check(c.name, "select (benchmark)", "bad json", "a select document")
			default:
				bench = d.Driver
				check(c.name, "select (benchmark, Docker "+d.DockerVersion+")", d.Driver, selectWant(c.name, c.dtype, d.DockerVersion, hasAufs))
			}
		}
		row = append(row, bench)
		rows = append(rows, "| "+strings.Join(row, " | ")+" |")
	}
	return rows, checked, errs
}

func yn(b *bool) string {
	switch {
	case b == nil:
		return "?"
	case *b:
		return "yes"
	}
	return "no"
}
