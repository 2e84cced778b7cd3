//go:build !linux

package state

import "errors"

var errNotLinux = errors.New("the proof record is kept on Linux only")

// ObserveOptions say where to look.
type ObserveOptions struct {
	DataRoot     string
	DockerSocket string
}

// Observe is Linux-only.
func Observe(ObserveOptions) (Observation, error) { return Observation{}, errNotLinux }

// ErrNoRecord is a state directory without a record.
var ErrNoRecord = errors.New("no record")

// Path is the record's path in dir.
func Path(dir string) string { return dir + "/" + FileName }

// Load is Linux-only.
func Load(string) (*Record, error) { return nil, errNotLinux }

// Save is Linux-only.
func Save(string, *Record) error { return errNotLinux }

// Remove is Linux-only.
func Remove(string) error { return nil }
