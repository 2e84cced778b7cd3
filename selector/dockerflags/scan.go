package dockerflags

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/graphprobe/graphprobe/internal/hostsys"
)

// Finding is one flag (or variable) that sets a storage-related dockerd
// setting outside daemon.json.
type Finding struct {
	Key Key `json:"key"`
	// Flag is the flag as written ("-s", "--storage-opt") or the variable
	// name for DriverEnv.
	Flag  string `json:"flag"`
	Value string `json:"value"`
	// File and Line are where to edit: the host path (without the scan's
	// root prefix) and the 1-based line.
	File string `json:"file"`
	Line int    `json:"line"`
	// Via says how the value reaches dockerd when File is not the unit:
	// "$DOCKER_OPTS in ExecStart at /lib/systemd/system/docker.service:11".
	Via string `json:"via,omitempty"`
}

// Conflicts reports whether the finding makes dockerd refuse a daemon.json
// that sets the same key: storage-driver and storage-opts.
func (f Finding) Conflicts() bool {
	return f.Key == StorageDriver || f.Key == StorageOpts
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s:%d: ", f.File, f.Line)
	switch {
	case f.Key == DriverEnv:
		s += fmt.Sprintf("%s=%s", f.Flag, f.Value)
	case strings.HasPrefix(f.Flag, "--"):
		s += fmt.Sprintf("%s=%s", f.Flag, f.Value)
	default:
		s += fmt.Sprintf("%s %s", f.Flag, f.Value)
	}
	s += " (" + string(f.Key)
	if f.Via != "" {
		s += ", via " + f.Via
	}
	return s + ")"
}

// How a finding's file reaches dockerd, which decides what applies an edit.
const (
	// ReadFromUnit: a systemd unit or drop-in; systemd rereads it only
	// after systemctl daemon-reload.
	ReadFromUnit = "systemd-unit"
	// ReadBySystemd: an environment file that the unit loads; systemd
	// reads it afresh at every start.
	ReadBySystemd = "systemd-environment"
	// ReadByInitScript: an environment file of the sysvinit or upstart
	// script, read at every start.
	ReadByInitScript = "init-script"
)

// ReadBy says how the finding's file reaches dockerd: one of ReadFromUnit,
// ReadBySystemd and ReadByInitScript.
func (f Finding) ReadBy() string {
	for _, d := range unitDirs {
		if strings.HasPrefix(f.File, d+"/") {
			return ReadFromUnit
		}
	}
	if strings.Contains(f.Via, " in ExecStart at ") {
		return ReadBySystemd
	}
	return ReadByInitScript
}

// Report is what Scan found.
type Report struct {
	// Init is "systemd" when a docker.service unit exists, else "sysvinit"
	// (sysvinit or upstart scripts, which source the environment files).
	Init string `json:"init"`
	// Unit is the docker.service in force, DropIns its drop-ins in the
	// order applied (host paths).
	Unit    string   `json:"unit,omitempty"`
	DropIns []string `json:"dropIns,omitempty"`
	// Masked is set when docker.service is linked to /dev/null.
	Masked bool `json:"masked,omitempty"`
	// Findings are the settings dockerd gets from its command line and
	// environment, in command-line order.
	Findings []Finding `json:"findings"`
	// Ignored are storage flags in environment files that dockerd never
	// sees (the unit does not load the file or use the variable).
	Ignored []Finding `json:"ignored,omitempty"`
	// Warnings are lines that could not be read; they may hide a flag.
	Warnings []string `json:"warnings,omitempty"`
	// Path is the PATH the unit gives dockerd (Environment= or an
	// EnvironmentFile=), where dockerd finds fuse-overlayfs; PathFrom is
	// the file and line that set it. "" when the unit leaves PATH to the
	// service manager.
	Path     string `json:"path,omitempty"`
	PathFrom string `json:"pathFrom,omitempty"`
}

// Conflicts returns the findings that make dockerd refuse a daemon.json
// with storage-driver or storage-opts.
func (r *Report) Conflicts() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Conflicts() {
			out = append(out, f)
		}
	}
	return out
}

