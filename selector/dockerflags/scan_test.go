package dockerflags

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// makeHost lays out a host tree: files maps host paths to contents
// ("@name" reads testdata/real/name), links maps host paths to symlink
// targets.
func makeHost(t *testing.T, files, links map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		if name, ok := strings.CutPrefix(content, "@"); ok {
			b, err := os.ReadFile(filepath.Join("testdata", "real", name))
			if err != nil {
				t.Fatal(err)
			}
			content = string(b)
		}
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range links {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, full); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	libUnit    = "/lib/systemd/system/docker.service"
	usrLibUnit = "/usr/lib/systemd/system/docker.service"
	etcUnit    = "/etc/systemd/system/docker.service"
	etcDropIns = "/etc/systemd/system/docker.service.d/"
)

func TestScan(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		links map[string]string
		want  Report
	}{
		{
			name:  "docker-ce unit without flags",
			files: map[string]string{libUnit: "@docker-ce.service"},
			want:  Report{Init: "systemd", Unit: libUnit, Findings: []Finding{}},
		},
		{
			name: "docker-ce with an override drop-in; /etc/default/docker unused",
			files: map[string]string{
				libUnit:                      "@docker-ce.service",
				etcDropIns + "override.conf": "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock \\\n  --storage-driver=overlay2 \\\n  # a comment inside the continuation\n  --storage-opt overlay2.size=20G\n",
				"/etc/default/docker":        "@debian-default-docker",
			},
			want: Report{Init: "systemd", Unit: libUnit, DropIns: []string{etcDropIns + "override.conf"},
				Findings: []Finding{
					{Key: StorageDriver, Flag: "--storage-driver", Value: "overlay2", File: etcDropIns + "override.conf", Line: 3},
					{Key: StorageOpts, Flag: "--storage-opt", Value: "overlay2.size=20G", File: etcDropIns + "override.conf", Line: 3},
				},
				Ignored: []Finding{
					{Key: StorageDriver, Flag: "-s", Value: "aufs", File: "/etc/default/docker", Line: 15, Via: "not used: docker.service does not pass this variable to dockerd"},
					{Key: StorageOpts, Flag: "--storage-opt", Value: "aufs.mountopt=dirperm1", File: "/etc/default/docker", Line: 15, Via: "not used: docker.service does not pass this variable to dockerd"},
				},
			},
		},
		{
			name: "Debian docker.io passes DOCKER_OPTS",
			files: map[string]string{
				libUnit:               "@debian-docker.io.service",
				"/etc/default/docker": "@debian-default-docker",
			},
			want: Report{Init: "systemd", Unit: libUnit, Findings: []Finding{
				{Key: StorageDriver, Flag: "-s", Value: "aufs", File: "/etc/default/docker", Line: 15, Via: "$DOCKER_OPTS in ExecStart at " + libUnit + ":14"},
				{Key: StorageOpts, Flag: "--storage-opt", Value: "aufs.mountopt=dirperm1", File: "/etc/default/docker", Line: 15, Via: "$DOCKER_OPTS in ExecStart at " + libUnit + ":14"},
			}},
		},
		{
			name: "RHEL 7 docker-storage-setup",
			files: map[string]string{
				usrLibUnit:                      "@rhel7-docker.service",
				"/etc/sysconfig/docker":         "@rhel7-sysconfig-docker",
				"/etc/sysconfig/docker-storage": "@rhel7-docker-storage",
			},
			want: Report{Init: "systemd", Unit: usrLibUnit,
				Findings: []Finding{
					{Key: StorageDriver, Flag: "--storage-driver", Value: "devicemapper", File: "/etc/sysconfig/docker-storage", Line: 1, Via: "$DOCKER_STORAGE_OPTIONS in ExecStart at " + usrLibUnit + ":18"},
					{Key: StorageOpts, Flag: "--storage-opt", Value: "dm.fs=xfs", File: "/etc/sysconfig/docker-storage", Line: 1, Via: "$DOCKER_STORAGE_OPTIONS in ExecStart at " + usrLibUnit + ":18"},
					{Key: StorageOpts, Flag: "--storage-opt", Value: "dm.thinpooldev=/dev/mapper/rhel-docker--pool", File: "/etc/sysconfig/docker-storage", Line: 1, Via: "$DOCKER_STORAGE_OPTIONS in ExecStart at " + usrLibUnit + ":18"},
					{Key: StorageOpts, Flag: "--storage-opt", Value: "dm.use_deferred_removal=true", File: "/etc/sysconfig/docker-storage", Line: 1, Via: "$DOCKER_STORAGE_OPTIONS in ExecStart at " + usrLibUnit + ":18"},
					{Key: StorageOpts, Flag: "--storage-opt", Value: "dm.use_deferred_deletion=true", File: "/etc/sysconfig/docker-storage", Line: 1, Via: "$DOCKER_STORAGE_OPTIONS in ExecStart at " + usrLibUnit + ":18"},
				},
				Warnings: []string{
					`/etc/sysconfig/docker: line 5: not an assignment: "if [ -z \"${DOCKER_CERT_PATH}\" ]; then"`,
					`/etc/sysconfig/docker: line 7: not an assignment: "fi"`,
				},
				// dockerd finds its helpers (and fuse-overlayfs) there.
				Path: "/usr/libexec/docker:/usr/bin:/usr/sbin", PathFrom: usrLibUnit + ":17",
			},
		},
		{
			name: "RHEL 7.2 form: sh -c expands the unit's variables",
			files: map[string]string{
				usrLibUnit: "[Service]\nEnvironmentFile=-/etc/sysconfig/docker\nEnvironmentFile=-/etc/sysconfig/docker-storage\n" +
					"ExecStart=/bin/sh -c '/usr/bin/docker-current daemon \\\n  --exec-opt native.cgroupdriver=systemd \\\n" +
					"  $OPTIONS \\\n  $DOCKER_STORAGE_OPTIONS \\\n  2>&1 | /usr/bin/forward-journald -tag docker'\n",
				"/etc/sysconfig/docker":         "@rhel7-sysconfig-docker",
				"/etc/sysconfig/docker-storage": "DOCKER_STORAGE_OPTIONS=\"--storage-driver overlay2 --storage-opt overlay2.override_kernel_check=true\"\n",
			},
			want: Report{Init: "systemd", Unit: usrLibUnit,
				Findings: []Finding{
					{Key: StorageDriver, Flag: "--storage-driver", Value: "overlay2", File: "/etc/sysconfig/docker-storage", Line: 1, Via: "$DOCKER_STORAGE_OPTIONS in ExecStart at " + usrLibUnit + ":4"},
					{Key: StorageOpts, Flag: "--storage-opt", Value: "overlay2.override_kernel_check=true", File: "/etc/sysconfig/docker-storage", Line: 1, Via: "$DOCKER_STORAGE_OPTIONS in ExecStart at " + usrLibUnit + ":4"},
				},
				Warnings: []string{
					`/etc/sysconfig/docker: line 5: not an assignment: "if [ -z \"${DOCKER_CERT_PATH}\" ]; then"`,
					`/etc/sysconfig/docker: line 7: not an assignment: "fi"`,
				},
			},
		},
		{
			name:  "Ubuntu 14.04 upstart reads /etc/default/docker",
			files: map[string]string{"/etc/default/docker": "@ubuntu1404-default-docker", "/etc/init/docker.conf": "description \"Docker daemon\"\n"},
			want: Report{Init: "sysvinit", Findings: []Finding{
				{Key: DataRoot, Flag: "-g", Value: "/mnt/docker", File: "/etc/default/docker", Line: 8, Via: "$DOCKER_OPTS"},
				{Key: StorageDriver, Flag: "-s", Value: "devicemapper", File: "/etc/default/docker", Line: 8, Via: "$DOCKER_OPTS"},
				{Key: StorageOpts, Flag: "--storage-opt", Value: "dm.basesize=20G", File: "/etc/default/docker", Line: 8, Via: "$DOCKER_OPTS"},
			}},
		},
		{
			name:  "CentOS 6 sysvinit reads /etc/sysconfig/docker",
			files: map[string]string{"/etc/sysconfig/docker": "other_args=\"--graph=/data/docker --storage-driver devicemapper\"\n# OPTIONS=\"-s vfs\"\n"},
			want: Report{Init: "sysvinit", Findings: []Finding{
				{Key: DataRoot, Flag: "--graph", Value: "/data/docker", File: "/etc/sysconfig/docker", Line: 1, Via: "$other_args"},
				{Key: StorageDriver, Flag: "--storage-driver", Value: "devicemapper", File: "/etc/sysconfig/docker", Line: 1, Via: "$other_args"},
			}},
		},
		{
			name: "sysvinit: the value is built from earlier assignments; quotes in it reach dockerd",
			files: map[string]string{"/etc/default/docker": "DOCKER_OPTS=\"-s aufs\"\n" +
				"DOCKER_OPTS=\"$DOCKER_OPTS --storage-opt 'aufs.mountopt=dirperm1' --dns $(cat /etc/dns)\"\n"},
			want: Report{Init: "sysvinit",
				Findings: []Finding{
					{Key: StorageDriver, Flag: "-s", Value: "aufs", File: "/etc/default/docker", Line: 2, Via: "$DOCKER_OPTS"},
					{Key: StorageOpts, Flag: "--storage-opt", Value: "'aufs.mountopt=dirperm1'", File: "/etc/default/docker", Line: 2, Via: "$DOCKER_OPTS"},
				},
				Warnings: []string{"/etc/default/docker: line 2: command substitution is not run; it counts as empty"},
			},
		},
		{
			name: "systemd: an unused sourced file is read as sh",
			files: map[string]string{
				libUnit:                 "@docker-ce.service",
				"/etc/sysconfig/docker": "@rhel7-sysconfig-docker",
				"/etc/default/docker":   "if true; then\n  DOCKER_OPTS=-s\n  DOCKER_OPTS+=\" vfs\"\nfi\n",
			},
			want: Report{Init: "systemd", Unit: libUnit, Findings: []Finding{}, Ignored: []Finding{
				{Key: StorageDriver, Flag: "-s", Value: "vfs", File: "/etc/default/docker", Line: 3, Via: "not used: docker.service does not pass this variable to dockerd"},
			}},
		},
		{
			name:  "no Docker at all",
			files: map[string]string{"/etc/os-release": "ID=debian\n"},
			want:  Report{Init: "sysvinit", Findings: []Finding{}},
		},
		{
			name:  "Docker 1.10: docker daemon",
			files: map[string]string{libUnit: "@docker-1.10.service"},
			want: Report{Init: "systemd", Unit: libUnit, Findings: []Finding{
				{Key: StorageDriver, Flag: "-s", Value: "overlay", File: libUnit, Line: 9},
			}},
		},
		{
			name: "Docker 1.6: docker -d",
			files: map[string]string{
				libUnit:               "@ubuntu1504-docker.service",
				"/etc/default/docker": "DOCKER_OPTS='--storage-driver=btrfs'\n",
			},
			want: Report{Init: "systemd", Unit: libUnit, Findings: []Finding{
				{Key: StorageDriver, Flag: "--storage-driver", Value: "btrfs", File: "/etc/default/docker", Line: 1, Via: "$DOCKER_OPTS in ExecStart at " + libUnit + ":9"},
			}},
		},
		{
			name: "masked unit",
			files: map[string]string{
				libUnit:               "@docker-ce.service",
				"/etc/default/docker": "DOCKER_OPTS=\"-s aufs\"\n",
			},
			links: map[string]string{etcUnit: "/dev/null"},
			want: Report{Init: "systemd", Unit: etcUnit, Masked: true, Findings: []Finding{}, Ignored: []Finding{
				{Key: StorageDriver, Flag: "-s", Value: "aufs", File: "/etc/default/docker", Line: 1, Via: "not used: docker.service is masked"},
			}},
		},
		{
			name: "unit in /etc overrides the packaged one",
			files: map[string]string{
				libUnit: "[Service]\nExecStart=/usr/bin/dockerd -s aufs\n",
				etcUnit: "[Service]\nExecStart=/usr/bin/dockerd -s vfs\n",
			},
			want: Report{Init: "systemd", Unit: etcUnit, Findings: []Finding{
				{Key: StorageDriver, Flag: "-s", Value: "vfs", File: etcUnit, Line: 2},
			}},
		},
		{
			name: "drop-ins: lexical order, same name hides, /dev/null masks, non-.conf ignored",
			files: map[string]string{
				usrLibUnit: "[Service]\nExecStart=/usr/bin/dockerd -H fd://\n",
				"/usr/lib/systemd/system/docker.service.d/10-a.conf": "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -s btrfs\n",
				"/usr/lib/systemd/system/docker.service.d/20-b.conf": "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -s zfs\n",
				etcDropIns + "20-b.conf":                             "[Service]\nEnvironment=\"DOCKER_DRIVER=vfs\" X=1\n",
				"/run/systemd/system/docker.service.d/05-c.conf":     "[Service]\nExecStart=/usr/bin/dockerd -s aufs\n",
				"/usr/lib/systemd/system/docker.service.d/30-d.txt":  "[Service]\nExecStart=/usr/bin/dockerd -s overlay\n",
				"/usr/lib/systemd/system/docker.service.d/40-e.conf": "[Unit]\nExecStart=/usr/bin/dockerd -s overlay\n",
			},
			links: map[string]string{etcDropIns + "05-c.conf": "/dev/null"},
			want: Report{Init: "systemd", Unit: usrLibUnit,
				DropIns: []string{"/usr/lib/systemd/system/docker.service.d/10-a.conf", etcDropIns + "20-b.conf", "/usr/lib/systemd/system/docker.service.d/40-e.conf"},
				Findings: []Finding{
					{Key: StorageDriver, Flag: "-s", Value: "btrfs", File: "/usr/lib/systemd/system/docker.service.d/10-a.conf", Line: 3},
					{Key: DriverEnv, Flag: "DOCKER_DRIVER", Value: "vfs", File: etcDropIns + "20-b.conf", Line: 2},
				},
			},
		},
		{
			name: "merged /usr: drop-ins read once",
			files: map[string]string{
				usrLibUnit: "[Service]\nExecStart=/usr/bin/dockerd\n",
				"/usr/lib/systemd/system/docker.service.d/storage.conf": "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd --storage-opt=overlay2.size=1G\n",
			},
			links: map[string]string{"/lib": "usr/lib"},
			want: Report{Init: "systemd", Unit: usrLibUnit,
				DropIns: []string{"/usr/lib/systemd/system/docker.service.d/storage.conf"},
				Findings: []Finding{
					{Key: StorageOpts, Flag: "--storage-opt", Value: "overlay2.size=1G", File: "/usr/lib/systemd/system/docker.service.d/storage.conf", Line: 3},
				},
			},
		},
		{
			name: "variables: EnvironmentFile wins over Environment, braced and bare forms",
			files: map[string]string{
				libUnit: "[Service]\nEnvironment=STORAGE=--storage-driver=zfs \"OPTS=--data-root /srv/docker\"\nEnvironmentFile=/etc/docker.env\n" +
					"ExecStart=/usr/bin/dockerd ${STORAGE} $OPTS $UNSET -Ds overlay2 -H unix:///run/docker.sock -sdevicemapper --storage-opt=zfs.fsname=tank -- -s ignored\n",
				"/etc/docker.env": "# set by provisioning\nexport STORAGE=--storage-driver=btrfs\n",
			},
			want: Report{Init: "systemd", Unit: libUnit, Findings: []Finding{
				{Key: StorageDriver, Flag: "--storage-driver", Value: "btrfs", File: "/etc/docker.env", Line: 2, Via: "$STORAGE in ExecStart at " + libUnit + ":4"},
				{Key: DataRoot, Flag: "--data-root", Value: "/srv/docker", File: libUnit, Line: 2, Via: "$OPTS in ExecStart at " + libUnit + ":4"},
				{Key: StorageDriver, Flag: "-s", Value: "overlay2", File: libUnit, Line: 4},
				{Key: StorageDriver, Flag: "-s", Value: "devicemapper", File: libUnit, Line: 4},
				{Key: StorageOpts, Flag: "--storage-opt", Value: "zfs.fsname=tank", File: libUnit, Line: 4},
			}},
		},
		{
			name: "prefixes, sh -c and config-file",
			files: map[string]string{
				libUnit: "[Service]\nExecStartPre=/usr/bin/dockerd -s pre\nExecStart=-@/usr/bin/dockerd dockerd --config-file=/srv/daemon.json\n" +
					"ExecStart=/bin/sh -c 'exec /usr/bin/dockerd -s \"overlay2\"'\nExecReload=/bin/kill -s HUP $MAINPID\n",
			},
			want: Report{Init: "systemd", Unit: libUnit, Findings: []Finding{
				{Key: ConfigFile, Flag: "--config-file", Value: "/srv/daemon.json", File: libUnit, Line: 3},
				{Key: StorageDriver, Flag: "-s", Value: "overlay2", File: libUnit, Line: 4},
			}},
		},
		{
			name: "wrapper script: only long flags are trusted",
			files: map[string]string{
				libUnit: "[Service]\nExecStart=/usr/local/bin/start-docker --storage-driver overlay2 -s 9\n",
			},
			want: Report{Init: "systemd", Unit: libUnit,
				Findings: []Finding{{Key: StorageDriver, Flag: "--storage-driver", Value: "overlay2", File: libUnit, Line: 2}},
				Warnings: []string{libUnit + ":2: ExecStart does not run dockerd directly; flags passed by /usr/local/bin/start-docker are not seen"},
			},
		},
		{
			name: "missing required EnvironmentFile",
			files: map[string]string{
				libUnit: "[Service]\nEnvironmentFile=/etc/sysconfig/docker\nExecStart=/usr/bin/dockerd $OPTIONS\n",
			},
			want: Report{Init: "systemd", Unit: libUnit, Findings: []Finding{},
				Warnings: []string{libUnit + ":2: EnvironmentFile /etc/sysconfig/docker does not exist: systemd will not start docker.service"},
			},
		},
		{
			name: "absolute symlinks resolve inside the root",
			files: map[string]string{
				"/opt/units/docker.service": "[Service]\nEnvironmentFile=/etc/default/docker\nExecStart=/usr/bin/dockerd $DOCKER_OPTS\n",
				"/opt/env/docker":           "DOCKER_OPTS=-s=vfs\n",
			},
			links: map[string]string{etcUnit: "/opt/units/docker.service", "/etc/default/docker": "/opt/env/docker"},
			want: Report{Init: "systemd", Unit: etcUnit, Findings: []Finding{
				{Key: StorageDriver, Flag: "-s", Value: "vfs", File: "/etc/default/docker", Line: 1, Via: "$DOCKER_OPTS in ExecStart at " + etcUnit + ":3"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := makeHost(t, tt.files, tt.links)
			got, err := Scan(root)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("got\n%s\nwant\n%s", dump(*got), dump(tt.want))
			}
		})
	}
}

