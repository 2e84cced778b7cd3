//go:build linux && (mips || mipsle || mips64 || mips64le || ppc || ppc64 || ppc64le || sparc64)

package btrfs

// mips, powerpc and sparc encode ioctl directions in three bits, with
// _IOC_WRITE = 4.
const (
	iocWrite    = 4
	iocDirShift = 29
)
