package hostsys

// DTypeHint is the remedy for a filesystem without d_type, by Docker's
// name for it. It sits beside SupportsDType so that the probe's fact, the
// drivers' init check and the selector's rule give the same advice.
func DTypeHint(fs string) string {
	switch fs {
	case "xfs":
		return "reformat the filesystem with ftype=1 (mkfs.xfs -n ftype=1), or put the data-root on another filesystem"
	case "extfs":
		return "enable it on the unmounted filesystem with tune2fs -O filetype followed by e2fsck -fD, or reformat it"
	}
	return "put the data-root on a filesystem with d_type support (ext4, xfs with ftype=1, btrfs)"
}
