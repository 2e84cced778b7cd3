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

// Rules are what the target Docker release does with the storage-opts
// whose meaning changed between releases. selector's release table fills
// them in (selector.StorageRules), so that no release is known here; the
// zero value is the newest release's rules.
type Rules struct {
	// KernelCheck is what the release does with
	// overlay2.override_kernel_check (and overlay's).
	KernelCheck KernelCheck
	// KernelCheckIgnoredSince and KernelCheckRefusedSince are the releases
	// that stopped honouring the option and that refuse it, named in the
	// reasons given.
	KernelCheckIgnoredSince, KernelCheckRefusedSince version.Docker
}

// KernelCheck is what a release does with override_kernel_check.
type KernelCheck int

const (
	// KernelCheckRefused: an unknown option, which stops dockerd (the
	// zero value: the newest releases).
	KernelCheckRefused KernelCheck = iota
	// KernelCheckIgnored: accepted and ignored; it stops dockerd once the
	// host is upgraded to a release that refuses it.
	KernelCheckIgnored
	// KernelCheckHonoured: the option skips dockerd's kernel version check.
	KernelCheckHonoured
)

// StorageOpts computes the storage-opts for driver from the existing list
// and the policy's options for that driver, under the target release's
// rules. It keeps the existing options that
// belong to driver in their order, drops the others (dockerd refuses
// options of other drivers), drops overlay2.override_kernel_check where
// Docker ignores or refuses it, and applies the policy's options, which
// replace an existing option with the same key in place. Every dropped
// option is reported with its reason so that the caller can show it.
func StorageOpts(existing []string, driver string, rules Rules, policy []string) OptsResult {
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
		if reason := refuseOption(driver, key, rules); reason != "" {
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
		if reason := refuseOption(driver, key, rules); reason != "" {
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
func refuseOption(driver, key string, rules Rules) string {
	if !OptionBelongs(driver, key) {
		if owner := drivers.OptionOwner(key); owner != "" {
			return fmt.Sprintf("an option of %s, not %s: dockerd refuses another driver's options", owner, driver)
		}
		return fmt.Sprintf("not an option of %s: dockerd refuses unknown options", driver)
	}
	if key == driver+".override_kernel_check" && (driver == "overlay2" || driver == "overlay") {
		switch rules.KernelCheck {
		case KernelCheckRefused:
			if rules.KernelCheckRefusedSince.IsZero() {
				return fmt.Sprintf("%s is an unknown option in the newest Docker releases: dockerd would not start", key)
			}
			return fmt.Sprintf("%s is an unknown option from Docker %s on: dockerd would not start", key, releaseName(rules.KernelCheckRefusedSince))
		case KernelCheckIgnored:
			return fmt.Sprintf("%s is ignored since Docker %s and stops Docker %s from starting", key, releaseName(rules.KernelCheckIgnoredSince), releaseName(rules.KernelCheckRefusedSince))
		}
	}
	return ""
}

// releaseName names a release as release notes do: "19.03.7", "24".
func releaseName(v version.Docker) string {
	switch {
	case v.Patch != 0:
		return v.String()
	case v.Major >= 23 && v.Minor == 0:
		return fmt.Sprint(v.Major)
	}
	return v.Line()
}
