package probe

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	goversion "github.com/hashicorp/go-version"
)

// KernelVersion is a kernel release string reduced to what thresholds need.
//
// uname -r is not semver: "5.15.0-91-generic" would compare below 5.15.0 as a
// semver pre-release, and "3.10.0-1160.el7.x86_64" is not semver at all. The
// numeric core (major.minor.patch) is compared; everything after it is kept
// as the suffix and mined only for what matters to storage (a release
// candidate, the RHEL build number, WSL).
type KernelVersion struct {
	Major, Minor, Patch int
	// RC is the release-candidate number of an "-rcN" kernel, 0 otherwise.
	// An rc kernel has the features of its release for our thresholds.
	RC int
	// Suffix is everything after the numeric core, without the separator.
	Suffix string
	// RHELBuild is N of a RHEL/CentOS "3.10.0-N.elX" kernel, 0 otherwise.
	RHELBuild int
	// RHEL is the el major ("el7"), empty otherwise.
	RHEL string
	// WSL is 1 for a WSL1 kernel ("-Microsoft"), 2 for WSL2, 0 otherwise.
	WSL int
}

// ParseKernelRelease reads a release as uname -r prints it.
func ParseKernelRelease(release string) (KernelVersion, error) {
	var kv KernelVersion
	s := strings.TrimSpace(release)
	if s == "" {
		return kv, errors.New("parse kernel release: empty string")
	}
	nums, rest, err := leadingNumbers(s)
	if err != nil {
		return kv, fmt.Errorf("parse kernel release %q: %w", truncate(release, 64), err)
	}
	if len(nums) < 2 {
		return kv, fmt.Errorf("parse kernel release %q: want at least major.minor", truncate(release, 64))
	}
	kv.Major, kv.Minor = nums[0], nums[1]
	if len(nums) > 2 {
		kv.Patch = nums[2]
	}
	kv.Suffix = strings.TrimLeft(rest, "-.+_~")
	kv.parseSuffix()
	return kv, nil
}

// leadingNumbers takes up to three dot-separated decimal numbers.
func leadingNumbers(s string) ([]int, string, error) {
	var nums []int
	i := 0
	for len(nums) < 3 {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i {
			if len(nums) == 0 {
				return nil, "", errors.New("no leading version number")
			}
			// "3.12-1": stop at the first non-number after a dot? No: the
			// dot was consumed only when a number follows it.
			break
		}
		if j-i > 6 {
			return nil, "", errors.New("version number too long")
		}
		n, err := strconv.Atoi(s[i:j])
		if err != nil {
			return nil, "", err
		}
		nums = append(nums, n)
		i = j
		if i+1 < len(s) && s[i] == '.' && s[i+1] >= '0' && s[i+1] <= '9' && len(nums) < 3 {
			i++
			continue
		}
		break
	}
	return nums, s[i:], nil
}

func (kv *KernelVersion) parseSuffix() {
	suf := kv.Suffix
	lower := strings.ToLower(suf)
	// Release candidates: "4.0.0-rc1", "6.9-rc3".
	if strings.HasPrefix(lower, "rc") {
		n, _, _ := leadingNumbers(strings.TrimPrefix(lower, "rc"))
		if len(n) > 0 {
			kv.RC = n[0]
		}
	}
	// RHEL/CentOS: "1160.el7.x86_64", "514.26.2.el7.x86_64".
	if idx := strings.Index(lower, ".el"); idx >= 0 {
		el := lower[idx+1:]
		end := 2
		for end < len(el) && el[end] >= '0' && el[end] <= '9' {
			end++
		}
		if end > 2 {
			kv.RHEL = el[:end]
			if n, _, err := leadingNumbers(lower); err == nil && len(n) > 0 {
				kv.RHELBuild = n[0]
			}
		}
	}
	// WSL1 says "-Microsoft" (capital M, no "standard"); WSL2 says
	// "-microsoft-standard" or "-microsoft-standard-WSL2".
	switch {
	case strings.Contains(lower, "microsoft-standard") || strings.Contains(lower, "wsl2"):
		kv.WSL = 2
	case strings.Contains(suf, "Microsoft"):
		kv.WSL = 1
	}
}

// String gives the numeric core, as "4.4.0".
func (kv KernelVersion) String() string {
	return fmt.Sprintf("%d.%d.%d", kv.Major, kv.Minor, kv.Patch)
}

// AtLeast compares the numeric core with a threshold such as "4.0" or
// "3.18". An rc kernel counts as its release.
func (kv KernelVersion) AtLeast(min string) bool {
	want, err := goversion.NewVersion(min)
	if err != nil {
		panic(fmt.Sprintf("probe: bad threshold %q: %v", min, err))
	}
	have := goversion.Must(goversion.NewVersion(kv.String()))
	return have.Core().Compare(want.Core()) >= 0
}

// BackportsMultiLowerdir reports the vendor kernels known to carry multiple
// lower layers below 4.0: RHEL/CentOS 7 from 3.10.0-514 (7.3), as Docker's
// documentation states.
func (kv KernelVersion) BackportsMultiLowerdir() bool {
	return kv.RHEL != "" && kv.Major == 3 && kv.Minor == 10 && kv.RHELBuild >= 514
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
