package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyHost copies a fixture host so that a test may change it.
func copyHost(t *testing.T, host string) string {
	t.Helper()
	src := filepath.Join(repoRoot, "testdata/hosts", host)
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

type selectDoc struct {
	Driver      string   `json:"driver"`
	GraphDriver string   `json:"graphDriver"`
	StorageOpts []string `json:"storageOpts"`
	ImageStore  string   `json:"imageStore"`
	Refused     *struct {
		Kind, Message, Hint string
	} `json:"refused"`
	DaemonJSON *struct {
		Path    string `json:"path"`
		Changed bool   `json:"changed"`
		Written bool   `json:"written"`
		Backup  string `json:"backup"`
		Report  string `json:"report"`
		Diff    string `json:"diff"`
	} `json:"daemonJSON"`
}

func selectJSON(t *testing.T, args ...string) (selectDoc, string, string, int) {
	t.Helper()
	out, errOut, code := runCLI(t, append([]string{"select", "--format", "json"}, args...)...)
	var doc selectDoc
	if out != "" {
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
	}
	return doc, out, errOut, code
}

func TestSelectFixture(t *testing.T) {
	schema := loadSchema(t, "select.schema.json")
	tests := []struct {
		name    string
		host    string
		docker  string
		args    []string
		config  string // initial daemon.json ("" none)
		code    int
		driver  string
		opts    []string
		refusal string
		stderr  string
	}{
		{name: "xenial 20.10", host: "ubuntu-16.04", docker: "20.10.24", code: 0, driver: "overlay2"},
		{name: "xenial 17.03 picks aufs", host: "ubuntu-16.04", docker: "17.03.2", code: 0, driver: "aufs"},
		{name: "centos 7.9 on 17.03 writes override_kernel_check", host: "centos-7.9", docker: "17.03.2", code: 0, driver: "overlay2", opts: []string{"overlay2.override_kernel_check=true"}},
		{name: "centos 7.9 on 24 drops override_kernel_check", host: "centos-7.9", docker: "24.0.9", config: `{"storage-driver": "overlay2", "storage-opts": ["overlay2.override_kernel_check=true"]}`, code: 0, driver: "overlay2", opts: []string{}},
		{name: "two prior drivers", host: "ubuntu-16.04-two-prior", docker: "20.10.24", code: 4, refusal: "several-prior", stderr: "refused for safety"},
		{name: "aufs dropped by a kernel upgrade", host: "ubuntu-18.04-aufs-dropped", docker: "20.10.24", code: 4, refusal: "prior-state"},
		{name: "aufs on docker 24", host: "ubuntu-16.04", docker: "24.0.9", args: []string{"--driver", "aufs"}, code: 3, stderr: "removed in Docker 24.0"},
		{name: "docker 29 containerd store", host: "debian-12", docker: "29.0.0", code: 0, driver: "overlayfs"},
		{name: "malformed daemon.json", host: "debian-12", docker: "20.10.24", config: "{\n  \"debug\": true,\n  \"storage-driver\": \n}\n", code: 1, stderr: "line 4, column 1"},
		{name: "non-object daemon.json", host: "debian-12", docker: "20.10.24", config: "[1, 2]", code: 1, stderr: "daemon.json"},
		{name: "bad docker version", host: "debian-12", docker: "latest", code: 2, stderr: "--docker-version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := copyHost(t, tt.host)
			cfg := filepath.Join(t.TempDir(), "daemon.json")
			if tt.config != "" {
				os.WriteFile(cfg, []byte(tt.config), 0o644)
			}
			args := append([]string{"--root-prefix", host, "--config", cfg, "--docker-version", tt.docker}, tt.args...)
			doc, out, errOut, code := selectJSON(t, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr: %s\nstdout: %.2000s", code, tt.code, errOut, out)
			}
			if tt.stderr != "" && !strings.Contains(errOut, tt.stderr) {
				t.Errorf("stderr %q, want it to mention %q", errOut, tt.stderr)
			}
			if out != "" {
				validate(t, schema, out)
			}
			if tt.code == 1 || tt.code == 2 {
				if out != "" {
					t.Errorf("stdout on error: %.200s", out)
				}
				if data, _ := os.ReadFile(cfg); string(data) != tt.config {
					t.Errorf("daemon.json changed on error: %q", data)
				}
				return
			}
			if doc.Driver != tt.driver {
				t.Errorf("driver = %q, want %q", doc.Driver, tt.driver)
			}
			if tt.refusal != "" && (doc.Refused == nil || doc.Refused.Kind != tt.refusal) {
				t.Errorf("refused = %+v, want %s", doc.Refused, tt.refusal)
			}
			if tt.opts != nil && strings.Join(doc.StorageOpts, ",") != strings.Join(tt.opts, ",") {
				t.Errorf("storage-opts = %q, want %q", doc.StorageOpts, tt.opts)
			}
			data, _ := os.ReadFile(cfg)
			if tt.code != 0 {
				if string(data) != tt.config {
					t.Errorf("daemon.json changed on exit %d: %q", tt.code, data)
				}
				return
			}
			var written map[string]any
			if err := json.Unmarshal(data, &written); err != nil {
				t.Fatalf("daemon.json after select: %v: %q", err, data)
			}
			if written["storage-driver"] != tt.driver {
				t.Errorf("daemon.json storage-driver = %v, want %s", written["storage-driver"], tt.driver)
			}
			// A rerun finds nothing to do and writes nothing.
			again, _, _, code := selectJSON(t, args...)
			if code != 0 || again.DaemonJSON == nil || again.DaemonJSON.Changed || again.DaemonJSON.Written {
				t.Errorf("rerun: exit %d, daemonJSON %+v", code, again.DaemonJSON)
			}
			if after, _ := os.ReadFile(cfg); string(after) != string(data) {
				t.Error("rerun changed daemon.json")
			}
		})
	}
}

