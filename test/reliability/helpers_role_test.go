package reliability

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// runHelper runs this test binary as a helper process (see TestMain), for
// tests that need a second process with other credentials.
func runHelper(role string, args []string) int {
	switch role {
	case "swap-scratch":
		if len(args) != 2 {
			fmt.Fprintln(os.Stderr, "usage: swap-scratch DIR TARGET")
			return 2
		}
		if err := swapScratch(args[0], args[1]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	default:
		fmt.Fprintf(os.Stderr, "unknown helper role %q\n", role)
		return 2
	}
}

// swapScratch is an attacker who can rename entries in dir (it owns dir,
// or dir is writable by all without the sticky bit): whenever a scratch dir
// appears in dir, it moves it aside and puts a symlink to target in its
// place. It prints "ready" once it watches, and "swapped NAME" for every
// swap; it runs until killed.
func swapScratch(dir, target string) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return err
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "ready")
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := string(bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)], "\x00"))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if !strings.HasPrefix(name, ".graphprobe-") || strings.HasSuffix(name, ".moved") || ev.Mask&unix.IN_ISDIR == 0 {
				continue
			}
			p := filepath.Join(dir, name)
			if err := unix.Rename(p, p+".moved"); err != nil {
				fmt.Fprintf(os.Stderr, "rename %s: %v\n", name, err)
				continue
			}
			if err := unix.Symlink(target, p); err != nil {
				fmt.Fprintf(os.Stderr, "symlink %s: %v\n", name, err)
				continue
			}
			fmt.Fprintf(os.Stderr, "swapped %s\n", name)
		}
	}
}