// Where the init systems look, in precedence order.
var unitDirs = []string{
	"/etc/systemd/system",
	"/run/systemd/system",
	"/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system",
	"/lib/systemd/system",
}

const unitName = "docker.service"

// legacyFiles are the environment files of Docker's sysvinit and upstart
// scripts, and the variables those scripts pass to the daemon.
var legacyFiles = []struct {
	path string
	vars []string
}{
	{"/etc/default/docker", []string{"DOCKER_OPTS"}},
	{"/etc/sysconfig/docker", []string{"OPTIONS", "other_args"}},
	{"/etc/sysconfig/docker-storage", []string{"DOCKER_STORAGE_OPTIONS"}},
}

// maxFile bounds every file Scan reads.
const maxFile = 1 << 20

// Scan reads how the host under root ("/" for the live host) starts
// dockerd and returns the storage-related flags it passes. A missing file
// is normal; an unreadable one is an error, because a flag in it would go
// unseen.
func Scan(root string) (*Report, error) {
	h := hostFS{root: hostsys.NewRoot(root)}
	r := &Report{Findings: []Finding{}}
	unit, masked, err := h.findUnit()
	if err != nil {
		return nil, err
	}
	if unit == "" {
		r.Init = "sysvinit"
		if err := h.scanLegacy(r); err != nil {
			return nil, err
		}
		return r, nil
	}
	r.Init, r.Unit, r.Masked = "systemd", unit, masked
	st := &serviceState{}
	if !masked {
		if err := h.applyUnitFile(st, unit, r); err != nil {
			return nil, err
		}
		dropins, err := h.findDropIns()
		if err != nil {
			return nil, err
		}
		for _, d := range dropins {
			r.DropIns = append(r.DropIns, d)
			if err := h.applyUnitFile(st, d, r); err != nil {
				return nil, err
			}
		}
	}
	env, err := h.environment(st, r)
	if err != nil {
		return nil, err
	}
	if a, ok := env["PATH"]; ok && r.Init == "systemd" {
		r.Path = a.value
		r.PathFrom = fmt.Sprintf("%s:%d", a.file, a.line)
	}
	used := map[string]bool{} // "file\x00var" of expanded variables
	for _, ex := range st.execStart {
		// Prefixes: - ignore failure, @ argv[0] follows, : no
		// substitution, + ! !! privileges.
		cmd := ex.value
		prefix := cmd[:len(cmd)-len(strings.TrimLeft(cmd, "-@:+!"))]
		words, err := splitCommand(cmd[len(prefix):])
		if err != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s:%d: ExecStart: %v", ex.file, ex.line, err))
			continue
		}
		if strings.Contains(prefix, "@") && len(words) > 1 {
			words = append(words[:1], words[2:]...)
		}
		if strings.Contains(prefix, ":") {
			for i := range words {
				words[i].bareVar, words[i].braced = "", nil
			}
		}
		args := expand(words, env, ex, used)
		if rest, ok := daemonArgs(args, unitVars(env, ex, used)); ok {
			r.Findings = append(r.Findings, scanFlags(rest)...)
		} else {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s:%d: ExecStart does not run dockerd directly; flags passed by %s are not seen", ex.file, ex.line, firstWord(args)))
			for _, f := range scanFlags(args) {
				if strings.HasPrefix(f.Flag, "--") {
					r.Findings = append(r.Findings, f)
				}
			}
		}
	}
	if v, ok := env["DOCKER_DRIVER"]; ok && v.value != "" {
		r.Findings = append(r.Findings, Finding{Key: DriverEnv, Flag: "DOCKER_DRIVER", Value: v.value, File: v.file, Line: v.line})
	}
	// Storage flags in the legacy files that the unit does not pass on.
	legacy := &Report{}
	if err := h.scanLegacy(legacy); err != nil {
		return nil, err
	}
	for _, f := range legacy.Findings {
		if !used[path.Clean(f.File)+"\x00"+strings.TrimPrefix(f.Via, "$")] {
			f.Via = "not used: " + unitUse(masked)
			r.Ignored = append(r.Ignored, f)
		}
	}
	return r, nil
}

func unitUse(masked bool) string {
	if masked {
		return "docker.service is masked"
	}
	return "docker.service does not pass this variable to dockerd"
}

