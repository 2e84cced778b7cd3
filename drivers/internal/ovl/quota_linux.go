package ovl

import (
	"fmt"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// CheckProjectQuota checks what overlay2.size needs: per-container size
// limits are xfs project quotas, so the backing filesystem must be xfs
// mounted with project quota enforcement (pquota or prjquota), as dockerd
// refuses the option otherwise.
func CheckProjectQuota(driver, dir, backingFS string) error {
	if backingFS != "xfs" {
		return fmt.Errorf("per-container size limits need xfs project quotas, and the data-root is on %s: put it on xfs mounted with -o pquota, or drop the option", backingFS)
	}
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(dir))
	if err != nil {
		return fmt.Errorf("read the mount table: %w", err)
	}
	var m *mountinfo.Info
	for _, c := range mounts {
		if m == nil || len(c.Mountpoint) > len(m.Mountpoint) {
			m = c
		}
	}
	if m == nil {
		return fmt.Errorf("find the mount of %s", dir)
	}
	return projectQuotaOn(m.Mountpoint, m.Source, m.VFSOptions+","+m.Options)
}

// projectQuotaOn reads an xfs mount's options: pquota or prjquota enforce
// project quotas, pqnoenforce only accounts them.
func projectQuotaOn(mountpoint, source, options string) error {
	for _, o := range strings.Split(options, ",") {
		switch o {
		case "prjquota", "pquota":
			return nil
		case "pqnoenforce":
			return fmt.Errorf("%s (xfs on %s) accounts project quotas without enforcing them: mount it with -o pquota", mountpoint, source)
		}
	}
	return fmt.Errorf("%s (xfs on %s) is mounted without project quotas: mount it with -o pquota (a remount cannot turn them on), or drop the option", mountpoint, source)
}
