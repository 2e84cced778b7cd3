package examples

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// ansibleEnv keeps ansible's files in dir and its output plain.
func ansibleEnv(dir string) []string {
	return append(os.Environ(),
		"HOME="+dir, "ANSIBLE_HOME="+filepath.Join(dir, ".ansible"),
		"ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"), "ANSIBLE_REMOTE_TEMP="+filepath.Join(dir, "tmp"),
		"ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=0", "ANSIBLE_PYTHON_INTERPRETER=auto_silent",
		"ANSIBLE_DEPRECATION_WARNINGS=0")
}

// TestAnsibleSyntax checks the example playbook, which imports the task
// file statically, with ansible-playbook --syntax-check; a copy whose task
// file names an unknown module must fail it.
func TestAnsibleSyntax(t *testing.T) {
	testutil.RequiresTool(t, "ansible-playbook")
	dir := t.TempDir()
	check := func(playbook string) result {
		cmd := exec.Command("ansible-playbook", "--syntax-check", "-i", "localhost,", playbook)
		cmd.Env = ansibleEnv(dir)
		return runCmd(t, cmd)
	}
	if r := check(filepath.Join(root(t), "examples/ansible/playbook.yml")); r.code != 0 {
		t.Errorf("ansible-playbook --syntax-check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	broken := filepath.Join(dir, "broken")
	if err := os.Mkdir(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	tasks := readFile(t, filepath.Join(root(t), "examples/ansible/graphprobe-select.yml"))
	if !strings.Contains(tasks, "ansible.builtin.set_fact:") {
		t.Fatal("the task file has no set_fact to break")
	}
	for name, content := range map[string]string{
		"playbook.yml":          readFile(t, filepath.Join(root(t), "examples/ansible/playbook.yml")),
		"graphprobe-select.yml": strings.Replace(tasks, "ansible.builtin.set_fact:", "ansible.builtin.no_such_module:", 1),
	} {
		if err := os.WriteFile(filepath.Join(broken, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r := check(filepath.Join(broken, "playbook.yml")); r.code == 0 {
		t.Errorf("--syntax-check passed a task file with an unknown module:\n%s", r.stdout)
	}
}

// TestAnsibleTasks runs the task file with ansible-playbook on localhost
// against fixture hosts, in a play whose "restart docker" handler touches a
// file, and checks each exit code's outcome: the handler runs only when
// daemonJSON.written is true, 1 to 4 fail the host with graphprobe's
// reason, a refusal is reported without failing when asked to, and the
// decision is kept in graphprobe_result.
func TestAnsibleTasks(t *testing.T) {
	testutil.RequiresTool(t, "ansible-playbook")
	gp := cli(t)
	tasks := filepath.Join(root(t), "examples/ansible/graphprobe-select.yml")

	cases := []struct {
		name    string
		host    string
		args    []string
		vars    map[string]any
		config  string
		runs    int
		fails   bool
		say     []string
		driver  string // storage-driver written ("" = daemon.json unchanged)
		restart bool
	}{
		{name: "0 written", host: "ubuntu-16.04", args: []string{"--docker-version", "25.0.5"},
			say: []string{"storage driver overlay2 for Docker 25.0.5: daemon.json written", "RESULT overlay2"}, driver: "overlay2", restart: true},
		{name: "0 up to date", host: "ubuntu-16.04", args: []string{"--docker-version", "25.0.5"}, runs: 2,
			say: []string{"daemon.json already up to date", "RESULT overlay2"}, driver: "overlay2"},
		{name: "1 malformed daemon.json", host: "ubuntu-16.04", args: []string{"--docker-version", "25.0.5"}, config: "{\n",
			fails: true, say: []string{"parse "}},
		{name: "2 usage", host: "ubuntu-16.04", args: []string{"--docker-version", "banana"},
			fails: true, say: []string{"--docker-version"}},
		{name: "3 no usable driver", host: "ubuntu-16.04", args: []string{"--docker-version", "25.0.5", "--driver", "aufs"},
			fails: true, say: []string{"no usable storage driver for Docker 25.0.5 (exit 3)", "Not usable here: ", "aufs"}},
		{name: "4 refused", host: "ubuntu-16.04-two-prior", args: []string{"--docker-version", "20.10.24"},
			fails: true, say: []string{"refused to change the storage driver (exit 4)", "aufs, overlay2"}},
		{name: "4 reported only", host: "ubuntu-16.04-two-prior", args: []string{"--docker-version", "20.10.24"},
			vars: map[string]any{"graphprobe_fail_on_refusal": false},
			say:  []string{"WARNING: graphprobe refused to change the storage driver (exit 4)", "RESULT "}},
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
			restarted := filepath.Join(dir, "restarted")
			play := `- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.import_tasks: ` + tasks + `
    - name: Show the kept decision
      ansible.builtin.debug:
        msg: "RESULT {{ graphprobe_result.driver }}"
  handlers:
    - name: restart docker
      ansible.builtin.file:
        path: "{{ restart_marker }}"
        state: touch
`
			playbook := filepath.Join(dir, "play.yml")
			if err := os.WriteFile(playbook, []byte(play), 0o644); err != nil {
				t.Fatal(err)
			}
			vars := map[string]any{
				"graphprobe_binary":      gp,
				"restart_marker":         restarted,
				"graphprobe_select_args": append([]string{"--root-prefix", host(t, c.host), "--config", config}, c.args...),
			}
			for k, v := range c.vars {
				vars[k] = v
			}
			extra, err := json.Marshal(vars)
			if err != nil {
				t.Fatal(err)
			}
			var r result
			for i := 0; i < max(c.runs, 1); i++ {
				os.Remove(restarted)
				cmd := exec.Command("ansible-playbook", "-i", "localhost,", "-c", "local", playbook, "-e", string(extra))
				cmd.Env = ansibleEnv(dir)
				r = runCmd(t, cmd)
			}
			out := r.stdout + r.stderr
			if failed := r.code != 0; failed != c.fails {
				t.Errorf("ansible-playbook exit %d, want failure: %v\n%s", r.code, c.fails, out)
			}
			if c.fails && !strings.Contains(out, "failed=1") {
				t.Errorf("the host did not fail:\n%s", out)
			}
			for _, s := range c.say {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
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
				t.Errorf("restart docker handler ran: %v, want %v\n%s", exists(restarted), c.restart, out)
			}
		})
	}
}
