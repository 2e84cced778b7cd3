package daemonjson

import (
	"fmt"
	"strings"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/version"
)

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
// driver's own (drivers.Info's OptionPrefixes and OptionKeys). dockerd
// hands every storage-opt to the one driver in use, which refuses keys it
// does not know, so options of any other driver must go. Unknown drivers
// own nothing.
func OptionBelongs(driver, key string) bool { return drivers.OwnsOption(driver, key) }

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
// dockerVersion (the zero version means the newest). It keeps the existing options that
// belong to driver in their order, drops the others (dockerd refuses
// options of other drivers), drops overlay2.override_kernel_check where
// Docker ignores or refuses it, and applies the policy's options, which
// replace an existing option with the same key in place. Every dropped
// option is reported with its reason so that the caller can show it.
func StorageOpts(existing []string, driver string, dockerVersion version.Docker, policy []string) OptsResult {
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
func refuseOption(driver, key string, dockerVersion version.Docker) string {
	if !OptionBelongs(driver, key) {
		if owner := drivers.OptionOwner(key); owner != "" {
			return fmt.Sprintf("an option of %s, not %s: dockerd refuses another driver's options", owner, driver)
		}
		return fmt.Sprintf("not an option of %s: dockerd refuses unknown options", driver)
	}
	if key == driver+".override_kernel_check" && (driver == "overlay2" || driver == "overlay") {
		switch {
		case atLeast(dockerVersion, okcRefusedSince):
			return fmt.Sprintf("%s is an unknown option from Docker 24 on: dockerd would not start", key)
		case atLeast(dockerVersion, okcIgnoredSince):
			return fmt.Sprintf("%s is ignored since Docker 19.03.7 and stops Docker 24 from starting", key)
		}
	}
	return ""
}

// The releases that changed what daemon.json may hold; selector's release
// table has the same rows, and its tests hold the two to each other.
var (
	// overlay2.override_kernel_check is ignored from 19.03.7 and an
	// unknown option that stops dockerd from 24.0.
	okcIgnoredSince = version.Docker{Major: 19, Minor: 3, Patch: 7}
	okcRefusedSince = version.Docker{Major: 24}
)

// atLeast is v.AtLeast(o), where the zero version, "not known", counts as
// the newest release, the contract's default.
func atLeast(v, o version.Docker) bool { return v.IsZero() || v.AtLeast(o) }
