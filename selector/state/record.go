package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector"
)

// DefaultDir is where packages keep the record (the unit's StateDirectory).
const DefaultDir = "/var/lib/graphprobe"

// FileName is the record's name in the state directory.
const FileName = "select-proof.json"

// SchemaVersion is the record format; another version is never reused.
const SchemaVersion = 1

// MaxSize bounds what Load reads: a record is a few KiB.
const MaxSize = 1 << 20

// Record is what a full select run proved, and what decided it.
type Record struct {
	SchemaVersion int `json:"schemaVersion"`
	// ProvenAt is when the proof finished (UTC).
	ProvenAt time.Time   `json:"provenAt"`
	Host     Observation `json:"host"`
	Inputs   Inputs      `json:"inputs"`
	Decision Decision    `json:"decision"`
	// Report is the full probe the decision was made on; a reused run
	// decides again on it, with the cheap fields observed afresh.
	Report *probe.Report `json:"report"`
}

// Observation is what the cheap probe sees: everything the decisive facts
// were derived from, reduced to identities that change when the thing
// changes (a replaced binary has another inode, size or ctime).
type Observation struct {
	Graphprobe Build `json:"graphprobe"`
	// MachineID is /etc/machine-id: a cloned image with a regenerated id
	// never matches.
	MachineID     string   `json:"machineID"`
	KernelRelease string   `json:"kernelRelease"`
	KernelBuild   string   `json:"kernelBuild"`
	DataRoot      DataRoot `json:"dataRoot"`
	// Files are the binaries, device nodes and module indexes the driver
	// facts read (dockerd, fuse-overlayfs, zfs, /dev/fuse, modules.dep,
	// ...), each "absent" or its identity.
	Files map[string]string `json:"files"`

	// Prior are the data-root's non-empty driver dirs: not compared, but
	// fed to the new decision (dockerd's first start creates overlay2/).
	Prior []string `json:"-"`
	// Exists, ProbedPath and inodes refresh the reused report.
	Exists      bool   `json:"-"`
	ProbedPath  string `json:"-"`
	InodesTotal uint64 `json:"-"`
	InodesFree  uint64 `json:"-"`
	// DockerRunning is whether the daemon's socket accepts a connection.
	DockerRunning bool `json:"-"`
}

// Build identifies the graphprobe that proved: an upgrade re-proves.
type Build struct {
	Version    string `json:"version"`
	Commit     string `json:"commit"`
	Executable string `json:"executable"`
}

// DataRoot identifies the data-root's filesystem.
type DataRoot struct {
	// Path is the data-root as configured.
	Path string `json:"path"`
	// Filesystem and Magic are from statfs; FSID is its f_fsid, Device the
	// st_dev of the probed directory, UUID the filesystem's UUID from
	// /dev/disk/by-uuid ("" when it has none there).
	Filesystem   string `json:"filesystem"`
	Magic        string `json:"magic"`
	FSID         string `json:"fsid"`
	Device       string `json:"device"`
	UUID         string `json:"uuid"`
	MountPoint   string `json:"mountPoint"`
	MountSource  string `json:"mountSource"`
	MountType    string `json:"mountType"`
	MountOptions string `json:"mountOptions"`
	SuperOptions string `json:"superOptions"`
}

// Inputs are what the caller asked for; any difference re-proves.
type Inputs struct {
	// Config is daemon.json's path and ConfigSHA256 the hash of its bytes
	// as the run left them ("absent" when there is no file).
	Config       string `json:"config"`
	ConfigSHA256 string `json:"configSHA256"`
	Policy       string `json:"policy,omitempty"`
	PolicySHA256 string `json:"policySHA256,omitempty"`
	// DockerVersion is --docker-version ("" when taken from dockerd).
	DockerVersion string `json:"dockerVersion,omitempty"`
	Driver        string `json:"driver,omitempty"`
	Strategy      string `json:"strategy,omitempty"`
	NoLoadModules bool   `json:"noLoadModules,omitempty"`
	// Extra holds flags added later, as "name=value", sorted.
	Extra []string `json:"extra,omitempty"`
}

// Decision is what the proof settled.
type Decision struct {
	DockerVersion         string   `json:"dockerVersion"`
	Driver                string   `json:"driver"`
	GraphDriver           string   `json:"graphDriver"`
	StorageOpts           []string `json:"storageOpts"`
	ImageStore            string   `json:"imageStore"`
	ContainerdSnapshotter *bool    `json:"containerdSnapshotter,omitempty"`
	Bench                 string   `json:"bench"`
	Reason                string   `json:"reason"`
	// Facts are the verdicts of the facts the decision rests on.
	Facts map[string]*bool `json:"facts"`
}

// decisiveFacts are the facts eligibility reads (selector/eligibility.go).
var decisiveFacts = []string{
	probe.FactOverlay, probe.FactMultiLowerdir, probe.FactDType, probe.FactAufs,
	probe.FactFuseOverlayfs, probe.FactBtrfs, probe.FactZfs, probe.FactDevicemapper,
}

