package probe

import (
	"bytes"
	"compress/gzip"
	"os"
	"strings"
	"testing"
)

func open(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestParseFilesystems(t *testing.T) {
	fs, err := ParseFilesystems(open(t, "filesystems-debian-12"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"overlay", "ext4", "btrfs", "xfs", "tmpfs", "fuse"} {
		if !fs[want] {
			t.Errorf("%s missing from %v", want, fs)
		}
	}
	if fs["nodev"] {
		t.Error("nodev parsed as a filesystem")
	}

	tests := []struct {
		name, in string
		want     []string
		err      string
	}{
		{name: "ubuntu 14.04 overlayfs patch", in: "nodev\tsysfs\nnodev\toverlayfs\n\text4\n", want: []string{"overlayfs", "ext4", "sysfs"}},
		{name: "aufs", in: "nodev\taufs\n", want: []string{"aufs"}},
		{name: "empty", in: "", want: nil},
		{name: "bad first column", in: "dev\text4\n", err: `parse filesystems: line 1: want [nodev] NAME, got "dev\text4"`},
		{name: "too many fields", in: "nodev a b\n", err: `parse filesystems: line 1: want [nodev] NAME, got "nodev a b"`},
		{name: "binary", in: "nodev\x00\x01\n", err: "parse filesystems: line 1: not text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := ParseFilesystems(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(fs) != len(tt.want) {
				t.Errorf("got %v, want %v", fs, tt.want)
			}
			for _, w := range tt.want {
				if !fs[w] {
					t.Errorf("%s missing", w)
				}
			}
		})
	}
}

