package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// unitFile parses packaging/graphprobe-select.service into section ->
// key -> values (in order).
func unitFile(t *testing.T) map[string]map[string][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "packaging", unitName))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string][]string{}
	var sec string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			sec = strings.Trim(line, "[]")
			out[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("unit: bad line %q", line)
			}
			out[sec][k] = append(out[sec][k], v)
		}
	}
	return out
}

// systemdWords splits a command line as systemd does: words separated by
// spaces, single or double quotes grouping, "$$" a literal "$".
func systemdWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				t.Fatalf("unterminated quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	for i := range words {
		words[i] = strings.ReplaceAll(words[i], "$$", "$")
	}
	return words
}

// TestUnitRunsSelectBeforeDocker checks what the unit must do: run
// `graphprobe select` with text output for the journal, ordered before and
// pulled in by docker.service, only where dockerd is installed, counting
// exit 4 (and only 4) as success.
func TestUnitRunsSelectBeforeDocker(t *testing.T) {
	u := unitFile(t)
	unit, svc, inst := u["Unit"], u["Service"], u["Install"]
	start := svc["ExecStart"]
	if len(start) != 1 || !strings.HasPrefix(start[0], "/usr/bin/graphprobe select ") || !strings.Contains(start[0], "--format text") {
		t.Errorf("ExecStart=%v, want one /usr/bin/graphprobe select ... --format text", start)
	}
	if svc["Type"][0] != "oneshot" {
		t.Errorf("Type=%v, want oneshot", svc["Type"])
	}
	// Not RemainAfterExit: ExecStopPost must run right after ExecStart.
	if r := svc["RemainAfterExit"]; len(r) > 0 && r[len(r)-1] != "no" {
		t.Errorf("RemainAfterExit=%v: ExecStopPost would only run at shutdown", r)
	}
	if !strings.Contains(" "+strings.Join(unit["Before"], " ")+" ", " docker.service ") {
		t.Errorf("Before=%v lacks docker.service", unit["Before"])
	}
	if !strings.Contains(" "+strings.Join(inst["WantedBy"], " ")+" ", " docker.service ") {
		t.Errorf("WantedBy=%v lacks docker.service", inst["WantedBy"])
	}
	for _, k := range []string{"Requires", "BindsTo", "RequiredBy", "RequisiteOf"} {
		if len(unit[k])+len(inst[k]) > 0 {
			t.Errorf("%s= would tie Docker's start to this unit's success", k)
		}
	}
	success := strings.Fields(strings.Join(svc["SuccessExitStatus"], " "))
	if strings.Join(success, " ") != "4" {
		t.Errorf("SuccessExitStatus=%v, want exactly 4 (1, 2 and 3 must fail the unit)", success)
	}
	var triggering []string
	for _, c := range unit["ConditionPathExists"] {
		if p, ok := strings.CutPrefix(c, "|"); ok {
			triggering = append(triggering, p)
		}
	}
	for _, want := range []string{"/usr/bin/dockerd", "/usr/sbin/dockerd"} {
		if !strings.Contains(strings.Join(triggering, " "), want) {
			t.Errorf("no triggering ConditionPathExists=|%s (docker-ce and docker.io install there)", want)
		}
	}
}

