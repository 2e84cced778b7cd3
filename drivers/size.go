package drivers

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseSize reads a size as dockerd's storage options take it: a number
// with an optional binary unit, b, k, m, g, t or p, with or without a
// trailing "b" or "ib" ("10G", "512MiB", "1024k", "2048").
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "ib"), "b")
	mult := int64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("kmgtp", t[n-1]); i >= 0 {
			mult = int64(1) << (10 * (i + 1))
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit such as 10G", s)
	}
	return int64(v * float64(mult)), nil
}
