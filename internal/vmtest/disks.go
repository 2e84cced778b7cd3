package vmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Disk is a raw filesystem image made once and kept in the cache. VMs attach
// it with snapshot=on: the guest may write, the image never changes.
type Disk struct {
	Name string   // the mount point name inside the VM, e.g. "ext4-nodtype"
	FS   string   // the type to mount, e.g. "ext4"
	Size string   // truncate size
	Mkfs []string // the mkfs command; the image path is appended
	// Fallback is tried when Mkfs fails (an older mkfs without an option).
	Fallback []string
	// DType is whether the filesystem records file types in directories.
	DType bool
}

// StorageDisks are the filesystems Docker's data-root is found on, with
// and without d_type. ext4 leaves out the features older kernels refuse
// (orphan_file, metadata_csum_seed: 5.10 cannot mount them).
var StorageDisks = []Disk{
	{Name: "ext4", FS: "ext4", Size: "64M", DType: true,
		Mkfs:     []string{"mkfs.ext4", "-q", "-F", "-O", "^orphan_file,^metadata_csum_seed"},
		Fallback: []string{"mkfs.ext4", "-q", "-F"}},
	{Name: "xfs", FS: "xfs", Size: "320M", DType: true, Mkfs: []string{"mkfs.xfs", "-q", "-f"}},
	{Name: "btrfs", FS: "btrfs", Size: "160M", DType: true, Mkfs: []string{"mkfs.btrfs", "-q", "-f"}},
	{Name: "ext4-nodtype", FS: "ext4", Size: "64M", DType: false,
		Mkfs:     []string{"mkfs.ext4", "-q", "-F", "-O", "^filetype,^orphan_file,^metadata_csum_seed"},
		Fallback: []string{"mkfs.ext4", "-q", "-F", "-O", "^filetype"}},
	// A V4 xfs (crc=0), the only kind that can have ftype=0; kernels built
	// without CONFIG_XFS_SUPPORT_V4 refuse to mount it.
	{Name: "xfs-ftype0", FS: "xfs", Size: "320M", DType: false, Mkfs: []string{"mkfs.xfs", "-q", "-f", "-m", "crc=0", "-n", "ftype=0"}},
}

// Image returns the disk's image, making it on first use.
func (d Disk) Image(ctx context.Context) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	img := filepath.Join(cache, "disks", d.Name+".img")
	if _, err := os.Stat(img); err == nil {
		return img, nil
	}
	if err := os.MkdirAll(filepath.Dir(img), 0o755); err != nil {
		return "", err
	}
	tmp := img + ".tmp"
	var last error
	for _, mk := range [][]string{d.Mkfs, d.Fallback} {
		if mk == nil {
			continue
		}
		os.Remove(tmp)
		if out, err := exec.CommandContext(ctx, "truncate", "-s", d.Size, tmp).CombinedOutput(); err != nil {
			return "", fmt.Errorf("make %s: %w: %s", tmp, err, out)
		}
		out, err := exec.CommandContext(ctx, mk[0], append(mk[1:], tmp)...).CombinedOutput()
		if err == nil {
			return img, os.Rename(tmp, img)
		}
		last = fmt.Errorf("make the %s image: %s: %w: %s (install e2fsprogs, xfsprogs, btrfs-progs)", d.Name, mk[0], err, out)
	}
	os.Remove(tmp)
	return "", last
}
