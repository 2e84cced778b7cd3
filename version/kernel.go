package version

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kernel is a kernel release reduced to what thresholds need.
//
// uname -r is not semver: "5.15.0-91-generic" would sort below 5.15.0 as a
// semver pre-release, and "3.10.0-1160.el7.x86_64" is not semver at all.
// Only the numeric core (major.minor.patch) is compared; everything after
// it is kept as the suffix and mined only for what matters to storage (a
// release candidate, the RHEL build number, WSL).
type Kernel struct {
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

// K is the threshold major.minor, as kernel changes are dated: features
// arrive in a major.minor release, never in a stable patch.
func K(major, minor int) Kernel { return Kernel{Major: major, Minor: minor} }

// ParseKernel reads a release as uname -r prints it.
func ParseKernel(release string) (Kernel, error) {
	var k Kernel
	s := strings.TrimSpace(release)
	if s == "" {
		return k, errors.New("parse kernel release: empty string")
	}
	nums, rest, err := leadingNumbers(s)
	if err != nil {
		return k, fmt.Errorf("parse kernel release %q: %w", truncate(release, 64), err)
	}
	if len(nums) < 2 {
		return k, fmt.Errorf("parse kernel release %q: want at least major.minor", truncate(release, 64))
	}
	k.Major, k.Minor = nums[0], nums[1]
	if len(nums) > 2 {
		k.Patch = nums[2]
	}
	k.Suffix = strings.TrimLeft(rest, "-.+_~")
	k.parseSuffix()
	return k, nil
}

// leadingNumbers takes up to three dot-separated decimal numbers. A dot is
// consumed only when a number follows it ("3.12-1" stops after 12).
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

func (k *Kernel) parseSuffix() {
	suf := k.Suffix
	lower := strings.ToLower(suf)
	// Release candidates: "4.0.0-rc1", "6.9-rc3".
	if strings.HasPrefix(lower, "rc") {
		n, _, _ := leadingNumbers(strings.TrimPrefix(lower, "rc"))
		if len(n) > 0 {
			k.RC = n[0]
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
			k.RHEL = el[:end]
			if n, _, err := leadingNumbers(lower); err == nil && len(n) > 0 {
				k.RHELBuild = n[0]
			}
		}
	}
	// WSL1 says "-Microsoft" (capital M, no "standard"); WSL2 says
	// "-microsoft-standard" or "-microsoft-standard-WSL2".
	switch {
	case strings.Contains(lower, "microsoft-standard") || strings.Contains(lower, "wsl2"):
		k.WSL = 2
	case strings.Contains(suf, "Microsoft"):
		k.WSL = 1
	}
}

// String gives the numeric core, as "4.4.0": what the probe reports as the
// kernel's version.
func (k Kernel) String() string {
	return fmt.Sprintf("%d.%d.%d", k.Major, k.Minor, k.Patch)
}

// Threshold gives k as thresholds are written ("4.0", "4.10"): the patch
// only when it is set. The zero Kernel, no threshold, gives "".
func (k Kernel) Threshold() string {
	switch {
	case k.IsZero():
		return ""
	case k.Patch != 0:
		return fmt.Sprintf("%d.%d.%d", k.Major, k.Minor, k.Patch)
	}
	return fmt.Sprintf("%d.%d", k.Major, k.Minor)
}

// IsZero reports the zero Kernel, which stands for "no threshold".
func (k Kernel) IsZero() bool { return k.Major == 0 && k.Minor == 0 && k.Patch == 0 }

// Compare orders the numeric cores of k and o: -1, 0 or +1. The suffix
// does not count: "4.0.0-rc1" has the features of 4.0 for our thresholds,
// and a distribution's build number says nothing upstream.
func (k Kernel) Compare(o Kernel) int {
	return cmp.Or(cmp.Compare(k.Major, o.Major), cmp.Compare(k.Minor, o.Minor), cmp.Compare(k.Patch, o.Patch))
}

// AtLeast reports whether k's numeric core is min or later.
func (k Kernel) AtLeast(min Kernel) bool { return k.Compare(min) >= 0 }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
