package probe

import (
	"fmt"
	"io"

	"github.com/moby/sys/mountinfo"
)

// ParseMountinfo reads /proc/<pid>/mountinfo.
func ParseMountinfo(r io.Reader) ([]*mountinfo.Info, error) {
	mounts, err := mountinfo.GetMountsFromReader(io.LimitReader(r, maxHostFile), nil)
	if err != nil {
		return nil, fmt.Errorf("parse mountinfo: %w", err)
	}
	return mounts, nil
}
