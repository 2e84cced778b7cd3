package state

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/probe"
)

func sampleRecord() (*Record, Observation, Inputs) {
	obs := Observation{
		Graphprobe:    Build{Version: "1.2.0", Commit: "abc123", Executable: "dev=8:1 ino=12 size=100 mtime=1 ctime=1"},
		MachineID:     "3d1219c7c4c5404aaa1f6d2a48adfda4",
		KernelRelease: "6.1.0-18-amd64",
		KernelBuild:   "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
		DataRoot: DataRoot{Path: "/var/lib/docker", Filesystem: "extfs", Magic: "0xEF53", FSID: "6403c61267719efb",
			Device: "254:1", UUID: "0b1c2d3e-aaaa-bbbb-cccc-000000000001", MountPoint: "/", MountSource: "/dev/vda1",
			MountType: "ext4", MountOptions: "rw,relatime", SuperOptions: "rw,errors=remount-ro"},
		Files: map[string]string{
			"dockerd":        "/usr/sbin/dockerd dev=254:1 ino=5 size=80000000 mtime=10 ctime=10",
			"fuse-overlayfs": absent,
			"/dev/fuse":      "dev 10:229",
			"/lib/modules/6.1.0-18-amd64/modules.dep": "dev=254:1 ino=9 size=400000 mtime=3 ctime=3",
		},
	}
	in := Inputs{Config: "/etc/docker/daemon.json", ConfigSHA256: HashBytes([]byte(`{"storage-driver":"overlay2"}`), true)}
	rec := &Record{SchemaVersion: SchemaVersion, ProvenAt: time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC), Host: obs, Inputs: in,
		Decision: Decision{DockerVersion: "20.10.24", Driver: "overlay2", GraphDriver: "overlay2", StorageOpts: []string{}, ImageStore: "graphdriver", Bench: "quick",
			Facts: map[string]*bool{probe.FactOverlay: probe.Bool(true)}},
		Report: &probe.Report{SchemaVersion: 1, Mode: "live", Kernel: probe.Kernel{Release: obs.KernelRelease}, PriorDrivers: []string{}}}
	return rec, obs, in
}

// TestDifference: every input that decided a proof invalidates it, and
// nothing else does.
func TestDifference(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *Record, o *Observation, in *Inputs)
		want   string // substring of the difference; "" = still valid
	}{
		{"nothing changed", func(*Record, *Observation, *Inputs) {}, ""},
		{"prior state is fed to the decision, not compared", func(_ *Record, o *Observation, _ *Inputs) {
			o.Prior = []string{"overlay2"}
			o.Exists = true
		}, ""},
		{"kernel upgraded", func(_ *Record, o *Observation, _ *Inputs) { o.KernelRelease = "6.1.0-20-amd64" }, "kernel 6.1.0-18-amd64 → 6.1.0-20-amd64"},
		{"kernel rebuilt under the same release", func(_ *Record, o *Observation, _ *Inputs) { o.KernelBuild = "#1 SMP Debian 6.1.76-2" }, "rebuilt"},
		{"graphprobe upgraded", func(_ *Record, o *Observation, _ *Inputs) { o.Graphprobe.Version = "1.3.0" }, "graphprobe changed"},
		{"graphprobe rebuilt", func(_ *Record, o *Observation, _ *Inputs) {
			o.Graphprobe.Executable = "dev=8:1 ino=13 size=100 mtime=2 ctime=2"
		}, "graphprobe changed"},
		{"cloned image", func(_ *Record, o *Observation, _ *Inputs) { o.MachineID = "ffff" }, "machine-id"},
		{"other filesystem type", func(_ *Record, o *Observation, _ *Inputs) {
			o.DataRoot.Filesystem, o.DataRoot.Magic = "xfs", "0x58465342"
		}, "data-root filesystem"},
		{"reformatted (new UUID)", func(_ *Record, o *Observation, _ *Inputs) { o.DataRoot.UUID = "0b1c2d3e-aaaa-bbbb-cccc-000000000002" }, "data-root uuid"},
		{"other device", func(_ *Record, o *Observation, _ *Inputs) { o.DataRoot.Device = "254:17" }, "data-root device"},
		{"remounted with other options", func(_ *Record, o *Observation, _ *Inputs) { o.DataRoot.MountOptions = "ro,relatime" }, "data-root mountOptions"},
		{"volume mounted at the data-root", func(_ *Record, o *Observation, _ *Inputs) { o.DataRoot.MountPoint = "/var/lib/docker" }, "data-root mountPoint"},
		{"other data-root", func(_ *Record, o *Observation, _ *Inputs) { o.DataRoot.Path = "/srv/docker" }, "data-root path"},
		{"docker upgraded", func(_ *Record, o *Observation, _ *Inputs) {
			o.Files["dockerd"] = "/usr/sbin/dockerd dev=254:1 ino=77 size=90000000 mtime=20 ctime=20"
		}, "dockerd was replaced"},
		{"docker removed", func(_ *Record, o *Observation, _ *Inputs) { o.Files["dockerd"] = absent }, "dockerd is gone"},
		{"fuse-overlayfs installed", func(_ *Record, o *Observation, _ *Inputs) {
			o.Files["fuse-overlayfs"] = "/usr/bin/fuse-overlayfs dev=1:1 ino=1 size=1 mtime=1 ctime=1"
		}, "fuse-overlayfs appeared"},
		{"a dkms module installed", func(_ *Record, o *Observation, _ *Inputs) {
			o.Files["/lib/modules/6.1.0-18-amd64/modules.dep"] = "dev=254:1 ino=10 size=400100 mtime=4 ctime=4"
		}, "modules.dep was replaced"},
		{"daemon.json edited by hand", func(_ *Record, _ *Observation, in *Inputs) {
			in.ConfigSHA256 = HashBytes([]byte(`{"storage-driver":"vfs"}`), true)
		}, "/etc/docker/daemon.json changed since the proof"},
		{"daemon.json removed", func(_ *Record, _ *Observation, in *Inputs) { in.ConfigSHA256 = HashBytes(nil, false) }, "changed since the proof"},
		{"other daemon.json", func(_ *Record, _ *Observation, in *Inputs) { in.Config = "/srv/daemon.json" }, "input config"},
		{"policy given", func(_ *Record, _ *Observation, in *Inputs) { in.Policy, in.PolicySHA256 = "/etc/p.yaml", "00" }, "input policy"},
		{"--driver given", func(_ *Record, _ *Observation, in *Inputs) { in.Driver = "vfs" }, "input driver"},
		{"--docker-version given", func(_ *Record, _ *Observation, in *Inputs) { in.DockerVersion = "24.0.0" }, "input dockerVersion"},
		{"--no-load-modules given", func(_ *Record, _ *Observation, in *Inputs) { in.NoLoadModules = true }, "input noLoadModules"},
		{"--strategy given", func(_ *Record, _ *Observation, in *Inputs) { in.Strategy = "fastest" }, "input strategy"},
		{"record of another format", func(r *Record, _ *Observation, _ *Inputs) { r.SchemaVersion = 2 }, "record format 2"},
		{"record without report", func(r *Record, _ *Observation, _ *Inputs) { r.Report = nil }, "no probe report"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, obs, in := sampleRecord()
			obs.Files = map[string]string{}
			for k, v := range rec.Host.Files {
				obs.Files[k] = v
			}
			tc.change(rec, &obs, &in)
			got := rec.Difference(obs, in)
			if tc.want == "" && got != "" {
				t.Fatalf("Difference = %q, want none", got)
			}
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("Difference = %q, want it to name %q", got, tc.want)
			}
		})
	}
}

