package version

import (
	"cmp"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Docker is a Docker engine release, compared numerically: year.month.patch
// for 17.03–20.10, major.minor.patch from 23.0. The zero value means "not
// known", which callers that need a release treat as the newest.
type Docker struct {
	Major, Minor, Patch int
}

// ParseDocker reads a release as people and packages write it: "20.10.24",
// "17.03", "17.03.2-ce", "25.0.3", "v24.0.7", "29", "19.03.7+dfsg1".
// Whatever follows the numbers after '-', '+', '~' or a space (a build or
// packaging suffix) is ignored.
func ParseDocker(s string) (Docker, error) {
	orig := s
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "v"))
	if i := strings.IndexAny(s, "-+~ "); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if s == "" || len(parts) > 3 {
		return Docker{}, fmt.Errorf("parse docker version %q: want MAJOR[.MINOR[.PATCH]], such as 20.10.24", orig)
	}
	var n [3]int
	for i, p := range parts {
		// Four digits bound every part, so that no input overflows.
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || len(p) > 4 {
			return Docker{}, fmt.Errorf("parse docker version %q: want MAJOR[.MINOR[.PATCH]], such as 20.10.24", orig)
		}
		n[i] = v
	}
	return Docker{n[0], n[1], n[2]}, nil
}

// MustDocker parses a release known to be valid, such as a constant.
func MustDocker(s string) Docker {
	v, err := ParseDocker(s)
	if err != nil {
		panic(err)
	}
	return v
}

var dockerdOutput = regexp.MustCompile(`(?i)^Docker version ([0-9]+(?:\.[0-9]+){1,2})`)

// ParseDockerd reads the output of `dockerd --version` ("Docker version
// 20.10.24+dfsg1, build 5d6db84", "Docker version 17.03.2-ce, build
// f5ec1e2"); only its first line counts.
func ParseDockerd(out string) (Docker, error) {
	line := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	m := dockerdOutput.FindStringSubmatch(line)
	if m == nil {
		return Docker{}, fmt.Errorf("parse docker version: unexpected output %q", truncate(line, 80))
	}
	v, err := ParseDocker(m[1])
	if err != nil {
		return Docker{}, fmt.Errorf("parse docker version: unexpected output %q", truncate(line, 80))
	}
	return v, nil
}

// String writes the release as Docker does: the month of the year-based
// releases (17.03–20.10) with two digits.
func (v Docker) String() string {
	if v.Major < 23 {
		return fmt.Sprintf("%d.%02d.%d", v.Major, v.Minor, v.Patch)
	}
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Line is the release line ("20.10", "25.0"), as release notes name it.
func (v Docker) Line() string {
	if v.Major < 23 {
		return fmt.Sprintf("%d.%02d", v.Major, v.Minor)
	}
	return fmt.Sprintf("%d.%d", v.Major, v.Minor)
}

// IsZero reports whether v is the zero value (no release known).
func (v Docker) IsZero() bool { return v == Docker{} }

// Compare returns -1, 0 or +1 as v is older than, the same as or newer
// than o.
func (v Docker) Compare(o Docker) int {
	return cmp.Or(cmp.Compare(v.Major, o.Major), cmp.Compare(v.Minor, o.Minor), cmp.Compare(v.Patch, o.Patch))
}

// Less orders releases.
func (v Docker) Less(o Docker) bool { return v.Compare(o) < 0 }

// AtLeast is !v.Less(o).
func (v Docker) AtLeast(o Docker) bool { return v.Compare(o) >= 0 }
