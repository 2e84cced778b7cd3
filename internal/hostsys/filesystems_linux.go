package hostsys

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// HaveFilesystem reports whether the running kernel has registered the
// filesystem type name (built in, or from a loaded module), as listed in
// /proc/filesystems ("nodev\tsysfs", "\text4").
//
// The probe parses that file too, but from a host that may be a capture,
// with the checks a file of unknown origin needs; a driver asks only this
// one question of the kernel it runs on.
func HaveFilesystem(name string) (bool, error) {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false, fmt.Errorf("read /proc/filesystems: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 0:
		case len(fields) == 1 && fields[0] == name, len(fields) == 2 && fields[0] == "nodev" && fields[1] == name:
			return true, nil
		case len(fields) > 2 || len(fields) == 2 && fields[0] != "nodev":
			return false, fmt.Errorf("read /proc/filesystems: line %d: want [nodev] NAME, got %q", n, truncate(sc.Text(), 64))
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read /proc/filesystems: %w", err)
	}
	return false, nil
}