func TestParseModules(t *testing.T) {
	dep, err := ParseModulesDep(open(t, "modules.dep-6.1.0-56-cloud-amd64"))
	if err != nil {
		t.Fatal(err)
	}
	for name, file := range map[string]string{
		"overlay": "kernel/fs/overlayfs/overlay.ko",
		"fuse":    "kernel/fs/fuse/fuse.ko",
		"dm_mod":  "kernel/drivers/md/dm-mod.ko",
		"btrfs":   "kernel/fs/btrfs/btrfs.ko",
	} {
		if dep[name] != file {
			t.Errorf("modules.dep[%s] = %q, want %q", name, dep[name], file)
		}
	}
	if _, ok := dep["aufs"]; ok {
		t.Error("aufs in Debian 12's modules.dep")
	}
	builtin, err := ParseModulesBuiltin(open(t, "modules.builtin-6.1.0-56-cloud-amd64"))
	if err != nil {
		t.Fatal(err)
	}
	if !builtin["ext4"] || builtin["overlay"] {
		t.Errorf("modules.builtin: ext4 %v (want true), overlay %v (want false)", builtin["ext4"], builtin["overlay"])
	}

	tests := []struct {
		name, in string
		want     map[string]string
		err      string
	}{
		{name: "xz", in: "kernel/fs/aufs/aufs.ko.xz:\n", want: map[string]string{"aufs": "kernel/fs/aufs/aufs.ko.xz"}},
		{name: "zst with deps", in: "kernel/fs/overlayfs/overlay.ko.zst: kernel/fs/x.ko.zst\n", want: map[string]string{"overlay": "kernel/fs/overlayfs/overlay.ko.zst"}},
		{name: "gz", in: "kernel/drivers/md/dm-thin-pool.ko.gz: kernel/drivers/md/dm-mod.ko.gz\n", want: map[string]string{"dm_thin_pool": "kernel/drivers/md/dm-thin-pool.ko.gz"}},
		{name: "extra dir", in: "extra/aufs.ko:\nupdates/dkms/zfs.ko: extra/spl.ko\n", want: map[string]string{"aufs": "extra/aufs.ko", "zfs": "updates/dkms/zfs.ko"}},
		{name: "no colon", in: "kernel/fs/overlay.ko\n", err: `parse modules.dep: line 1: want PATH: DEPS, got "kernel/fs/overlay.ko"`},
		{name: "not a module", in: "kernel/fs/overlay.o:\n", err: `parse modules.dep: line 1: "kernel/fs/overlay.o" is not a module file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseModulesDep(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("[%s] = %q, want %q", k, got[k], v)
				}
			}
		})
	}

	loaded, err := ParseProcModules(strings.NewReader(
		"overlay 151552 0 - Live 0xffffffffc0a6b000\n" +
			"dm_thin_pool 81920 0 - Live 0x0000000000000000\n" +
			"aufs 241664 0 - Live 0xffffffffc0ab0000 (C)\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"overlay", "dm_thin_pool", "aufs"} {
		if !loaded[m] {
			t.Errorf("%s not loaded", m)
		}
	}
	if _, err := ParseProcModules(strings.NewReader("overlay\n")); err == nil || err.Error() != `parse modules: line 1: want NAME SIZE REFS ..., got "overlay"` {
		t.Errorf("short line: err = %v", err)
	}
}

func TestParseKernelConfig(t *testing.T) {
	plain, err := ParseKernelConfig(open(t, "config-6.1.0-56-cloud-amd64"))
	if err != nil {
		t.Fatal(err)
	}
	gz, err := ParseKernelConfig(open(t, "config-6.1.0-56-cloud-amd64.gz"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"CONFIG_OVERLAY_FS": "m", "CONFIG_OVERLAY_FS_REDIRECT_DIR": "n", "CONFIG_OVERLAY_FS_INDEX": "n",
		"CONFIG_OVERLAY_FS_METACOPY": "n", "CONFIG_AUFS_FS": "unknown", "CONFIG_BTRFS_FS": "m",
		"CONFIG_BLK_DEV_DM": "m", "CONFIG_DM_THIN_PROVISIONING": "m", "CONFIG_FUSE_FS": "m", "CONFIG_MODULES": "y",
	}
	for k, v := range want {
		if got := plain.Tristate(k); got != v {
			t.Errorf("plain %s = %s, want %s", k, got, v)
		}
		if got := gz.Tristate(k); got != v {
			t.Errorf("gzip %s = %s, want %s", k, got, v)
		}
	}
	if plain["CONFIG_LOCALVERSION"] != "" || plain["CONFIG_CC_VERSION_TEXT"] == "" {
		t.Errorf("string values: LOCALVERSION %q, CC_VERSION_TEXT %q", plain["CONFIG_LOCALVERSION"], plain["CONFIG_CC_VERSION_TEXT"])
	}

	// A truncated gzip stream is an error, never a partial config.
	full, _ := os.ReadFile("testdata/config-6.1.0-56-cloud-amd64.gz")
	if _, err := ParseKernelConfig(bytes.NewReader(full[:len(full)/2])); err == nil || err.Error() != "parse kernel config: gzip stream truncated" {
		t.Errorf("truncated gzip: err = %v", err)
	}
	var junk bytes.Buffer
	zw := gzip.NewWriter(&junk)
	zw.Write([]byte{0, 1, 2, 3, 0xff})
	zw.Close()
	for name, in := range map[string][]byte{
		"gzip of junk":     junk.Bytes(),
		"empty":            nil,
		"comments only":    []byte("#\n# Automatically generated file; DO NOT EDIT.\n"),
		"garbage line":     []byte("CONFIG_A=y\nhello world\n"),
		"binary":           {0x7f, 'E', 'L', 'F', 0, 0},
		"gzip header only": {0x1f, 0x8b},
	} {
		if _, err := ParseKernelConfig(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseOSRelease(t *testing.T) {
	osr, err := ParseOSRelease(open(t, "os-release-debian-12"))
	if err != nil {
		t.Fatal(err)
	}
	if osr.ID != "debian" || osr.VersionID != "12" || osr.PrettyName != "Debian GNU/Linux 12 (bookworm)" {
		t.Errorf("got %+v", osr)
	}
	tests := []struct {
		name, in string
		want     OSRelease
		err      string
	}{
		{name: "centos 7", in: "NAME=\"CentOS Linux\"\nVERSION=\"7 (Core)\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"7\"\nPRETTY_NAME=\"CentOS Linux 7 (Core)\"\n",
			want: OSRelease{ID: "centos", VersionID: "7", PrettyName: "CentOS Linux 7 (Core)", IDLike: "rhel fedora"}},
		{name: "single quotes and escapes", in: "ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME='Alpine \\'Linux\\' v3.19'\n",
			want: OSRelease{ID: "alpine", VersionID: "3.19.1", PrettyName: "Alpine 'Linux' v3.19"}},
		{name: "comments and blanks", in: "# comment\n\nID=ubuntu\nVERSION_ID=\"16.04\"\n", want: OSRelease{ID: "ubuntu", VersionID: "16.04"}},
		{name: "no equals", in: "ID ubuntu\n", err: `parse os-release: line 1: want KEY=VALUE, got "ID ubuntu"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOSRelease(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseMountinfo(t *testing.T) {
	// A Docker-in-Docker container: / is the container's overlay, and
	// /var/lib/docker an anonymous volume on the host's ext4.
	const dind = `1021 963 0:52 / / rw,relatime master:296 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ABC:/var/lib/docker/overlay2/l/DEF,upperdir=/var/lib/docker/overlay2/1f2e/diff,workdir=/var/lib/docker/overlay2/1f2e/work
1022 1021 0:55 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1023 1021 0:56 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
1031 1021 8:1 /var/lib/docker/volumes/4a5b/_data /var/lib/docker rw,relatime master:1 - ext4 /dev/sda1 rw
1032 1021 8:1 /var/lib/docker/containers/9c8d/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw
1040 1023 0:58 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k
`
	mounts, err := ParseMountinfo(strings.NewReader(dind))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, fstype, mountpoint string }{
		{"/var/lib/docker", "ext4", "/var/lib/docker"},
		{"/var/lib/docker/overlay2", "ext4", "/var/lib/docker"},
		{"/var/lib/dockerx", "overlay", "/"},
		{"/var/lib", "overlay", "/"},
		{"/dev/shm/x", "tmpfs", "/dev/shm"},
	} {
		m := mountFor(mounts, tt.path)
		if m == nil || m.FSType != tt.fstype || m.Mountpoint != tt.mountpoint {
			t.Errorf("mountFor(%s) = %+v, want %s on %s", tt.path, m, tt.fstype, tt.mountpoint)
		}
	}
	// Shadowing: the later mount on the same point wins.
	shadow := "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n30 20 0:40 / /var/lib/docker rw - xfs /dev/sdb rw\n31 30 0:41 / /var/lib/docker rw - btrfs /dev/sdc rw\n"
	mounts, err = ParseMountinfo(strings.NewReader(shadow))
	if err != nil {
		t.Fatal(err)
	}
	if m := mountFor(mounts, "/var/lib/docker"); m == nil || m.FSType != "btrfs" {
		t.Errorf("shadowed mount: got %+v, want btrfs", m)
	}
	if _, err := ParseMountinfo(strings.NewReader("garbage line\n")); err == nil {
		t.Error("garbage mountinfo: no error")
	}
}

func TestModuleState(t *testing.T) {
	dep, _ := ParseModulesDep(strings.NewReader("kernel/fs/overlayfs/overlay.ko:\nkernel/fs/aufs/aufs.ko:\n"))
	tests := []struct {
		name   string
		m      moduleFacts
		module string
		fs     string
		want   ModuleState
	}{
		{"builtin list", moduleFacts{builtin: map[string]bool{"overlay": true}, dep: dep}, "overlay", "overlay", ModuleBuiltin},
		{"loaded", moduleFacts{loaded: map[string]bool{"overlay": true}, dep: dep}, "overlay", "overlay", ModuleLoaded},
		{"registered without module", moduleFacts{loaded: map[string]bool{}, fs: Filesystems{"overlay": true}, dep: dep}, "overlay", "overlay", ModuleBuiltin},
		{"loadable", moduleFacts{loaded: map[string]bool{}, dep: dep}, "aufs", "aufs", ModuleLoadable},
		{"absent", moduleFacts{loaded: map[string]bool{}, dep: dep}, "btrfs", "btrfs", ModuleAbsent},
		{"no modules dir, modules read", moduleFacts{loaded: map[string]bool{}, depErr: os.ErrNotExist}, "aufs", "aufs", ModuleAbsent},
		{"no modules dir, nothing captured", moduleFacts{loadedErr: os.ErrNotExist, depErr: os.ErrNotExist}, "aufs", "aufs", ModuleUnknown},
		{"no module support", moduleFacts{noModules: true, fs: Filesystems{"overlay": true}}, "overlay", "overlay", ModuleBuiltin},
		{"no module support, absent", moduleFacts{noModules: true, depErr: os.ErrNotExist}, "aufs", "aufs", ModuleAbsent},
		{"sys/module on a fixture", moduleFacts{loaded: map[string]bool{}, dep: dep, sysModule: func(n string) (bool, bool) { return n == "aufs", false }}, "aufs", "aufs", ModuleLoaded},
		{"sys/module builtin live", moduleFacts{live: true, loaded: map[string]bool{}, dep: dep, sysModule: func(n string) (bool, bool) { return n == "overlay", false }}, "overlay", "overlay", ModuleBuiltin},
		{"config m without modules dir", moduleFacts{loaded: map[string]bool{}, depErr: os.ErrNotExist, config: KernelConfig{"CONFIG_AUFS_FS": "m"}}, "aufs", "aufs", ModuleAbsent},
		{"config y", moduleFacts{loaded: map[string]bool{}, depErr: os.ErrNotExist, config: KernelConfig{"CONFIG_OVERLAY_FS": "y"}}, "overlay", "overlay", ModuleBuiltin},
	}
	cfgName := map[string]string{"overlay": "CONFIG_OVERLAY_FS", "aufs": "CONFIG_AUFS_FS", "btrfs": "CONFIG_BTRFS_FS"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ev := tt.m.state(tt.module, tt.fs, cfgName[tt.module])
			if got != tt.want {
				t.Errorf("state = %s (%s), want %s", got, ev, tt.want)
			}
			if ev == "" {
				t.Error("no evidence")
			}
		})
	}
}
