package hostsys

import "strings"

// fsMagicNames are filesystem magics (statfs f_type), named as Docker
// names them in "Backing Filesystem".
var fsMagicNames = map[int64]string{
	0xEF53:     "extfs",
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0x01021994: "tmpfs",
	0x794C7630: "overlayfs",
	0x61756673: "aufs",
	0x2FC12FC1: "zfs",
	0xF15F:     "ecryptfs",
	0x6969:     "nfs",
	0x65735546: "fuse",
	0x73717368: "squashfs",
	0x858458F6: "ramfs",
	0x5346544E: "ntfs",
	0xFF534D42: "cifs",
	0x01021997: "v9fs",
	0xE0F5E1E2: "erofs",
	0x2011BAB0: "exfat",
	0x4D44:     "vfat",
	0xF2F52010: "f2fs",
}

// FilesystemName gives Docker's name for a statfs magic, or "0x<hex>".
func FilesystemName(magic int64) string {
	if n, ok := fsMagicNames[magic]; ok {
		return n
	}
	return "0x" + strings.ToUpper(formatHex(magic))
}

func formatHex(v int64) string {
	const digits = "0123456789abcdef"
	u := uint64(v) & 0xFFFFFFFF
	if u == 0 {
		return "0"
	}
	var b []byte
	for u > 0 {
		b = append([]byte{digits[u%16]}, b...)
		u /= 16
	}
	return string(b)
}

// MountTypeName maps a mountinfo filesystem type to Docker's name, for a
// filesystem known only from the mount table (a captured host).
func MountTypeName(fstype string) string {
	switch {
	case fstype == "ext2" || fstype == "ext3" || fstype == "ext4":
		return "extfs"
	case fstype == "overlay":
		return "overlayfs"
	case fstype == "nfs" || fstype == "nfs4":
		return "nfs"
	case fstype == "fuse" || fstype == "fuseblk" || strings.HasPrefix(fstype, "fuse."):
		return "fuse"
	case fstype == "9p":
		return "v9fs"
	case fstype == "":
		return "unknown"
	}
	return fstype
}