func TestSelectKeepsOtherKeys(t *testing.T) {
	host := copyHost(t, "debian-12")
	cfg := filepath.Join(t.TempDir(), "daemon.json")
	orig := "{\n  \"log-driver\": \"json-file\",\n  \"log-opts\": {\"max-size\": \"10m\", \"max-file\": \"3\"},\n  \"registry-mirrors\": [\"https://mirror.example\"],\n  \"default-ulimits\": {\"nofile\": {\"Name\": \"nofile\", \"Hard\": 64000, \"Soft\": 64000}},\n  \"live-restore\": true\n}\n"
	os.WriteFile(cfg, []byte(orig), 0o640)
	doc, out, errOut, code := selectJSON(t, "--root-prefix", host, "--config", cfg, "--docker-version", "20.10.24")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	data, _ := os.ReadFile(cfg)
	got := string(data)
	// Every original line is still there, in order; only storage-driver is new.
	idx := 0
	for _, line := range strings.Split(strings.TrimSuffix(orig, "\n}\n"), "\n") {
		i := strings.Index(got[idx:], strings.TrimSuffix(line, ","))
		if i < 0 {
			t.Fatalf("line %q lost or reordered:\n%s", line, got)
		}
		idx += i
	}
	if !strings.Contains(got, `"storage-driver": "overlay2"`) {
		t.Errorf("no storage-driver:\n%s", got)
	}
	st, _ := os.Stat(cfg)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", st.Mode().Perm())
	}
	if doc.DaemonJSON.Backup == "" {
		t.Fatalf("no backup: %s", out)
	}
	if b, _ := os.ReadFile(doc.DaemonJSON.Backup); string(b) != orig {
		t.Errorf("backup %q, want the original", b)
	}
	if doc.DaemonJSON.Report == "" {
		t.Error("no report kept beside the backup")
	} else if r, err := os.ReadFile(doc.DaemonJSON.Report); err != nil || !strings.Contains(string(r), `"driver": "overlay2"`) {
		t.Errorf("report: %v %.200s", err, r)
	}
}

func TestSelectDryRun(t *testing.T) {
	host := copyHost(t, "debian-12")
	cfg := filepath.Join(t.TempDir(), "daemon.json")
	os.WriteFile(cfg, []byte(`{"debug": true}`), 0o644)
	out, errOut, code := runCLI(t, "select", "--dry-run", "--root-prefix", host, "--config", cfg, "--docker-version", "20.10.24")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if data, _ := os.ReadFile(cfg); string(data) != `{"debug": true}` {
		t.Errorf("dry run wrote %q", data)
	}
	for _, want := range []string{"dry run: this diff would be applied", "--- " + cfg, "+++ " + cfg, `"storage-driver": "overlay2"}`, "overlay2        eligible", "aufs            rejected"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(cfg))
	if len(entries) != 1 {
		t.Errorf("dry run left files: %v", entries)
	}
}

