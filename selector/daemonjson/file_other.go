//go:build !linux

package daemonjson

import (
	"errors"
	"io/fs"
)

var errNotLinux = errors.New("daemon.json is written on Linux only")

// Open is Linux-only.
func Open(path string) (*File, error) { return nil, errNotLinux }

// Update is Linux-only.
func (f *File) Update(content []byte) (WriteResult, error) { return WriteResult{}, errNotLinux }

// SaveReport is Linux-only.
func (f *File) SaveReport(report []byte) (string, error) { return "", errNotLinux }

// WriteFileAtomic is Linux-only.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) error { return errNotLinux }
