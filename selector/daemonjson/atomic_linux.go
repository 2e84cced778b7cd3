package daemonjson

import (
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with data exactly as Update replaces
// daemon.json, for the other small files graphprobe keeps (the proof
// record): the directory is opened with O_NOFOLLOW and refused when every
// user can write it; a temporary file is made there with O_EXCL|O_NOFOLLOW
// and mode 0600, written, given mode and the caller's owner, fsynced and
// renamed over path; then the directory is fsynced. A crash leaves the old
// file or the new one, never a torn one. Temporary files of killed runs
// beside path are removed first.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) error {
	d, err := openDir(filepath.Dir(path), path)
	if err != nil {
		return err
	}
	defer d.close()
	base := filepath.Base(path)
	d.removeStaleTemps(base)
	if err := d.writeAtomic(base, base, data, mode, os.Geteuid(), os.Getegid(), path); err != nil {
		return err
	}
	return d.sync()
}