// TestSelectFlagConflict: a storage flag on dockerd's command line refuses
// the write (exit 4), naming where it is, with the step that makes its
// removal count on the init system that reads it.
func TestSelectFlagConflict(t *testing.T) {
	const unitHead = "[Unit]\nDescription=Docker\n\n[Service]\nType=notify\n"
	tests := []struct {
		name      string
		files     map[string]string
		where     string
		hint      string
		notInHint string
	}{
		{
			name:  "in the unit",
			files: map[string]string{"lib/systemd/system/docker.service": unitHead + "ExecStart=/usr/bin/dockerd -H fd:// --storage-driver=vfs\n"},
			where: "/lib/systemd/system/docker.service:6",
			hint:  "remove the flags there, then run systemctl daemon-reload so that systemd rereads the unit; or leave daemon.json alone",
		},
		{
			name: "in an environment file the unit loads",
			files: map[string]string{
				"lib/systemd/system/docker.service": unitHead + "EnvironmentFile=-/etc/default/docker\nExecStart=/usr/bin/dockerd -H fd:// $DOCKER_OPTS\n",
				"etc/default/docker":                "DOCKER_OPTS=\"-s vfs\"\n",
			},
			where:     "/etc/default/docker:1",
			hint:      "remove the flags there (systemd reads that file at every start of docker, so no daemon-reload is needed); or leave daemon.json alone",
			notInHint: "daemon-reload so",
		},
		{
			name:      "sysvinit",
			files:     map[string]string{"etc/default/docker": "DOCKER_OPTS=\"-s vfs\"\n"},
			where:     "/etc/default/docker:1",
			hint:      "remove the flags there (docker's init script reads that file at every start: service docker restart applies it); or leave daemon.json alone",
			notInHint: "systemctl",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := copyHost(t, "debian-12")
			for name, content := range tt.files {
				p := filepath.Join(host, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := filepath.Join(t.TempDir(), "daemon.json")
			doc, _, errOut, code := selectJSON(t, "--root-prefix", host, "--config", cfg, "--docker-version", "20.10.24")
			if code != 4 {
				t.Fatalf("exit %d, want 4: %s", code, errOut)
			}
			if doc.Refused == nil || doc.Refused.Kind != "flag-conflict" || !strings.Contains(doc.Refused.Message, tt.where) {
				t.Fatalf("refusal %+v should name %s", doc.Refused, tt.where)
			}
			if doc.Refused.Hint != tt.hint {
				t.Errorf("hint %q\nwant %q", doc.Refused.Hint, tt.hint)
			}
			if tt.notInHint != "" && strings.Contains(doc.Refused.Hint, tt.notInHint) {
				t.Errorf("hint %q says %q", doc.Refused.Hint, tt.notInHint)
			}
			if _, err := os.Stat(cfg); err == nil {
				t.Error("daemon.json written despite the conflict")
			}
		})
	}
}

func TestMatrixExpected(t *testing.T) {
	out, errOut, code := runCLI(t, "matrix", filepath.Join(repoRoot, "testdata/hosts"), "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%.3000s", code, errOut, out)
	}
	var doc matrixDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if want := len(fixtureHosts(t)) * len(defaultMatrixVersions); len(doc.Rows) != want {
		t.Errorf("%d rows, want %d", len(doc.Rows), want)
	}
	for _, r := range doc.Rows {
		if r.Matches == nil || !*r.Matches {
			t.Errorf("%s on %s: %s, expected %q", r.Host, r.DockerVersion, r.Decision, r.Expected)
		}
	}
	// A wrong expectation is reported, with exit 1.
	exp := filepath.Join(t.TempDir(), "expect.yaml")
	os.WriteFile(exp, []byte("debian-12:\n  \"20.10\": vfs\n"), 0o644)
	out, _, code = runCLI(t, "matrix", filepath.Join(repoRoot, "testdata/hosts/debian-12"), "--docker-version", "20.10", "--expect", exp)
	if code != 1 || !strings.Contains(out, "expected vfs") {
		t.Errorf("mismatch: exit %d\n%s", code, out)
	}
}

// TestSelectFlagAlreadySet: a storage flag on dockerd's command line that
// already names the driver graphprobe decides leaves daemon.json alone,
// whether or not there is a daemon.json, and wherever the flag is set.
func TestSelectFlagAlreadySet(t *testing.T) {
	const unitOpts = "[Unit]\nDescription=Docker\n\n[Service]\nType=notify\nEnvironmentFile=-/etc/default/docker\nExecStart=/usr/bin/dockerd -H fd:// $DOCKER_OPTS\n"
	for _, tc := range []struct {
		name   string
		unit   string
		deflt  string
		config string // "" for no daemon.json
	}{
		{name: "unit flag, no daemon.json", unit: "[Unit]\nDescription=Docker\n\n[Service]\nType=notify\nExecStart=/usr/bin/dockerd -H fd:// -s overlay2\n"},
		{name: "unit flag, empty daemon.json", unit: "[Unit]\nDescription=Docker\n\n[Service]\nType=notify\nExecStart=/usr/bin/dockerd -H fd:// -s overlay2\n", config: "{}"},
		{name: "DOCKER_OPTS, no daemon.json", unit: unitOpts, deflt: "DOCKER_OPTS=\"-s overlay2\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := copyHost(t, "debian-12")
			unit := filepath.Join(host, "lib/systemd/system/docker.service")
			os.MkdirAll(filepath.Dir(unit), 0o755)
			os.WriteFile(unit, []byte(tc.unit), 0o644)
			if tc.deflt != "" {
				os.MkdirAll(filepath.Join(host, "etc/default"), 0o755)
				os.WriteFile(filepath.Join(host, "etc/default/docker"), []byte(tc.deflt), 0o644)
			}
			cfg := filepath.Join(t.TempDir(), "daemon.json")
			if tc.config != "" {
				os.WriteFile(cfg, []byte(tc.config), 0o644)
			}
			doc, _, errOut, code := selectJSON(t, "--root-prefix", host, "--config", cfg, "--docker-version", "20.10.24", "--state-dir", t.TempDir())
			if code != 0 {
				t.Fatalf("exit %d, want 0 (the flag already sets overlay2): %s", code, errOut)
			}
			if doc.Driver != "overlay2" || doc.DaemonJSON == nil || doc.DaemonJSON.Changed || doc.DaemonJSON.Written {
				t.Errorf("driver %q, daemonJSON %+v: want overlay2, unchanged", doc.Driver, doc.DaemonJSON)
			}
			if tc.config == "" {
				if _, err := os.Stat(cfg); err == nil {
					t.Error("daemon.json created although the flag sets the driver")
				}
			}
		})
	}
}