// TestDecodeRefusesDamage: a record that is truncated anywhere, has any one
// byte changed, or carries extra data is never trusted.
func TestDecodeRefusesDamage(t *testing.T) {
	rec, _, _ := sampleRecord()
	data, err := Encode(rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatalf("Decode(Encode(r)): %v", err)
	}
	if got.Difference(rec.Host, rec.Inputs) != "" || !got.Decision.SameChoice(rec.Decision) || !got.ProvenAt.Equal(rec.ProvenAt) {
		t.Fatalf("round trip changed the record: %+v", got)
	}
	body := bytes.TrimRight(data, "\n")
	for n := 0; n < len(body); n++ {
		if _, err := Decode(data[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: err %v, want ErrCorrupt", n, len(data), err)
		}
	}
	for i := range body {
		for _, b := range []byte{'0', 'x', ' '} {
			if body[i] == b {
				continue
			}
			bad := append([]byte(nil), data...)
			bad[i] = b
			if r, err := Decode(bad); err == nil && !bytes.Equal(bad, data) {
				// Only a change the JSON decoder ignores could pass (none
				// exists in this encoding); a passing record must be equal.
				if r.Difference(rec.Host, rec.Inputs) != "" || !r.Decision.SameChoice(rec.Decision) || !r.ProvenAt.Equal(rec.ProvenAt) {
					t.Fatalf("byte %d set to %q: accepted a different record", i, b)
				}
			}
		}
	}
	if _, err := Decode(append(append([]byte(nil), data...), []byte(`{"x":1}`)...)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("extra data accepted: %v", err)
	}
}

func TestSameChoice(t *testing.T) {
	base := Decision{DockerVersion: "29.0.0", Driver: "overlayfs", GraphDriver: "overlay2", StorageOpts: []string{}, ImageStore: "containerd"}
	for name, change := range map[string]func(*Decision){
		"driver":      func(d *Decision) { d.Driver = "overlay2" },
		"graphDriver": func(d *Decision) { d.GraphDriver = "vfs" },
		"opts":        func(d *Decision) { d.StorageOpts = []string{"overlay2.size=1G"} },
		"store":       func(d *Decision) { d.ImageStore = "graphdriver" },
		"snapshotter": func(d *Decision) { d.ContainerdSnapshotter = probe.Bool(false) },
		"docker":      func(d *Decision) { d.DockerVersion = "28.5.2" },
	} {
		d := base
		change(&d)
		if d.SameChoice(base) || base.SameChoice(d) {
			t.Errorf("%s changed, SameChoice still true", name)
		}
	}
	d := base
	d.Reason, d.Bench = "other words", "off"
	if !d.SameChoice(base) {
		t.Error("reason and bench mode are not part of the choice")
	}
}
