package daemonjson

import (
	"fmt"
	"strconv"
	"strings"
)

// optionPrefixes are the storage-opt key prefixes each driver owns. dockerd
// hands every storage-opt to the one driver in use, which refuses keys it
// does not know ("overlay2: unknown option dm.basesize"), so options of any
// other driver must go. vfs also takes the bare key "size".
var optionPrefixes = map[string][]string{
	"overlay2":       {"overlay2."},
	"overlay":        {"overlay."},
	"fuse-overlayfs": {"fuse-overlayfs."},
	"btrfs":          {"btrfs."},
	"zfs":            {"zfs."},
	"aufs":           {"aufs."},
	"devicemapper":   {"dm."},
	"vfs":            {"vfs."},
}

var bareOptions = map[string][]string{
	"vfs": {"size"},
}

// OptionKey returns the key of a storage-opt ("overlay2.size=10G" →
// "overlay2.size"), lower-cased and trimmed as dockerd compares it, and
// false when opt is not in key=value form.
func OptionKey(opt string) (string, bool) {
	k, _, ok := strings.Cut(opt, "=")
	if !ok {
		return "", false
	}
	k = strings.ToLower(strings.TrimSpace(k))
	return k, k != ""
}

// OptionBelongs reports whether storage-opt key (from OptionKey) is one of
// driver's own. Unknown drivers own nothing.
func OptionBelongs(driver, key string) bool {
	for _, p := range optionPrefixes[driver] {
		if strings.HasPrefix(key, p) && len(key) > len(p) {
			return true
		}
	}
	for _, b := range bareOptions[driver] {
		if key == b {
			return true
		}
	}
	return false
}

// optionOwner names the driver whose prefix key carries, for messages.
func optionOwner(key string) string {
	for d, ps := range optionPrefixes {
		for _, p := range ps {
			if strings.HasPrefix(key, p) {
				return d
			}
		}
	}
	return ""
}

// DroppedOpt is a storage-opt that StorageOpts removed, and why.
type DroppedOpt struct {
	Opt    string `json:"opt"`
	Reason string `json:"reason"`
}

// OptsResult is the storage-opts list to write and what changed on the way.
type OptsResult struct {
	Opts    []string     `json:"opts"`
	Dropped []DroppedOpt `json:"dropped,omitempty"`
	// Added are the policy's options that were not there before (new, or
	// replacing a different value).
	Added []string `json:"added,omitempty"`
}

// StorageOpts computes the storage-opts for driver from the existing list
// and the policy's options for that driver, for the Docker release
// dockerVersion ("" means the newest). It keeps the existing options that
// belong to driver in their order, drops the others (dockerd refuses
// options of other drivers), drops overlay2.override_kernel_check where
// Docker ignores or refuses it, and applies the policy's options, which
// replace an existing option with the same key in place. Every dropped
// option is reported with its reason so that the caller can show it.
func StorageOpts(existing []string, driver, dockerVersion string, policy []string) OptsResult {
	var res OptsResult
	res.Opts = []string{}
	index := map[string]int{} // key → position in res.Opts
	keep := func(opt, key string) {
		if i, ok := index[key]; ok {
			res.Dropped = append(res.Dropped, DroppedOpt{Opt: res.Opts[i], Reason: fmt.Sprintf("%s is set again later in the list; the later value is kept", key)})
			res.Opts[i] = opt
			return
		}
		index[key] = len(res.Opts)
		res.Opts = append(res.Opts, opt)
	}
	for _, opt := range existing {
		key, ok := OptionKey(opt)
		if !ok {
			res.Dropped = append(res.Dropped, DroppedOpt{Opt: opt, Reason: "not in key=value form: dockerd refuses it"})
			continue
		}
		if reason := refuseOption(driver, key, dockerVersion); reason != "" {
			res.Dropped = append(res.Dropped, DroppedOpt{Opt: opt, Reason: reason})
			continue
		}
		keep(opt, key)
	}
	for _, opt := range policy {
		key, ok := OptionKey(opt)
		if !ok {
			res.Dropped = append(res.Dropped, DroppedOpt{Opt: opt, Reason: "policy option not in key=value form: dockerd refuses it"})
			continue
		}
		if reason := refuseOption(driver, key, dockerVersion); reason != "" {
			res.Dropped = append(res.Dropped, DroppedOpt{Opt: opt, Reason: "policy option: " + reason})
			continue
		}
		if i, ok := index[key]; ok {
			if res.Opts[i] == opt {
				continue
			}
			res.Dropped = append(res.Dropped, DroppedOpt{Opt: res.Opts[i], Reason: "replaced by the policy's " + opt})
			res.Opts[i] = opt
			res.Added = append(res.Added, opt)
			continue
		}
		index[key] = len(res.Opts)
		res.Opts = append(res.Opts, opt)
		res.Added = append(res.Added, opt)
	}
	return res
}

// refuseOption says why key cannot be kept for driver, or "".
func refuseOption(driver, key, dockerVersion string) string {
	if !OptionBelongs(driver, key) {
		if owner := optionOwner(key); owner != "" {
			return fmt.Sprintf("an option of %s, not %s: dockerd refuses another driver's options", owner, driver)
		}
		return fmt.Sprintf("not an option of %s: dockerd refuses unknown options", driver)
	}
	if key == driver+".override_kernel_check" && (driver == "overlay2" || driver == "overlay") {
		switch {
		case VersionAtLeast(dockerVersion, 24, 0, 0):
			return fmt.Sprintf("%s is an unknown option from Docker 24 on: dockerd would not start", key)
		case VersionAtLeast(dockerVersion, 19, 3, 7):
			return fmt.Sprintf("%s is ignored since Docker 19.03.7 and stops Docker 24 from starting", key)
		}
	}
	return ""
}

// VersionAtLeast reports whether Docker release v ("20.10.24",
// "17.03.2-ce", "v25.0.3+dfsg1") is at least major.minor.patch. An empty
// or unreadable v counts as the newest release, the contract's default.
func VersionAtLeast(v string, major, minor, patch int) bool {
	got, ok := parseVersion(v)
	if !ok {
		return true
	}
	want := [3]int{major, minor, patch}
	for i := range got {
		if got[i] != want[i] {
			return got[i] > want[i]
		}
	}
	return true
}

func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexAny(v, "-+~ "); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if v == "" || len(parts) > 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

// SnapshotterFor returns the smallest change to
// features.containerd-snapshotter that gives the wanted image store on
// Docker dockerVersion, given the current document. From Docker 29 the
// containerd store is the default and a graph driver name in
// storage-driver selects the graph driver store by itself, so only an
// explicit setting that contradicts the choice is changed (a contradicting
// true is set to false; a contradicting false is removed). Before 29 the
// containerd store is opt-in: it needs true, and a true must go for the
// graph driver store.
func SnapshotterFor(dockerVersion string, doc *Document, containerd bool) SnapshotterChange {
	var cur *bool
	if doc != nil {
		cur = doc.Snapshotter
	}
	v29 := VersionAtLeast(dockerVersion, 29, 0, 0)
	switch {
	case containerd && cur != nil && *cur:
		return SnapshotterKeep
	case containerd && v29 && cur == nil:
		return SnapshotterKeep
	case containerd && v29:
		return SnapshotterUnset
	case containerd:
		return SnapshotterOn
	case cur != nil && *cur:
		return SnapshotterOff
	}
	return SnapshotterKeep
}
