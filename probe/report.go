package probe

import "github.com/graphprobe/graphprobe/version"

// SchemaVersion is the version of the JSON documents graphprobe prints.
const SchemaVersion = 1

// Report is the probe document (`graphprobe probe --format json`).
type Report struct {
	SchemaVersion int `json:"schemaVersion"`
	// Mode is "live" or "fixture".
	Mode string `json:"mode"`
	// Privileged is true when live tests could run as root.
	Privileged   bool              `json:"privileged"`
	Kernel       Kernel            `json:"kernel"`
	OS           OSRelease         `json:"os"`
	DataRoot     DataRoot          `json:"dataRoot"`
	Facts        map[string]Fact   `json:"facts"`
	KernelConfig map[string]string `json:"kernelConfig"`
	// KernelConfigSource is the file the config was read from.
	KernelConfigSource string `json:"kernelConfigSource,omitempty"`
	// OverlayParameters are /sys/module/overlay/parameters/* as read.
	OverlayParameters map[string]string `json:"overlayParameters,omitempty"`
	// PriorDrivers are the non-empty driver dirs under the data-root, in
	// Docker's priority-independent alphabetical order; vfs is never
	// counted, as dockerd does not count it.
	PriorDrivers []string `json:"priorDrivers"`
	Docker       Docker   `json:"docker"`
	// Warnings are things that went wrong reading the host; the facts they
	// affect say "unknown" with the reason.
	Warnings []string `json:"warnings,omitempty"`
	// DurationMillis is how long the probe took.
	DurationMillis float64 `json:"durationMillis"`
}

// Kernel is the running kernel.
type Kernel struct {
	Release string `json:"release"`
	// Version is the numeric core ("4.4.0"), empty when Release could not be
	// parsed.
	Version string `json:"version"`
	// Error says why Release could not be parsed.
	Error string `json:"error,omitempty"`
}

// Parsed returns the parsed release, or false when it could not be parsed.
func (k Kernel) Parsed() (version.Kernel, bool) {
	kv, err := version.ParseKernel(k.Release)
	return kv, err == nil
}

// DataRoot describes Docker's data-root and the filesystem under it.
type DataRoot struct {
	Path string `json:"path"`
	// Exists is false when the data-root has not been created yet; the
	// facts then describe its nearest existing parent (ProbedPath).
	Exists     bool   `json:"exists"`
	ProbedPath string `json:"probedPath"`
	// Filesystem is Docker's name for the backing filesystem ("extfs",
	// "xfs", "btrfs", "overlayfs", ...), "unknown" when it cannot be told.
	Filesystem string `json:"filesystem"`
	// Magic is the statfs magic ("0xEF53"), empty in fixture mode.
	Magic      string `json:"magic,omitempty"`
	MountPoint string `json:"mountPoint,omitempty"`
	// MountSource and MountOptions come from mountinfo.
	MountSource  string `json:"mountSource,omitempty"`
	MountOptions string `json:"mountOptions,omitempty"`
	DType        *bool  `json:"dType"`
	InodesTotal  uint64 `json:"inodesTotal"`
	InodesFree   uint64 `json:"inodesFree"`
	// OnOverlay is true when the data-root itself lives on overlayfs
	// (Docker-in-Docker, CI containers): overlay2 refuses it.
	OnOverlay bool `json:"onOverlay"`
}

// Docker is the engine found on the host.
type Docker struct {
	// Version is the engine version ("20.10.24"), empty when no dockerd was found.
	Version string `json:"version"`
	// VersionOutput is what `dockerd --version` printed.
	VersionOutput string `json:"versionOutput,omitempty"`
	Binary        string `json:"binary,omitempty"`
	// Running is true when the daemon's socket answered /_ping.
	Running bool   `json:"running"`
	Socket  string `json:"socket,omitempty"`
	// Rootless is true when probing as a non-root user, whose Docker is
	// rootless Docker with its own daemon.json.
	Rootless bool `json:"rootless"`
}

// Fact returns the named fact (the zero Fact, unknown, if absent).
func (r *Report) Fact(name string) Fact {
	if r == nil || r.Facts == nil {
		return Fact{}
	}
	return r.Facts[name]
}
