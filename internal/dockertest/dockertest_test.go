package dockertest

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Lines as dockerd 20.10.24 and its containerd 1.6.20 wrote them.
const sampleLog = `time="2026-11-27T01:40:25.432011277Z" level=error msg="failed to mount overlay: invalid argument" storage-driver=overlay2
time="2026-11-27T01:40:37.750654684Z" level=error msg="exec: \"fuse-overlayfs\": executable file not found in $PATH" storage-driver=fuse-overlayfs
time="2026-11-27T01:38:03Z" level=warning msg="containerd config version ` + "`1`" + ` has been deprecated"
time="2026-11-27T01:38:03.632947882Z" level=info msg="skip loading plugin \"io.containerd.snapshotter.v1.aufs\"..." error="aufs is not supported: skip plugin" type=io.containerd.snapshotter.v1
time="2026-11-27T01:40:12.476036775Z" level=info msg="Docker daemon" commit=5d6db84 graphdriver(s)=overlay2 version=20.10.24+dfsg1

failed to start daemon: error initializing graphdriver: driver not supported
`

func TestParseLog(t *testing.T) {
	entries := ParseLog(sampleLog)
	if len(entries) != 6 {
		t.Fatalf("got %d entries, want 6: %+v", len(entries), entries)
	}
	want := []Entry{
		{Level: "error", Msg: "failed to mount overlay: invalid argument", Fields: map[string]string{"storage-driver": "overlay2"}},
		{Level: "error", Msg: `exec: "fuse-overlayfs": executable file not found in $PATH`, Fields: map[string]string{"storage-driver": "fuse-overlayfs"}},
		{Level: "warning", Msg: "containerd config version `1` has been deprecated", Fields: map[string]string{}},
		{Level: "info", Msg: `skip loading plugin "io.containerd.snapshotter.v1.aufs"...`, Fields: map[string]string{"error": "aufs is not supported: skip plugin", "type": "io.containerd.snapshotter.v1"}},
		{Level: "info", Msg: "Docker daemon", Fields: map[string]string{"commit": "5d6db84", "graphdriver(s)": "overlay2", "version": "20.10.24+dfsg1"}},
		{Msg: "failed to start daemon: error initializing graphdriver: driver not supported"},
	}
	for i, w := range want {
		got := entries[i]
		got.Line = ""
		if !reflect.DeepEqual(got, w) {
			t.Errorf("entry %d:\n got %#v\nwant %#v", i, got, w)
		}
	}
	if got := Plain(entries); !reflect.DeepEqual(got, []string{"failed to start daemon: error initializing graphdriver: driver not supported"}) {
		t.Errorf("Plain = %q", got)
	}
	if got := WithField(AtLevel(entries, "error"), "storage-driver", "overlay2"); len(got) != 1 || got[0].Msg != "failed to mount overlay: invalid argument" {
		t.Errorf("overlay2 errors = %+v", got)
	}
}

func TestParseInfo(t *testing.T) {
	i, err := ParseInfo([]byte(`{"ID":"x","Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"],["Supports d_type","true"],["Native Overlay Diff","true"],["userxattr","false"]],"DockerRootDir":"/d","ServerVersion":"20.10.24+dfsg1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := i.Status(StatusBackingFS); !ok || v != "extfs" {
		t.Errorf("backing fs = %q, %v", v, ok)
	}
	if _, ok := i.Status("Build Version"); ok {
		t.Error("found a row overlay2 does not have")
	}
	if i.DockerRootDir != "/d" || i.ServerVersion != "20.10.24+dfsg1" {
		t.Errorf("info = %+v", i)
	}
	// fuse-overlayfs has no status rows: DriverStatus is null.
	if i, err := ParseInfo([]byte(`{"Driver":"fuse-overlayfs","DriverStatus":null}`)); err != nil || len(i.DriverStatus) != 0 {
		t.Errorf("fuse-overlayfs info = %+v, %v", i, err)
	}
	if _, err := ParseInfo([]byte(`{"ID":"x"}`)); err == nil || !strings.Contains(err.Error(), "no Driver") {
		t.Errorf("info without a driver: err = %v", err)
	}
}

func TestReadLayers(t *testing.T) {
	root := t.TempDir()
	put := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := "image/overlay2/layerdb/"
	put(db+"mounts/c1/mount-id", "rw1")
	put(db+"mounts/c1/init-id", "rw1-init")
	put(db+"mounts/c1/parent", "sha256:bbb")
	put(db+"sha256/bbb/cache-id", "top")
	put(db+"sha256/bbb/parent", "sha256:aaa")
	put(db+"sha256/aaa/cache-id", "base")
	os.MkdirAll(filepath.Join(root, "image/vfs/layerdb/mounts"), 0o755)

	l, err := ReadLayers(root, "c1")
	if err != nil {
		t.Fatal(err)
	}
	want := Layers{Driver: "overlay2", Container: "c1", RW: "rw1", Init: "rw1-init", Image: []string{"top", "base"}}
	if !reflect.DeepEqual(l, want) {
		t.Errorf("got %+v, want %+v", l, want)
	}
	if got := l.Chain(); !reflect.DeepEqual(got, []string{"rw1", "rw1-init", "top", "base"}) {
		t.Errorf("chain = %v", got)
	}
	if _, err := ReadLayers(root, "c2"); err == nil || !strings.Contains(err.Error(), "layerdb/mounts/c2") {
		t.Errorf("unknown container: err = %v", err)
	}
	put(db+"sha256/aaa/parent", "sha256:bbb")
	if _, err := ReadLayers(root, "c1"); err == nil || !strings.Contains(err.Error(), "loops") {
		t.Errorf("looping chain: err = %v", err)
	}
}

func TestPrivateConfig(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "in.json")
	os.WriteFile(src, []byte(`{"storage-driver": "overlay2", "storage-opts": ["overlay2.bogus=1"]}`), 0o644)
	got, err := privateConfig(src, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(got)
	for _, s := range []string{`"storage-driver": "overlay2"`, `"overlay2.bogus=1"`, `"deprecated-key-path": "` + filepath.Join(dir, "key.json")} {
		if !strings.Contains(string(data), s) {
			t.Errorf("private config lacks %s:\n%s", s, data)
		}
	}
	os.WriteFile(src, []byte(`{"storage-driver": `), 0o644)
	if got, err := privateConfig(src, dir, true); err != nil || got != src {
		t.Errorf("malformed config: got %q, %v; want it passed as it is", got, err)
	}
}
