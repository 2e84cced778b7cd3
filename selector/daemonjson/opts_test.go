package daemonjson

import (
	"reflect"
	"testing"

	"github.com/graphprobe/graphprobe/version"
)

func TestStorageOpts(t *testing.T) {
	tests := []struct {
		name     string
		existing []string
		driver   string
		rules    Rules
		policy   []string
		want     OptsResult
	}{
		{
			name: "nothing", driver: "overlay2", rules: refused,
			want: OptsResult{Opts: []string{}},
		},
		{
			name: "own options kept in order", existing: []string{"overlay2.size=10G", "Overlay2.Other=1"}, driver: "overlay2", rules: refused,
			want: OptsResult{Opts: []string{"overlay2.size=10G", "Overlay2.Other=1"}},
		},
		{
			name: "other drivers' options dropped", existing: []string{"dm.basesize=20G", "overlay2.size=10G", "zfs.fsname=tank/docker", "size=5G"}, driver: "overlay2", rules: refused,
			want: OptsResult{Opts: []string{"overlay2.size=10G"}, Dropped: []DroppedOpt{
				{"dm.basesize=20G", "an option of devicemapper, not overlay2: dockerd refuses another driver's options"},
				{"zfs.fsname=tank/docker", "an option of zfs, not overlay2: dockerd refuses another driver's options"},
				{"size=5G", "not an option of overlay2: dockerd refuses unknown options"},
			}},
		},
		{
			name: "devicemapper owns dm options", existing: []string{"dm.thinpooldev=/dev/mapper/docker-pool", "dm.use_deferred_removal=true", "overlay2.size=1G"}, driver: "devicemapper", rules: ignored,
			want: OptsResult{Opts: []string{"dm.thinpooldev=/dev/mapper/docker-pool", "dm.use_deferred_removal=true"}, Dropped: []DroppedOpt{
				{"overlay2.size=1G", "an option of overlay2, not devicemapper: dockerd refuses another driver's options"},
			}},
		},
		{
			name: "vfs owns bare size", existing: []string{"size=5G", "vfs.xattrs=best-effort"}, driver: "vfs", rules: refused,
			want: OptsResult{Opts: []string{"size=5G", "vfs.xattrs=best-effort"}},
		},
		{
			name: "malformed option dropped", existing: []string{"overlay2.size", "=x"}, driver: "overlay2", rules: refused,
			want: OptsResult{Opts: []string{}, Dropped: []DroppedOpt{
				{"overlay2.size", "not in key=value form: dockerd refuses it"},
				{"=x", "not in key=value form: dockerd refuses it"},
			}},
		},
		{
			name: "override_kernel_check kept before 19.03.7", existing: []string{"overlay2.override_kernel_check=true"}, driver: "overlay2", rules: honoured,
			want: OptsResult{Opts: []string{"overlay2.override_kernel_check=true"}},
		},
		{
			name: "override_kernel_check dropped from 19.03.7", existing: []string{"overlay2.override_kernel_check=true"}, driver: "overlay2", rules: ignored,
			want: OptsResult{Opts: []string{}, Dropped: []DroppedOpt{
				{"overlay2.override_kernel_check=true", "overlay2.override_kernel_check is ignored since Docker 19.03.7 and stops Docker 24 from starting"},
			}},
		},
		{
			name: "override_kernel_check refused from 24", existing: []string{"overlay2.override_kernel_check=1", "overlay2.size=1G"}, driver: "overlay2", rules: refused,
			want: OptsResult{Opts: []string{"overlay2.size=1G"}, Dropped: []DroppedOpt{
				{"overlay2.override_kernel_check=1", "overlay2.override_kernel_check is an unknown option from Docker 24 on: dockerd would not start"},
			}},
		},
		{
			name: "zero rules are the newest", existing: []string{"overlay2.override_kernel_check=true"}, driver: "overlay2", rules: Rules{},
			want: OptsResult{Opts: []string{}, Dropped: []DroppedOpt{
				{"overlay2.override_kernel_check=true", "overlay2.override_kernel_check is an unknown option in the newest Docker releases: dockerd would not start"},
			}},
		},
		{
			name: "duplicate key keeps the later value", existing: []string{"overlay2.size=1G", "overlay2.size=2G"}, driver: "overlay2", rules: refused,
			want: OptsResult{Opts: []string{"overlay2.size=2G"}, Dropped: []DroppedOpt{
				{"overlay2.size=1G", "overlay2.size is set again later in the list; the later value is kept"},
			}},
		},
		{
			name: "policy overrides by key in place and appends", existing: []string{"overlay2.size=1G", "overlay2.a=1"}, driver: "overlay2", rules: refused,
			policy: []string{"overlay2.size=20G", "overlay2.b=2", "overlay2.a=1"},
			want: OptsResult{Opts: []string{"overlay2.size=20G", "overlay2.a=1", "overlay2.b=2"}, Added: []string{"overlay2.size=20G", "overlay2.b=2"}, Dropped: []DroppedOpt{
				{"overlay2.size=1G", "replaced by the policy's overlay2.size=20G"},
			}},
		},
		{
			name: "policy option for another driver dropped", driver: "btrfs", rules: refused, policy: []string{"overlay2.size=1G", "btrfs.min_space=10G"},
			want: OptsResult{Opts: []string{"btrfs.min_space=10G"}, Added: []string{"btrfs.min_space=10G"}, Dropped: []DroppedOpt{
				{"overlay2.size=1G", "policy option: an option of overlay2, not btrfs: dockerd refuses another driver's options"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StorageOpts(tt.existing, tt.driver, tt.rules, tt.policy)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// The rules of the three kinds of release, as selector's table gives them
// (19.03.7 stopped honouring override_kernel_check, 24.0 refuses it).
var (
	v19037   = version.Docker{Major: 19, Minor: 3, Patch: 7}
	v24      = version.Docker{Major: 24}
	honoured = Rules{KernelCheck: KernelCheckHonoured, KernelCheckIgnoredSince: v19037, KernelCheckRefusedSince: v24}
	ignored  = Rules{KernelCheck: KernelCheckIgnored, KernelCheckIgnoredSince: v19037, KernelCheckRefusedSince: v24}
	refused  = Rules{KernelCheck: KernelCheckRefused, KernelCheckIgnoredSince: v19037, KernelCheckRefusedSince: v24}
)

func TestReleaseName(t *testing.T) {
	for v, want := range map[version.Docker]string{
		v19037:                "19.03.7",
		v24:                   "24",
		{Major: 17, Minor: 3}: "17.03",
		{Major: 25, Minor: 1}: "25.1",
	} {
		if got := releaseName(v); got != want {
			t.Errorf("releaseName(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestDiff(t *testing.T) {
	old := []byte("{\n  \"debug\": true,\n  \"storage-driver\": \"aufs\"\n}\n")
	new := []byte("{\n  \"debug\": true,\n  \"storage-driver\": \"overlay2\"\n}\n")
	want := "--- /etc/docker/daemon.json\n+++ /etc/docker/daemon.json (graphprobe)\n@@ -1,4 +1,4 @@\n {\n   \"debug\": true,\n-  \"storage-driver\": \"aufs\"\n+  \"storage-driver\": \"overlay2\"\n }\n"
	if got := Diff(testName, old, new); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := Diff(testName, old, old); got != "" {
		t.Fatalf("equal contents gave %q", got)
	}
	wantNew := "--- /dev/null\n+++ /etc/docker/daemon.json (graphprobe)\n@@ -0,0 +1,3 @@\n+{\n+  \"storage-driver\": \"overlay2\"\n+}\n"
	if got := Diff(testName, nil, []byte("{\n  \"storage-driver\": \"overlay2\"\n}\n")); got != wantNew {
		t.Fatalf("got\n%s\nwant\n%s", got, wantNew)
	}
	wantEOL := "--- /etc/docker/daemon.json\n+++ /etc/docker/daemon.json (graphprobe)\n@@ -1 +1 @@\n-{}\n\\ No newline at end of file\n+{}\n"
	if got := Diff(testName, []byte("{}"), []byte("{}\n")); got != wantEOL {
		t.Fatalf("got\n%q\nwant\n%q", got, wantEOL)
	}
}
