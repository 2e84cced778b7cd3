//go:build linux && !(mips || mipsle || mips64 || mips64le || ppc || ppc64 || ppc64le || sparc64)

package btrfs

// The generic ioctl encoding (asm-generic/ioctl.h): direction in the top
// two bits, _IOC_WRITE = 1.
const (
	iocWrite    = 1
	iocDirShift = 30
)