// TestSelectNewerRelease: a release newer than any graphprobe knows is
// decided by the newest rules, and the result says so.
func TestSelectNewerRelease(t *testing.T) {
	host := copyHost(t, "debian-12")
	cfg := filepath.Join(t.TempDir(), "daemon.json")
	out, errOut, code := runCLI(t, "select", "--format", "json", "--dry-run", "--root-prefix", host, "--config", cfg, "--docker-version", "30.0.0", "--state-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct{ Warnings []string }
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range doc.Warnings {
		if strings.Contains(w, "Docker 30.0.0 is newer than any release graphprobe knows") && strings.Contains(w, "rules of Docker 29") {
			found = true
		}
	}
	if !found {
		t.Errorf("warnings %q do not say that 30.0.0 is unknown and which rules apply", doc.Warnings)
	}
	text, _, _ := runCLI(t, "select", "--dry-run", "--root-prefix", host, "--config", cfg, "--docker-version", "30.0.0", "--state-dir", t.TempDir())
	if !strings.Contains(text, "newer than any release graphprobe knows") {
		t.Errorf("text output does not warn:\n%s", text)
	}
	// Known releases get no such warning.
	out, _, _ = runCLI(t, "select", "--format", "json", "--dry-run", "--root-prefix", host, "--config", cfg, "--docker-version", "29.0.0", "--state-dir", t.TempDir())
	if strings.Contains(out, "newer than any release") {
		t.Errorf("29.0.0 is warned about as unknown")
	}
}

// TestSelectImageStore: --image-store chooses the Docker 29 image store and
// wins over the policy; --driver writes what the user typed.
func TestSelectImageStore(t *testing.T) {
	host := copyHost(t, "debian-12")
	policyPath := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(policyPath, []byte("imageStore: containerd\n"), 0o644)
	for _, tc := range []struct {
		name         string
		args         []string
		code         int
		driver, want string
	}{
		{name: "default", args: nil, driver: "overlayfs", want: "containerd"},
		{name: "graphdriver", args: []string{"--image-store", "graphdriver"}, driver: "overlay2", want: "graphdriver"},
		{name: "flag wins over policy", args: []string{"--policy", policyPath, "--image-store", "graphdriver"}, driver: "overlay2", want: "graphdriver"},
		{name: "default over policy", args: []string{"--policy", policyPath, "--image-store", "default"}, driver: "overlayfs", want: "containerd"},
		{name: "--driver overlay2 is the graph driver", args: []string{"--driver", "overlay2"}, driver: "overlay2", want: "graphdriver"},
		{name: "--driver overlayfs is the snapshotter", args: []string{"--driver", "overlayfs"}, driver: "overlayfs", want: "containerd"},
		{name: "--driver overlay2 with the containerd store", args: []string{"--driver", "overlay2", "--image-store", "containerd"}, code: 2},
		{name: "bad value", args: []string{"--image-store", "snapshotter"}, code: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "daemon.json")
			args := append([]string{"--dry-run", "--root-prefix", host, "--config", cfg, "--docker-version", "29.0.0", "--state-dir", t.TempDir()}, tc.args...)
			doc, _, errOut, code := selectJSON(t, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, errOut)
			}
			if code != 0 {
				return
			}
			if doc.Driver != tc.driver || doc.ImageStore != tc.want {
				t.Errorf("driver %q store %q, want %q %q", doc.Driver, doc.ImageStore, tc.driver, tc.want)
			}
		})
	}
}