// DecisionOf extracts the decision from a select result.
func DecisionOf(res *selector.Result) Decision {
	d := Decision{
		DockerVersion: res.DockerVersion, Driver: res.Driver, GraphDriver: res.GraphDriver,
		StorageOpts: append([]string{}, res.StorageOpts...), ImageStore: res.ImageStore,
		ContainerdSnapshotter: res.ContainerdSnapshotter, Bench: res.Bench, Reason: res.Reason,
		Facts: map[string]*bool{},
	}
	if res.Probe != nil {
		for _, f := range decisiveFacts {
			d.Facts[f] = res.Probe.Fact(f).Supported
		}
	}
	return d
}

// SameChoice reports whether two decisions configure Docker identically.
func (d Decision) SameChoice(o Decision) bool {
	return d.DockerVersion == o.DockerVersion && d.Driver == o.Driver && d.GraphDriver == o.GraphDriver &&
		slices.Equal(d.StorageOpts, o.StorageOpts) && d.ImageStore == o.ImageStore &&
		eqBool(d.ContainerdSnapshotter, o.ContainerdSnapshotter)
}

func eqBool(a, b *bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// HashBytes is the hash recorded for a file's content; nil (no file) is
// "absent".
func HashBytes(b []byte, exists bool) string {
	if !exists {
		return "absent"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Difference says what differs between the record and what a rerun sees,
// as a phrase ("kernel 6.1.0-1-amd64 → 6.1.0-2-amd64"); "" when nothing
// does.
func (r *Record) Difference(now Observation, in Inputs) string {
	was := r.Host
	switch {
	case r.SchemaVersion != SchemaVersion:
		return fmt.Sprintf("record format %d, this graphprobe writes %d", r.SchemaVersion, SchemaVersion)
	case was.Graphprobe != now.Graphprobe:
		return fmt.Sprintf("graphprobe changed (%s → %s)", describeBuild(was.Graphprobe), describeBuild(now.Graphprobe))
	case was.MachineID != now.MachineID:
		return "another machine (machine-id differs: a cloned image?)"
	case was.KernelRelease != now.KernelRelease:
		return fmt.Sprintf("kernel %s → %s", was.KernelRelease, now.KernelRelease)
	case was.KernelBuild != now.KernelBuild:
		return fmt.Sprintf("kernel %s rebuilt (%s → %s)", now.KernelRelease, was.KernelBuild, now.KernelBuild)
	case r.Report == nil:
		return "the record holds no probe report"
	}
	if d := diffFields("data-root", was.DataRoot, now.DataRoot); d != "" {
		return d
	}
	if d := diffFiles(was.Files, now.Files); d != "" {
		return d
	}
	if d := diffFields("input", r.Inputs, in); d != "" {
		if r.Inputs.ConfigSHA256 != in.ConfigSHA256 && r.Inputs.Config == in.Config {
			return in.Config + " changed since the proof"
		}
		return d
	}
	return ""
}

func describeBuild(b Build) string {
	return fmt.Sprintf("%s %s", b.Version, b.Commit)
}

// diffFields compares two structs field by field through their JSON form
// and names the first field that differs.
func diffFields(what string, a, b any) string {
	am, bm := asMap(a), asMap(b)
	for _, k := range unionKeys(am, bm) {
		if !bytes.Equal(am[k], bm[k]) {
			return fmt.Sprintf("%s %s %s → %s", what, k, show(am[k]), show(bm[k]))
		}
	}
	return ""
}

func asMap(v any) map[string]json.RawMessage {
	b, _ := json.Marshal(v)
	m := map[string]json.RawMessage{}
	_ = json.Unmarshal(b, &m)
	return m
}

func show(b json.RawMessage) string {
	if len(b) == 0 {
		return "(none)"
	}
	s := string(b)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// unionKeys are the keys of a and b, sorted.
func unionKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func diffFiles(a, b map[string]string) string {
	for _, k := range unionKeys(a, b) {
		if a[k] != b[k] {
			switch {
			case a[k] == "" || a[k] == absent:
				return k + " appeared"
			case b[k] == "" || b[k] == absent:
				return k + " is gone"
			}
			return k + " was replaced or changed"
		}
	}
	return ""
}

const absent = "absent"

// envelope is the file: the record's exact bytes and their hash, so that
// a flipped bit anywhere is caught, not only broken JSON.
type envelope struct {
	SHA256 string          `json:"sha256"`
	Record json.RawMessage `json:"record"`
}

// Encode is the record file's content.
func Encode(r *Record) ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode proof record: %w", err)
	}
	sum := sha256.Sum256(body)
	out, err := json.Marshal(envelope{SHA256: hex.EncodeToString(sum[:]), Record: body})
	if err != nil {
		return nil, fmt.Errorf("encode proof record: %w", err)
	}
	return append(out, '\n'), nil
}

// ErrCorrupt is a record that cannot be trusted: truncated, edited or
// damaged.
var ErrCorrupt = errors.New("corrupt")

// Decode parses a record file's content and checks its hash.
func Decode(data []byte) (*Record, error) {
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if len(strings.TrimSpace(string(data[dec.InputOffset():]))) > 0 {
		return nil, fmt.Errorf("%w: data after the record", ErrCorrupt)
	}
	sum := sha256.Sum256(env.Record)
	if env.SHA256 != hex.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("%w: content does not match its sha256", ErrCorrupt)
	}
	var r Record
	if err := json.Unmarshal(env.Record, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return &r, nil
}
