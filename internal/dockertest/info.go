package dockertest

import (
	"encoding/json"
	"fmt"
)

// Keys of a graph driver's rows in `docker info` (DriverStatus) that the
// tests compare with graphprobe's probe.
const (
	StatusBackingFS  = "Backing Filesystem"
	StatusDType      = "Supports d_type"
	StatusNativeDiff = "Native Overlay Diff"
	StatusUserXattr  = "userxattr"
)

// Info is the part of `docker info --format '{{json .}}'` that says how
// dockerd stores images.
type Info struct {
	Driver        string      `json:"Driver"`
	DriverStatus  [][2]string `json:"DriverStatus"`
	DockerRootDir string      `json:"DockerRootDir"`
	ServerVersion string      `json:"ServerVersion"`
	KernelVersion string      `json:"KernelVersion"`
	// Warnings are the daemon's own warnings (no swap limit, ...).
	Warnings []string `json:"Warnings"`
}

// Status returns the value of a DriverStatus row.
func (i Info) Status(key string) (string, bool) {
	for _, kv := range i.DriverStatus {
		if kv[0] == key {
			return kv[1], true
		}
	}
	return "", false
}

// ParseInfo reads the JSON that `docker info --format '{{json .}}'` prints.
func ParseInfo(data []byte) (Info, error) {
	var i Info
	if err := json.Unmarshal(data, &i); err != nil {
		return Info{}, fmt.Errorf("parse docker info: %w", err)
	}
	if i.Driver == "" {
		return Info{}, fmt.Errorf("parse docker info: no Driver in %.200s", data)
	}
	return i, nil
}