func firstWord(args []arg) string {
	if len(args) == 0 {
		return "an empty command"
	}
	return args[0].text
}

// serviceState is the [Service] settings that matter, as unit file and
// drop-ins build them up.
type serviceState struct {
	execStart []located
	env       []located // Environment= values
	envFiles  []located // EnvironmentFile= values
}

type located struct {
	value string
	file  string
	line  int
}

func (h hostFS) applyUnitFile(st *serviceState, file string, r *Report) error {
	data, err := h.readFile(file)
	if err != nil {
		return err
	}
	ds, warnings, err := parseUnit(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	for _, w := range warnings {
		r.Warnings = append(r.Warnings, file+": "+w)
	}
	for _, d := range ds {
		if d.section != "Service" {
			continue
		}
		var list *[]located
		switch d.key {
		case "ExecStart":
			list = &st.execStart
		case "Environment":
			list = &st.env
		case "EnvironmentFile":
			list = &st.envFiles
		default:
			continue
		}
		if d.value == "" {
			*list = nil
			continue
		}
		*list = append(*list, located{value: d.value, file: file, line: d.line})
	}
	return nil
}

// environment builds the unit's environment: Environment= in order, then
// EnvironmentFile= files in order, which override it (systemd.exec(5)).
func (h hostFS) environment(st *serviceState, r *Report) (map[string]assignment, error) {
	env := map[string]assignment{}
	for _, e := range st.env {
		words, err := splitCommand(e.value)
		if err != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s:%d: Environment: %v", e.file, e.line, err))
			continue
		}
		for _, w := range words {
			name, val, ok := strings.Cut(w.text, "=")
			if !ok || !isName(name) {
				r.Warnings = append(r.Warnings, fmt.Sprintf("%s:%d: Environment: not an assignment: %q", e.file, e.line, w.text))
				continue
			}
			env[name] = assignment{name: name, value: strings.ReplaceAll(val, "$$", "$"), file: e.file, line: e.line}
		}
	}
	for _, ef := range st.envFiles {
		p, optional := strings.CutPrefix(ef.value, "-")
		data, err := h.readFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			if !optional {
				r.Warnings = append(r.Warnings, fmt.Sprintf("%s:%d: EnvironmentFile %s does not exist: systemd will not start docker.service", ef.file, ef.line, p))
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		as, warnings, err := parseEnvFile(bytes.NewReader(data), p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		for _, w := range warnings {
			r.Warnings = append(r.Warnings, p+": "+w)
		}
		for _, a := range as {
			env[a.name] = a
		}
	}
	return env, nil
}

// expand substitutes variables in an ExecStart command as systemd does.
// used collects the file and name of every variable expanded.
func expand(words []word, env map[string]assignment, ex located, used map[string]bool) []arg {
	unit := Origin{File: ex.file, Line: ex.line}
	via := func(name string) string {
		return fmt.Sprintf("$%s in ExecStart at %s:%d", name, ex.file, ex.line)
	}
	var out []arg
	for _, w := range words {
		if w.bareVar != "" {
			a, ok := env[w.bareVar]
			if !ok {
				continue
			}
			used[path.Clean(a.file)+"\x00"+a.name] = true
			o := Origin{File: a.file, Line: a.line, Via: via(a.name)}
			for _, s := range splitVarWords(a.value) {
				out = append(out, arg{text: s, Origin: o})
			}
			continue
		}
		text, o := w.text, unit
		for _, name := range w.braced {
			a := env[name]
			if a.file != "" {
				used[path.Clean(a.file)+"\x00"+a.name] = true
				if a.value != "" {
					o = Origin{File: a.file, Line: a.line, Via: via(name)}
				}
			}
			text = strings.ReplaceAll(text, "${"+name+"}", a.value)
		}
		out = append(out, arg{text: strings.ReplaceAll(text, "$$", "$"), Origin: o})
	}
	return out
}

// scanLegacy reads the sysvinit/upstart environment files.
func (h hostFS) scanLegacy(r *Report) error {
	for _, lf := range legacyFiles {
		data, err := h.readFile(lf.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		as, warnings, err := sourceFile(bytes.NewReader(data), lf.path)
		if err != nil {
			return fmt.Errorf("read %s: %w", lf.path, err)
		}
		for _, w := range warnings {
			r.Warnings = append(r.Warnings, lf.path+": "+w)
		}
		last := map[string]assignment{}
		var order []string
		for _, a := range as {
			if !slices.Contains(lf.vars, a.name) {
				continue
			}
			if _, seen := last[a.name]; !seen {
				order = append(order, a.name)
			}
			last[a.name] = a
		}
		for _, name := range order {
			a := last[name]
			o := Origin{File: a.file, Line: a.line, Via: "$" + name}
			var args []arg
			for _, s := range initScriptFields(a.value) {
				args = append(args, arg{text: s, Origin: o})
			}
			r.Findings = append(r.Findings, scanFlags(args)...)
		}
	}
	return nil
}

// hostFS reads host paths under a root prefix, resolving symlinks inside
// the prefix (an absolute link target is taken relative to the root, as
// it would be on the captured host).
type hostFS struct{ root hostsys.Root }

var errMasked = errors.New("linked to /dev/null")

// resolve follows symlinks in host path p under the root and returns the
// resolved host path. A path that resolves to /dev/null returns errMasked.
func (h hostFS) resolve(p string) (string, error) {
	rp, err := h.root.Resolve(p)
	if err != nil {
		return "", err
	}
	if rp == hostsys.DevNull {
		// systemctl mask; a captured host need not hold /dev.
		return "", errMasked
	}
	return rp, nil
}

func (h hostFS) real(p string) string { return h.root.Path(p) }

// readFile reads a regular file of at most maxFile bytes. Errors wrap
// fs.ErrNotExist for a missing file and errMasked for one linked to
// /dev/null.
func (h hostFS) readFile(p string) ([]byte, error) {
	rp, err := h.resolve(p)
	if err != nil {
		if errors.Is(err, errMasked) || errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	fi, err := os.Lstat(h.real(rp))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		// A FIFO would block the scan; a directory cannot hold flags.
		return nil, fmt.Errorf("read %s: %s, not a regular file", p, hostsys.FileKind(fi.Mode()))
	}
	if fi.Size() > maxFile {
		return nil, fmt.Errorf("read %s: file is %d bytes; over the %d-byte limit", p, fi.Size(), maxFile)
	}
	f, err := h.root.Open(rp)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxFile+1)); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if buf.Len() > maxFile {
		return nil, fmt.Errorf("read %s: file grew over the %d-byte limit", p, maxFile)
	}
	return buf.Bytes(), nil
}

// findUnit returns the docker.service in force, and whether it is masked.
func (h hostFS) findUnit() (string, bool, error) {
	for _, d := range unitDirs {
		p := path.Join(d, unitName)
		_, err := h.resolve(p)
		switch {
		case err == nil:
			return p, false, nil
		case errors.Is(err, errMasked):
			return p, true, nil
		case errors.Is(err, fs.ErrNotExist):
			continue
		default:
			return "", false, fmt.Errorf("read %s: %w", p, err)
		}
	}
	return "", false, nil
}

// findDropIns returns the drop-ins of docker.service in the order systemd
// applies them.
func (h hostFS) findDropIns() ([]string, error) {
	byName := map[string]string{}
	seenDir := map[string]bool{}
	for _, d := range unitDirs {
		dir := path.Join(d, unitName+".d")
		rd, err := h.resolve(dir)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errMasked) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", dir, err)
		}
		if seenDir[rd] { // /lib linked to /usr/lib
			continue
		}
		seenDir[rd] = true
		entries, err := os.ReadDir(h.real(rd))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("read %s: %w", dir, err)
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".conf") {
				continue
			}
			if _, ok := byName[e.Name()]; !ok {
				byName[e.Name()] = path.Join(dir, e.Name())
			}
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []string
	for _, n := range names {
		p := byName[n]
		if _, err := h.resolve(p); errors.Is(err, errMasked) {
			continue // a drop-in masked by a link to /dev/null
		}
		out = append(out, p)
	}
	return out, nil
}
