package probe

import (
	"fmt"
	"path"
	"path/filepath"

	"github.com/graphprobe/graphprobe/internal/hostsys"
)

func (p *prober) readDataRoot() {
	dr := &p.r.DataRoot
	dr.Path = path.Clean(p.opts.DataRoot)
	probed, exists, _ := p.dataRootProbePath(dr.Path)
	dr.Exists = exists
	if p.h.Live() {
		// dockerd follows a symlinked data-root; so do we.
		if real, err := filepath.EvalSymlinks(probed); err == nil {
			probed = real
		}
	}
	dr.ProbedPath = probed
	dr.Filesystem = "unknown"
	if m := mountFor(p.mounts, probed); m != nil {
		dr.MountPoint = m.Mountpoint
		dr.MountSource = m.Source
		dr.MountOptions = m.VFSOptions
		dr.Filesystem = hostsys.MountTypeName(m.FSType)
	}
	if p.h.Live() {
		if fs, err := hostsys.Statfs(probed); err != nil {
			p.warn("%v", err)
		} else {
			dr.Filesystem = fs.Name
			dr.Magic = fmt.Sprintf("0x%X", fs.Magic)
			dr.InodesTotal, dr.InodesFree = fs.Inodes, fs.InodesFree
		}
	} else if c := p.capture; c != nil {
		if c.DataRoot.Filesystem != "" {
			dr.Filesystem = c.DataRoot.Filesystem
		}
		dr.Magic = c.DataRoot.Magic
		dr.InodesTotal, dr.InodesFree = c.DataRoot.InodesTotal, c.DataRoot.InodesFree
		if c.DataRoot.DType != nil {
			dr.DType = c.DataRoot.DType
			p.dTypeMethod = MethodCaptured
		}
	}
	dr.OnOverlay = dr.Filesystem == "overlayfs"
}
