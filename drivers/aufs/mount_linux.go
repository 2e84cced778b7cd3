package aufs

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/internal/hostsys"
)

// xinoOpt puts aufs's external inode number table on tmpfs, where dockerd
// puts it.
const xinoOpt = "xino=/dev/shm/aufs.xino"

// dataOverhead is what dockerd keeps free in a page of mount data for the
// options after the branches (",dio,xino=/dev/shm/aufs.xino" and an
// SELinux label's wrapping), plus ",dirperm1" when aufs takes it. The
// same limit bounds each remount's "append:" data.
const dataOverhead = 54

// mountData splits the branches of a union into the data of the first
// mount(2) and of the MS_REMOUNT calls that append what did not fit, each
// within a page: rw is the layer's diff, ro its parents' diffs, nearest
// first. The first mount's options are dockerd's since 1.5: dio (direct
// I/O through to the branches), the xino file, and dirperm1 when aufs
// takes it.
func mountData(rw string, ro []string, dirperm1 bool, pageSize int) (first string, appends []string, err error) {
	limit := pageSize - dataOverhead
	opts := ",dio," + xinoOpt
	if dirperm1 {
		limit -= len(",dirperm1")
		opts += ",dirperm1"
	}
	var b strings.Builder
	b.WriteString("br:" + rw + "=rw")
	if b.Len() > limit {
		return "", nil, fmt.Errorf("aufs branch %s does not fit in a page of mount data", rw)
	}
	i := 0
	for ; i < len(ro); i++ {
		branch := ":" + ro[i] + "=ro+wh"
		if b.Len()+len(branch) > limit {
			break
		}
		b.WriteString(branch)
	}
	first = b.String() + opts
	for i < len(ro) {
		b.Reset()
		for ; i < len(ro); i++ {
			branch := "append:" + ro[i] + "=ro+wh,"
			if b.Len()+len(branch) > limit {
				break
			}
			b.WriteString(branch)
		}
		if b.Len() == 0 {
			return "", nil, fmt.Errorf("aufs branch %s does not fit in a page of mount data", ro[i])
		}
		appends = append(appends, b.String())
	}
	return first, appends, nil
}

// mount mounts the union of rw and ro on target: one mount(2), then one
// remount per further page of branches. A failed remount unmounts the
// union, so that no half-stacked layer stays visible.
func (d *Driver) mount(target, rw string, ro []string) error {
	first, appends, err := mountData(rw, ro, d.dirperm1, d.pageSize)
	if err != nil {
		return fmt.Errorf("mount aufs on %s: %w", target, err)
	}
	if err := d.mounter.Mount("none", target, "aufs", 0, first); err != nil {
		return &hostsys.MountError{Op: "mount", Source: "none", Target: target, FSType: "aufs", Data: first, Err: err}
	}
	for _, data := range appends {
		if err := d.mounter.Mount("none", target, "aufs", unix.MS_REMOUNT, data); err != nil {
			_ = d.unmount(target)
			return &hostsys.MountError{Op: "remount", Source: "none", Target: target, FSType: "aufs", Flags: unix.MS_REMOUNT, Data: data, Err: err}
		}
	}
	return nil
}

// unmount detaches target, as dockerd does; a target that is not mounted
// (EINVAL) is not an error. With real mounts, aufs's pseudo-links are
// flushed to the branches first with auplink when it is installed.
func (d *Driver) unmount(target string) error {
	if d.real {
		if auplink, err := exec.LookPath("auplink"); err == nil {
			_ = exec.Command(auplink, target, "flush").Run()
		}
	}
	err := d.mounter.Unmount(target, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) {
		return &hostsys.MountError{Op: "unmount", Target: target, FSType: "aufs", Flags: unix.MNT_DETACH, Err: err}
	}
	return nil
}

// sysMounter is mount(2) and umount2(2) themselves.
type sysMounter struct{}

func (sysMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

func (sysMounter) Unmount(target string, flags int) error {
	return unix.Unmount(target, flags)
}
