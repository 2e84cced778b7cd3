package state

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/internal/buildinfo"
	"github.com/graphprobe/graphprobe/internal/hostsys"
	"github.com/graphprobe/graphprobe/probe"
)

// ObserveOptions say where to look.
type ObserveOptions struct {
	// DataRoot is the data-root as configured (absolute).
	DataRoot string
	// DockerSocket is the daemon socket (default /var/run/docker.sock).
	DockerSocket string
}

// Observe is the cheap probe of a rerun: uname, machine-id, statfs and
// stat of the data-root, its mountinfo line, and stat of the binaries,
// device nodes and module indexes the decisive facts were derived from.
// No test mount, no module load, no command runs. An error means the
// rerun cannot be judged cheaply; the caller then proves in full, which
// reports the problem properly.
func Observe(opts ObserveOptions) (Observation, error) {
	var o Observation
	o.Files = map[string]string{}
	o.Graphprobe = build()

	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return o, fmt.Errorf("uname: %w", err)
	}
	o.KernelRelease = unix.ByteSliceToString(u.Release[:])
	o.KernelBuild = unix.ByteSliceToString(u.Version[:])
	o.MachineID = machineID()

	if err := observeDataRoot(&o, opts.DataRoot); err != nil {
		return o, err
	}

	// What the driver facts read besides the data-root.
	if bin, err := exec.LookPath("dockerd"); err == nil {
		o.Files["dockerd"] = bin + " " + identity(bin)
	} else {
		o.Files["dockerd"] = absent
	}
	host := probe.LiveHost()
	for _, name := range []string{"fuse-overlayfs", "zfs"} {
		if bin, ok := host.LookPath(name); ok {
			o.Files[name] = bin + " " + identity(bin)
		} else {
			o.Files[name] = absent
		}
	}
	for _, p := range []string{"/dev/fuse", "/dev/zfs", "/dev/mapper/control"} {
		o.Files[p] = identity(p)
	}
	if rel := o.KernelRelease; rel != "" && !strings.ContainsAny(rel, "/") {
		// depmod rewrites these when a module (aufs-dkms, zfs-dkms) is
		// installed for the running kernel.
		for _, f := range []string{"modules.dep", "modules.builtin"} {
			p := path.Join("/lib/modules", rel, f)
			o.Files[p] = identity(p)
		}
	}

	sock := opts.DockerSocket
	if sock == "" {
		sock = "/var/run/docker.sock"
		if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
			sock = strings.TrimPrefix(h, "unix://")
		}
	}
	if c, err := net.DialTimeout("unix", sock, 100*time.Millisecond); err == nil {
		o.DockerRunning = true
		c.Close()
	}
	return o, nil
}

func build() Build {
	bi := buildinfo.Get()
	b := Build{Version: bi.Version, Commit: bi.Commit, Executable: absent}
	if exe, err := os.Executable(); err == nil {
		b.Executable = identity(exe)
	}
	return b
}

// identity is what changes when a file is replaced or modified: a package
// upgrade renames a new inode into place; an in-place edit moves mtime and
// ctime. Device nodes are named by their device number.
func identity(p string) string {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return absent
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR, unix.S_IFBLK:
		return fmt.Sprintf("dev %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return fmt.Sprintf("dev=%d:%d ino=%d size=%d mtime=%d ctime=%d", unix.Major(st.Dev), unix.Minor(st.Dev),
		st.Ino, st.Size, st.Mtim.Nano(), st.Ctim.Nano())
}

func machineID() string {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(p); err == nil {
			if id := strings.TrimSpace(string(b)); id != "" {
				return id
			}
		}
	}
	return ""
}

// observeDataRoot resolves the data-root as the probe does (its nearest
// existing directory, symlinks followed) and identifies the filesystem.
func observeDataRoot(o *Observation, dataRoot string) error {
	dr := path.Clean(dataRoot)
	if !path.IsAbs(dr) {
		return fmt.Errorf("data-root %q: must be an absolute path", dataRoot)
	}
	o.DataRoot.Path = dr
	cur := dr
	for {
		st, err := os.Stat(cur)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("data-root %s: %s is not a directory", dr, cur)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || cur == "/" {
			return fmt.Errorf("data-root %s: %w", dr, err)
		}
		cur = path.Dir(cur)
	}
	o.Exists = cur == dr
	real, err := filepath.EvalSymlinks(cur)
	if err != nil {
		return fmt.Errorf("data-root %s: %w", dr, err)
	}
	o.ProbedPath = real

	sfs, err := hostsys.Statfs(real)
	if err != nil {
		return fmt.Errorf("statfs %s: %w", real, errors.Unwrap(err))
	}
	o.DataRoot.Filesystem = sfs.Name
	o.DataRoot.Magic = fmt.Sprintf("0x%X", uint32(sfs.Magic))
	o.DataRoot.FSID = sfs.ID
	if sfs.Inodes > 0 || sfs.InodesFree > 0 {
		o.InodesTotal, o.InodesFree = sfs.Inodes, sfs.InodesFree
	}
	var st unix.Stat_t
	if err := unix.Stat(real, &st); err != nil {
		return fmt.Errorf("stat %s: %w", real, err)
	}
	o.DataRoot.Device = fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))

	data, err := hostsys.ReadMountinfo()
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	mounts, err := probe.ParseMountinfo(bytes.NewReader(data))
	if err != nil {
		return err
	}
	// The longest mount point holding the path; a later line at the same
	// point shadows an earlier one.
	best := -1
	for i, m := range mounts {
		mp := path.Clean(m.Mountpoint)
		if mp == "/" || real == mp || strings.HasPrefix(real, mp+"/") {
			if best < 0 || len(mp) >= len(path.Clean(mounts[best].Mountpoint)) {
				best = i
			}
		}
	}
	dev := uint64(st.Dev)
	if best >= 0 {
		m := mounts[best]
		o.DataRoot.MountPoint, o.DataRoot.MountSource, o.DataRoot.MountType = m.Mountpoint, m.Source, m.FSType
		o.DataRoot.MountOptions, o.DataRoot.SuperOptions = m.Options, m.VFSOptions
		// btrfs gives its files an anonymous st_dev: the block device
		// mounted names the filesystem.
		var bst unix.Stat_t
		if strings.HasPrefix(m.Source, "/dev/") && unix.Stat(m.Source, &bst) == nil && bst.Mode&unix.S_IFMT == unix.S_IFBLK {
			dev = uint64(bst.Rdev)
		}
	}
	o.DataRoot.UUID = uuidOf(dev)

	o.Prior = probe.PriorDrivers(dr, drivers.PriorDirs())
	return nil
}

// uuidOf finds the filesystem UUID udev lists for a block device.
func uuidOf(dev uint64) string {
	const dir = "/dev/disk/by-uuid"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		var st unix.Stat_t
		if unix.Stat(filepath.Join(dir, e.Name()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK && uint64(st.Rdev) == dev {
			return e.Name()
		}
	}
	return ""
}
