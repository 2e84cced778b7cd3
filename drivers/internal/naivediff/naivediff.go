package naivediff

import (
	"fmt"
	"io"
	"sync"

	"github.com/graphprobe/graphprobe/drivers/archive"
)

// Mounter is the part of a driver the naive diff needs.
type Mounter interface {
	Get(id string) (string, error)
	Put(id string) error
}

// Diff exports layer id's changes against parent ("" for none). The layer
// stays mounted until the stream is closed.
func Diff(d Mounter, id, parent string) (_ io.ReadCloser, retErr error) {
	layer, err := d.Get(id)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			d.Put(id)
		}
	}()
	parentDir := ""
	if parent != "" {
		if parentDir, err = d.Get(parent); err != nil {
			return nil, err
		}
		// The comparison is done when ExportChanges returns; only the
		// layer is read while the stream is.
		defer d.Put(parent)
	}
	rc, err := archive.ExportChanges(layer, parentDir)
	if err != nil {
		return nil, err
	}
	return &putOnClose{ReadCloser: rc, put: func() error { return d.Put(id) }}, nil
}

// Apply mounts layer id and applies diff through the mount, whiteouts
// deleting what the layers below have, as any writer would.
func Apply(d Mounter, id string, diff io.Reader) (int64, error) {
	root, err := d.Get(id)
	if err != nil {
		return 0, err
	}
	n, err := archive.Apply(root, diff, archive.ApplyOptions{Whiteouts: archive.WhiteoutNone})
	if perr := d.Put(id); err == nil && perr != nil {
		err = fmt.Errorf("release layer %s after applying its diff: %w", id, perr)
	}
	return n, err
}

type putOnClose struct {
	io.ReadCloser
	once sync.Once
	put  func() error
}

func (p *putOnClose) Close() error {
	err := p.ReadCloser.Close()
	p.once.Do(func() {
		if perr := p.put(); err == nil {
			err = perr
		}
	})
	return err
}
