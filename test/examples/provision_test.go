package examples

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

const provisionScript = "examples/provision/select-storage-driver.sh"

// TestProvisionScriptIsCleanPOSIX wants shellcheck silent on the script,
// checked as POSIX sh at every severity.
func TestProvisionScriptIsCleanPOSIX(t *testing.T) {
	testutil.RequiresTool(t, "shellcheck")
	path := filepath.Join(root(t), provisionScript)
	first, _, _ := strings.Cut(readFile(t, path), "\n")
	if first != "#!/bin/sh" {
		t.Errorf("first line %q, want #!/bin/sh", first)
	}
	r := runCmd(t, exec.Command("shellcheck", "--shell=sh", "--severity=style", path))
	if r.code != 0 {
		t.Errorf("shellcheck: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestProvisionScriptExitCodes runs the script under dash (or sh) against
// fixture hosts, with a temporary daemon.json, once for each exit code of
// graphprobe select, and checks what it says and does: Docker restarted
// only when daemon.json was written, the fallback driver on request, an
// alert and never --force on a refusal, daemon.json untouched on failure.
func TestProvisionScriptExitCodes(t *testing.T) {
	shell := "dash"
	if _, err := exec.LookPath(shell); err != nil {
		shell = "sh"
	}
	testutil.RequiresTool(t, shell)
	gp := cli(t)

	cases := []struct {
		name     string
		host     string
		args     []string
		env      []string
		config   string // daemon.json before ("" = none)
		runs     int    // the script runs this often; the last run is checked
		code     int
		say      []string // in the script's stderr
		driver   string   // storage-driver in daemon.json after ("" = unchanged)
		restart  bool
		alert    bool
		fallback bool
	}{
		{name: "0 written", host: "ubuntu-16.04", args: []string{"--docker-version", "25.0.5"},
			code: 0, say: []string{"storage driver overlay2 for Docker 25.0.5: wrote "}, driver: "overlay2", restart: true},
		{name: "0 already up to date", host: "ubuntu-16.04", args: []string{"--docker-version", "25.0.5"}, runs: 2,
			code: 0, say: []string{"storage driver overlay2 for Docker 25.0.5: ", "already up to date"}, driver: "overlay2"},
		{name: "0 btrfs host", host: "btrfs-root", args: []string{"--docker-version", "20.10.24"},
			code: 0, say: []string{"storage driver btrfs for Docker 20.10.24: wrote "}, driver: "btrfs", restart: true},
		{name: "1 malformed daemon.json", host: "ubuntu-16.04", args: []string{"--docker-version", "25.0.5"}, config: "{\n",
			code: 1, say: []string{"graphprobe could not decide (exit 1): parse ", "nothing was written"}},
		{name: "2 bad flag value", host: "ubuntu-16.04", args: []string{"--docker-version", "banana"},
			code: 2, say: []string{"graphprobe rejected its arguments (exit 2): --docker-version", "fix the flags"}},
		{name: "2 unknown flag", host: "ubuntu-16.04", args: []string{"--no-such-flag"},
			code: 2, say: []string{"graphprobe rejected its arguments (exit 2)", "no-such-flag"}},
		{name: "3 aborts", host: "ubuntu-16.04", args: []string{"--docker-version", "25.0.5", "--driver", "aufs"},
			code: 3, say: []string{"aufs", "(exit 3)", "aborting: daemon.json is unchanged"}},
		{name: "3 falls back to vfs", host: "ubuntu-16.04", args: []string{"--docker-version", "25.0.5", "--driver", "aufs"},
			env: []string{"GRAPHPROBE_FALLBACK_DRIVER=vfs"}, code: 0,
			say: []string{"(exit 3)", "falling back to vfs", "storage driver vfs for Docker 25.0.5: wrote "}, driver: "vfs", restart: true, fallback: true},
		{name: "4 refused, not forced", host: "ubuntu-16.04-two-prior", args: []string{"--docker-version", "20.10.24"},
			code: 4, say: []string{"refused to change Docker's storage driver (exit 4)", "aufs, overlay2", "not forcing it"}, alert: true},
		{name: "4 aufs dropped", host: "ubuntu-18.04-aufs-dropped", args: []string{"--docker-version", "25.0.5"},
			code: 4, say: []string{"(exit 4)", "aufs", "not forcing it"}, alert: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			config := filepath.Join(dir, "daemon.json")
			if c.config != "" {
				if err := os.WriteFile(config, []byte(c.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// A graphprobe that records how it was called.
			calls := filepath.Join(dir, "calls")
			wrapper := filepath.Join(dir, "graphprobe")
			if err := os.WriteFile(wrapper, []byte(fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$*\" >>%q\nexec %q \"$@\"\n", calls, gp)), 0o755); err != nil {
				t.Fatal(err)
			}
			restarted, alert := filepath.Join(dir, "restarted"), filepath.Join(dir, "alert")
			args := append([]string{filepath.Join(root(t), provisionScript), "--root-prefix", host(t, c.host), "--config", config}, c.args...)
			var r result
			for i := 0; i < max(c.runs, 1); i++ {
				os.Remove(restarted)
				cmd := exec.Command(shell, args...)
				cmd.Env = append(os.Environ(),
					"GRAPHPROBE="+wrapper,
					"DOCKER_RESTART_CMD=touch "+restarted,
					"GRAPHPROBE_ALERT_CMD=printf '%s\\n' >"+alert,
					"GRAPHPROBE_FALLBACK_DRIVER=", "TMPDIR="+dir)
				cmd.Env = append(cmd.Env, c.env...)
				r = runCmd(t, cmd)
			}
			if r.code != c.code {
				t.Errorf("exit %d, want %d\n%s", r.code, c.code, r.stderr)
			}
			for _, s := range c.say {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			got := readFile(t, config)
			switch {
			case c.driver == "" && got != c.config:
				t.Errorf("daemon.json changed to %q", got)
			case c.driver != "" && !strings.Contains(got, `"storage-driver": "`+c.driver+`"`):
				t.Errorf("daemon.json %q, want storage-driver %s", got, c.driver)
			}
			if exists(restarted) != c.restart {
				t.Errorf("Docker restarted: %v, want %v", exists(restarted), c.restart)
			}
			if a := readFile(t, alert); (a != "") != c.alert || (c.alert && !strings.Contains(a, "refused")) {
				t.Errorf("alert %q, want one: %v", a, c.alert)
			}
			log := readFile(t, calls)
			if strings.Contains(log, "--force") {
				t.Errorf("the script ran graphprobe with --force:\n%s", log)
			}
			wantCalls := 1 + map[bool]int{true: 1}[c.fallback]
			if n := strings.Count(log, "\n"); n != wantCalls*max(c.runs, 1) {
				t.Errorf("graphprobe ran %d times, want %d:\n%s", n, wantCalls*max(c.runs, 1), log)
			}
			if matches, _ := filepath.Glob(filepath.Join(dir, "select-storage-driver.*")); len(matches) > 0 {
				t.Errorf("the script left %v", matches)
			}
		})
	}
}
