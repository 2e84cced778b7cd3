// Package buildinfo holds the version stamped into release builds.
package buildinfo

import "runtime/debug"

// Set by the linker (-X) in release builds.
var (
	Version = ""
	Commit  = ""
)

// Info is what `graphprobe version` prints.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
}

// Get returns the build's version, falling back to the module and VCS data
// the Go toolchain embeds.
func Get() Info {
	i := Info{Version: Version, Commit: Commit, GoVersion: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		i.GoVersion = bi.GoVersion
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && i.Commit == "" {
				i.Commit = s.Value
				if len(i.Commit) > 12 {
					i.Commit = i.Commit[:12]
				}
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	return i
}
