package dockertest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Layers is a container's stack of graph-driver layers as dockerd recorded
// it under <data-root>/image/<driver>/layerdb. The ids are the driver's own
// directory names (overlay2/<id>, overlay/<id>), which is what a graph
// driver opened on dockerd's home is asked to Get.
type Layers struct {
	// Driver is the graph driver whose layerdb holds the container.
	Driver string
	// Container is the full container id.
	Container string
	// RW is the container's read-write layer (layerdb mount-id).
	RW string
	// Init is the layer dockerd puts between the image and RW with the
	// container's /etc/hosts, /etc/resolv.conf, /dev mount points
	// (layerdb init-id); "" when the container has none.
	Init string
	// Image are the image's layers, topmost first (cache-id of each chain
	// id).
	Image []string
}

// Chain returns every layer id from the container's read-write layer down
// to the image's base layer.
func (l Layers) Chain() []string {
	out := []string{l.RW}
	if l.Init != "" {
		out = append(out, l.Init)
	}
	return append(out, l.Image...)
}

// ReadLayers reads container id's layer chain from a stopped or running
// dockerd's data-root. The driver is the one whose layerdb knows the
// container, so the chain can be read without asking the daemon.
func ReadLayers(dataRoot, containerID string) (Layers, error) {
	l := Layers{Container: containerID}
	imageDir := filepath.Join(dataRoot, "image")
	ents, err := os.ReadDir(imageDir)
	if err != nil {
		return l, fmt.Errorf("read layers of container %s: %w", containerID, err)
	}
	var mounts string
	for _, e := range ents {
		m := filepath.Join(imageDir, e.Name(), "layerdb", "mounts", containerID)
		if _, err := os.Stat(m); err == nil {
			if mounts != "" {
				return l, fmt.Errorf("read layers of container %s: layerdb of both %s and %s hold it", containerID, l.Driver, e.Name())
			}
			l.Driver, mounts = e.Name(), m
		}
	}
	if mounts == "" {
		return l, fmt.Errorf("read layers of container %s: no %s/*/layerdb/mounts/%s", containerID, imageDir, containerID)
	}
	if l.RW, err = readID(filepath.Join(mounts, "mount-id")); err != nil {
		return l, err
	}
	if l.Init, err = readID(filepath.Join(mounts, "init-id")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return l, err
	}
	chain, err := readID(filepath.Join(mounts, "parent"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return l, nil // a container of an empty image
		}
		return l, err
	}
	layerdb := filepath.Join(imageDir, l.Driver, "layerdb")
	seen := map[string]bool{}
	for chain != "" {
		if seen[chain] {
			return l, fmt.Errorf("read layers of container %s: layer chain loops at %s", containerID, chain)
		}
		seen[chain] = true
		dir := filepath.Join(layerdb, strings.Replace(chain, ":", string(filepath.Separator), 1))
		id, err := readID(filepath.Join(dir, "cache-id"))
		if err != nil {
			return l, err
		}
		l.Image = append(l.Image, id)
		chain, err = readID(filepath.Join(dir, "parent"))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			return l, err
		}
	}
	return l, nil
}

// readID reads a one-line id file.
func readID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read layer id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("read layer id: %s is empty", path)
	}
	return id, nil
}
