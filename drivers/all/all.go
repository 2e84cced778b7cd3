// Package all registers every storage driver graphprobe implements; import
// it for its side effect.
package all

import (
	_ "github.com/graphprobe/graphprobe/drivers/aufs"
	_ "github.com/graphprobe/graphprobe/drivers/btrfs"
	_ "github.com/graphprobe/graphprobe/drivers/fuseoverlayfs"
	_ "github.com/graphprobe/graphprobe/drivers/overlay"
	_ "github.com/graphprobe/graphprobe/drivers/overlay2"
	_ "github.com/graphprobe/graphprobe/drivers/vfs"
)
