package daemonjson

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// Names of the files graphprobe keeps beside daemon.json's final target.
const (
	BackupSuffix = ".graphprobe-backup"
	ReportSuffix = ".graphprobe-report.json"
	tempTag      = ".graphprobe-"
	tempSuffix   = ".tmp"
)

// DefaultMode is the mode of a daemon.json that graphprobe creates.
const DefaultMode fs.FileMode = 0o644

// File is a daemon.json on disk, read by Open and replaced by Update.
type File struct {
	// Path is the path as given.
	Path string
	// Target is the file that is read and replaced: Path with symlinks
	// resolved, so that a linked daemon.json stays a link.
	Target string
	// Exists is false when there is no file yet; Content is then nil.
	Exists  bool
	Content []byte
	// Mode, UID and GID are kept on replace; for a new file they are
	// DefaultMode and the directory's owner.
	Mode     fs.FileMode
	UID, GID int

	dev, ino uint64
	// linked is true when a symlink (of the file or of a directory above
	// it) leads from Path to Target.
	linked bool
}

// WriteResult says what Update did.
type WriteResult struct {
	// Path is the file written (the symlink's target for a linked file).
	Path string `json:"path"`
	// Written is false when the content was already up to date.
	Written bool `json:"written"`
	// Backup is the previous content's copy, "" when there was no file.
	Backup string `json:"backup,omitempty"`
	// RemovedTemps are temporary files of killed runs that were removed.
	RemovedTemps []string `json:"removedTemps,omitempty"`
}

// BackupPath is where Update keeps the previous content of target.
func BackupPath(target string) string { return target + BackupSuffix }

// ReportPath is where SaveReport writes the run's report for target.
func ReportPath(target string) string { return target + ReportSuffix }

// label names the file for messages: the path, and where it leads when it
// is a symlink.
func (f *File) label() string {
	if f.linked {
		return fmt.Sprintf("%s (symlink to %s)", f.Path, f.Target)
	}
	return f.Path
}

// tempName is the name of a temporary file for base in its directory. The
// pid lets a later run tell a killed run's leftovers from a live run's.
func tempName(base string, pid int, rnd string) string {
	return "." + base + tempTag + strconv.Itoa(pid) + "." + rnd + tempSuffix
}

// tempPID returns the pid in a temporary file name made by tempName for
// base, or false when name is not one.
func tempPID(base, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, "."+base+tempTag)
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, tempSuffix)
	if !ok {
		return 0, false
	}
	pidStr, rnd, ok := strings.Cut(rest, ".")
	if !ok || rnd == "" || strings.ContainsAny(rnd, "./") {
		return 0, false
	}
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}