func dump(r Report) string {
	var b strings.Builder
	b.WriteString("init=" + r.Init + " unit=" + r.Unit)
	if r.Masked {
		b.WriteString(" masked")
	}
	b.WriteString("\n dropins=" + strings.Join(r.DropIns, ","))
	for _, f := range r.Findings {
		b.WriteString("\n finding " + f.String())
	}
	for _, f := range r.Ignored {
		b.WriteString("\n ignored " + f.String())
	}
	for _, w := range r.Warnings {
		b.WriteString("\n warning " + w)
	}
	if r.Findings == nil {
		b.WriteString("\n (nil findings)")
	}
	if r.Path != "" {
		b.WriteString("\n path " + r.Path + " from " + r.PathFrom)
	}
	return b.String()
}

func TestScanErrors(t *testing.T) {
	t.Run("FIFO environment file is not opened", func(t *testing.T) {
		root := makeHost(t, map[string]string{libUnit: "@debian-docker.io.service"}, nil)
		if err := os.MkdirAll(filepath.Join(root, "etc/default"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(filepath.Join(root, "etc/default/docker"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Scan(root)
		if want := "read /etc/default/docker: a FIFO, not a regular file"; err == nil || err.Error() != want {
			t.Fatalf("got %v, want %s", err, want)
		}
	})
	t.Run("oversized unit", func(t *testing.T) {
		root := makeHost(t, map[string]string{libUnit: "[Service]\n" + strings.Repeat("#", maxFile)}, nil)
		_, err := Scan(root)
		if want := "read /lib/systemd/system/docker.service: file is 1048586 bytes; over the 1048576-byte limit"; err == nil || err.Error() != want {
			t.Fatalf("got %v, want %s", err, want)
		}
	})
	t.Run("symlink loop", func(t *testing.T) {
		root := makeHost(t, nil, map[string]string{etcUnit: "docker.service"})
		_, err := Scan(root)
		if want := "read /etc/systemd/system/docker.service: read /etc/systemd/system/docker.service: too many levels of symbolic links"; err == nil || err.Error() != want {
			t.Fatalf("got %v, want %s", err, want)
		}
	})
}

func TestFindingString(t *testing.T) {
	tests := []struct {
		f    Finding
		want string
	}{
		{Finding{Key: StorageDriver, Flag: "-s", Value: "aufs", File: "/etc/default/docker", Line: 15, Via: "$DOCKER_OPTS in ExecStart at /lib/systemd/system/docker.service:14"},
			"/etc/default/docker:15: -s aufs (storage-driver, via $DOCKER_OPTS in ExecStart at /lib/systemd/system/docker.service:14)"},
		{Finding{Key: StorageOpts, Flag: "--storage-opt", Value: "dm.fs=xfs", File: "/x.conf", Line: 3},
			"/x.conf:3: --storage-opt=dm.fs=xfs (storage-opts)"},
		{Finding{Key: DriverEnv, Flag: "DOCKER_DRIVER", Value: "vfs", File: "/x.conf", Line: 2},
			"/x.conf:2: DOCKER_DRIVER=vfs (DOCKER_DRIVER)"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
	r := Report{Findings: []Finding{tests[0].f, {Key: DataRoot}, tests[1].f, tests[2].f}}
	if got := r.Conflicts(); !reflect.DeepEqual(got, []Finding{tests[0].f, tests[1].f}) {
		t.Fatalf("Conflicts() = %v", got)
	}
}