// TestUnitSandboxLeavesGraphprobeItsPaths checks the hardening against what
// graphprobe writes: the default daemon.json's directory, its lock's
// directory and the default data root must stay writable under the unit's
// ProtectSystem= and ReadWritePaths=, and mounts must stay possible.
func TestUnitSandboxLeavesGraphprobeItsPaths(t *testing.T) {
	svc := unitFile(t)["Service"]
	help := run(t, cli(t), "help", "select")
	var writes []string
	for _, m := range regexp.MustCompile(`\(default (/[^) ]+)\)`).FindAllStringSubmatch(help, -1) {
		writes = append(writes, filepath.Dir(m[1]))
	}
	if m := regexp.MustCompile(`else (/[a-z/]+)\)`).FindStringSubmatch(help); m != nil {
		writes = append(writes, m[1]) // the default data root
	}
	if len(writes) < 3 {
		t.Fatalf("select --help names %d default paths: %v", len(writes), writes)
	}
	// What each ProtectSystem= value makes read-only (systemd.exec(5)).
	readOnly := map[string][]string{
		"":       nil,
		"no":     nil,
		"yes":    {"/usr", "/boot", "/efi"},
		"full":   {"/usr", "/boot", "/efi", "/etc"},
		"strict": {"/"},
	}
	ps := ""
	if v := svc["ProtectSystem"]; len(v) > 0 {
		ps = v[len(v)-1]
	}
	ro, ok := readOnly[ps]
	if !ok {
		t.Fatalf("ProtectSystem=%s: unknown value", ps)
	}
	var rw []string
	for _, v := range svc["ReadWritePaths"] {
		for _, p := range strings.Fields(v) {
			rw = append(rw, strings.TrimLeft(p, "-+"))
		}
	}
	under := func(p, dir string) bool { return dir == "/" || p == dir || strings.HasPrefix(p, dir+"/") }
	for _, w := range writes {
		blocked := false
		for _, r := range ro {
			blocked = blocked || under(w, r)
		}
		for _, r := range rw {
			if under(w, r) {
				blocked = false
			}
		}
		if blocked {
			t.Errorf("graphprobe writes %s, which ProtectSystem=%s makes read-only (ReadWritePaths=%v)", w, ps, rw)
		}
	}
	// The state dir holds the record of the last proof, which lets a boot
	// where nothing changed skip the proof: systemd must make it
	// (StateDirectory=, writable under any ProtectSystem=), or
	// ReadWritePaths= must name it.
	m := regexp.MustCompile(`--state-dir DIR[^(]*\(default (/[^) ]+)\)`).FindStringSubmatch(help)
	if m == nil {
		t.Fatal("select --help names no default --state-dir")
	}
	stateOK := false
	for _, v := range svc["StateDirectory"] {
		for _, d := range strings.Fields(v) {
			stateOK = stateOK || "/var/lib/"+strings.Split(d, ":")[0] == m[1]
		}
	}
	for _, r := range rw {
		stateOK = stateOK || under(m[1], r)
	}
	if !stateOK {
		t.Errorf("the default state dir %s is neither the unit's StateDirectory= nor in ReadWritePaths=%v", m[1], rw)
	}
	// Mounts in a private namespace need CAP_SYS_ADMIN, entering it from
	// another thread CAP_SYS_CHROOT too, modprobe CAP_SYS_MODULE, whiteout
	// devices CAP_MKNOD; the namespace types must allow mnt.
	caps := strings.Join(svc["CapabilityBoundingSet"], " ")
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_SYS_CHROOT", "CAP_SYS_MODULE", "CAP_MKNOD", "CAP_CHOWN", "CAP_FOWNER"} {
		if caps != "" && !strings.Contains(" "+caps+" ", " "+c+" ") {
			t.Errorf("CapabilityBoundingSet lacks %s", c)
		}
	}
	if ns := svc["RestrictNamespaces"]; len(ns) > 0 && !strings.Contains(ns[len(ns)-1], "mnt") && ns[len(ns)-1] != "no" {
		t.Errorf("RestrictNamespaces=%v forbids the private mount namespace", ns)
	}
	for _, k := range []string{"PrivateDevices", "ProtectKernelModules", "ProtectClock", "RestrictSUIDSGID", "DynamicUser"} {
		if v := svc[k]; len(v) > 0 && v[len(v)-1] != "no" && v[len(v)-1] != "false" {
			t.Errorf("%s=%s would break graphprobe's test mounts, modprobe or layers", k, v[len(v)-1])
		}
	}
	if v := svc["PrivateNetwork"]; len(v) == 0 || v[len(v)-1] != "yes" {
		t.Errorf("PrivateNetwork=%v: graphprobe needs no network", v)
	}
}

// TestUnitLogsTheOutcome runs the unit's ExecStopPost command as systemd
// would after each outcome and checks the journal line and its priority
// prefix.
func TestUnitLogsTheOutcome(t *testing.T) {
	testutil.RequiresTool(t, "sh")
	post := unitFile(t)["Service"]["ExecStopPost"]
	if len(post) != 1 {
		t.Fatalf("ExecStopPost=%v, want one command", post)
	}
	words := systemdWords(t, strings.TrimLeft(post[0], "-+@!:"))
	for _, c := range []struct {
		result, code, status string
		prefix               string // "" = no line
	}{
		{"success", "exited", "0", ""},
		{"success", "exited", "4", "<4>"},
		{"exit-code", "exited", "3", "<3>"},
		{"exit-code", "exited", "1", "<3>"},
		{"timeout", "killed", "TERM", "<3>"},
		{"signal", "killed", "KILL", "<3>"},
	} {
		cmd := exec.Command(words[0], words[1:]...)
		cmd.Env = append(os.Environ(), "SERVICE_RESULT="+c.result, "EXIT_CODE="+c.code, "EXIT_STATUS="+c.status)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s/%s: %v\n%s", c.result, c.status, err, out)
			continue
		}
		got := strings.TrimSpace(string(out))
		switch {
		case c.prefix == "" && got != "":
			t.Errorf("%s/%s: logs %q, want nothing", c.result, c.status, got)
		case c.prefix != "" && (!strings.HasPrefix(got, c.prefix) || strings.Count(got, "\n") > 0):
			t.Errorf("%s/%s: logs %q, want one line with priority %s", c.result, c.status, got, c.prefix)
		case c.prefix != "" && !strings.Contains(got, c.status):
			t.Errorf("%s/%s: logs %q, without the status", c.result, c.status, got)
		}
	}
}

// TestUnitExposure has systemd-analyze rate the unit's sandbox offline and
// wants it at "OK" or better (exposure at most 5.0 of 10).
func TestUnitExposure(t *testing.T) {
	testutil.RequiresTool(t, "systemd-analyze")
	cmd := exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=50", filepath.Join(root(t), "packaging", unitName))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Overall exposure level") {
		t.Errorf("systemd-analyze security printed no exposure level:\n%s", out)
	}
}
