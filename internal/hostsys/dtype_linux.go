package hostsys

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// SupportsDType creates a file in dir (which must be writable, on the
// filesystem under test) and reads dir back with getdents: a filesystem
// without d_type (ext4 -O ^filetype, xfs ftype=0) returns DT_UNKNOWN.
func SupportsDType(dir string) (bool, error) {
	f, err := os.CreateTemp(dir, "d_type-")
	if err != nil {
		return false, fmt.Errorf("check d_type: %w", err)
	}
	name := filepath.Base(f.Name())
	f.Close()
	defer os.Remove(f.Name())

	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	buf := make([]byte, 16<<10)
	for {
		n, err := unix.Getdents(dfd, buf)
		if err != nil {
			return false, &os.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n <= 0 {
			break
		}
		for off := 0; off < n; {
			reclen, typ, got := parseDirent(buf[off:n])
			if reclen == 0 {
				return false, errors.New("check d_type: getdents returned a malformed record")
			}
			if got == name {
				return typ != unix.DT_UNKNOWN, nil
			}
			off += reclen
		}
	}
	return false, fmt.Errorf("check d_type: %s not found by getdents in %s", name, dir)
}

// parseDirent reads one linux_dirent64 (ino u64, off s64, reclen u16,
// type u8, name), returning 0 for a malformed record.
func parseDirent(b []byte) (reclen int, typ uint8, name string) {
	const nameOff = 19
	if len(b) < nameOff {
		return 0, 0, ""
	}
	reclen = int(binary.NativeEndian.Uint16(b[16:18]))
	if reclen < nameOff || reclen > len(b) {
		return 0, 0, ""
	}
	nb := b[nameOff:reclen]
	if i := bytes.IndexByte(nb, 0); i >= 0 {
		nb = nb[:i]
	}
	return reclen, b[18], string(nb)
}

// CountDTypes reads dir's entries without writing (one getdents batch is
// evidence enough) and counts those, besides "." and "..", whose type the
// filesystem reports and those it leaves DT_UNKNOWN. It is the d_type
// check for a directory that SupportsDType may not write to.
func CountDTypes(dir string) (known, unknown int, err error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 8<<10)
	n, err := unix.Getdents(fd, buf)
	if err != nil {
		return 0, 0, &os.PathError{Op: "getdents", Path: dir, Err: err}
	}
	for off := 0; off < n; {
		reclen, typ, name := parseDirent(buf[off:n])
		if reclen == 0 {
			break
		}
		if name != "." && name != ".." {
			if typ == unix.DT_UNKNOWN {
				unknown++
			} else {
				known++
			}
		}
		off += reclen
	}
	return known, unknown, nil
}
