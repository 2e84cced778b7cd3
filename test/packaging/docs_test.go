package packaging

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/testutil"
)

// manSections splits the man page source into its .SH and .SS sections,
// keyed by heading text without quotes and font escapes.
func manSections(t *testing.T) (map[string]string, string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "packaging/man/graphprobe.1.in"))
	if err != nil {
		t.Fatal(err)
	}
	clean := strings.NewReplacer(`"`, "", `\fI`, "", `\fP`, "", `\fR`, "", `\fB`, "", `\-`, "-")
	out := map[string]string{}
	var cur string
	for _, line := range strings.Split(string(src), "\n") {
		if h, ok := strings.CutPrefix(line, ".SH "); ok {
			cur = clean.Replace(h)
			continue
		}
		if h, ok := strings.CutPrefix(line, ".SS "); ok {
			cur = clean.Replace(h)
			continue
		}
		out[cur] += line + "\n"
	}
	return out, string(src)
}

// roffFlags lists the --flags a roff text names (as \-\-flag).
func roffFlags(s string) map[string]bool {
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`\\-\\-([a-z][a-z0-9\\-]*[a-z0-9])`).FindAllStringSubmatch(s, -1) {
		out["--"+strings.ReplaceAll(m[1], `\-`, "-")] = true
	}
	return out
}

// commandSection finds the .SS section "graphprobe COMMAND ...".
func commandSection(secs map[string]string, command string) (string, bool) {
	for h, body := range secs {
		f := strings.Fields(h)
		if len(f) >= 2 && f[0] == "graphprobe" && f[1] == command {
			return body, true
		}
	}
	return "", false
}

// TestManPageDocumentsTheCLI holds the man page to the CLI's own --help:
// every command has a section and a synopsis, every flag of its --help is
// described there (or under COMMON OPTIONS, for the commands whose --help
// has the common flags), every exit code of `graphprobe --help` is under
// EXIT STATUS, and the files the CLI and the package use are under FILES.
// groff renders it without a warning.
func TestManPageDocumentsTheCLI(t *testing.T) {
	secs, src := manSections(t)
	common := roffFlags(secs["COMMON OPTIONS"])
	for _, cmd := range commands(t) {
		body, ok := commandSection(secs, cmd)
		if !ok {
			t.Errorf("man page: no section for %q", cmd)
			continue
		}
		if !regexp.MustCompile(`(?m)^\.SY graphprobe\n\.B ` + cmd + `\n`).MatchString(src) {
			t.Errorf("man page SYNOPSIS lacks %q", cmd)
		}
		help := run(t, cli(t), "help", cmd)
		hasCommon := strings.Contains(help, "Common flags:")
		described := roffFlags(body)
		for _, f := range helpFlags(t, cmd) {
			if !described[f] && !(hasCommon && common[f]) {
				t.Errorf("man page: %s %s is in --help but not described", cmd, f)
			}
		}
	}

	// Exit codes, from the top-level help's summary line.
	top := run(t, cli(t), "--help")
	m := regexp.MustCompile(`Exit codes: (.*)\.`).FindStringSubmatch(top)
	if m == nil {
		t.Fatalf("graphprobe --help has no exit code line:\n%s", top)
	}
	exits := secs["EXIT STATUS"]
	for _, item := range strings.Split(m[1], ", ") {
		code := strings.Fields(item)[0]
		if !regexp.MustCompile(`(?m)^\.BR? ` + code + `\b`).MatchString(exits) {
			t.Errorf("EXIT STATUS lacks exit code %s (%s)", code, item)
		}
	}

	// Files: the defaults the CLI prints, and where the package puts its
	// unit and its conffile.
	files := strings.ReplaceAll(secs["FILES"], `\-`, "-")
	defaults := regexp.MustCompile(`\(default (/[^) ]+)\)`).FindAllStringSubmatch(run(t, cli(t), "help", "select"), -1)
	if len(defaults) < 2 {
		t.Fatalf("select --help names %d default paths", len(defaults))
	}
	want := []string{}
	for _, d := range defaults {
		want = append(want, d[1])
	}
	nfpm, err := os.ReadFile(filepath.Join(repoRoot, "packaging/nfpm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range regexp.MustCompile(`(?m)^\s+dst: (\S+)`).FindAllStringSubmatch(string(nfpm), -1) {
		if strings.HasSuffix(d[1], ".service") || strings.HasPrefix(d[1], "/etc/") {
			want = append(want, d[1])
		}
	}
	for _, w := range want {
		if !strings.Contains(files, ".I "+w+"\n") {
			t.Errorf("FILES lacks %s", w)
		}
	}

	testutil.RequiresTool(t, "groff")
	page := strings.NewReplacer("@VERSION@", "1.0.0", "@DATE@", "2024-01-01").Replace(src)
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("groff -man -ww: %v\n%s", err, stderr.String())
	}
}

// valuesInHelp maps each flag whose --help shows its values as a|b|c to
// those values.
func valuesInHelp(t *testing.T, command string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	help := run(t, cli(t), "help", command)
	for _, m := range regexp.MustCompile(`(--[a-z-]+) ([a-z0-9-]+(?:\|[a-z0-9-]+)+)`).FindAllStringSubmatch(help, -1) {
		vals := strings.Split(m[2], "|")
		sort.Strings(vals)
		out[m[1]] = vals
	}
	return out
}

// driverNames are the drivers `graphprobe drivers` lists.
func driverNames(t *testing.T) []string {
	t.Helper()
	out := run(t, cli(t), "drivers", "--format", "json")
	names := regexp.MustCompile(`"name": "([^"]+)"`).FindAllStringSubmatch(out, -1)
	var ds []string
	for _, n := range names {
		ds = append(ds, n[1])
	}
	if len(ds) < 5 {
		t.Fatalf("graphprobe drivers lists %d drivers", len(ds))
	}
	sort.Strings(ds)
	return ds
}

// completionCase is one completion request (the words typed, the last
// being the one completed) and the replies wanted; subset: the replies
// must hold want, not equal it.
type completionCase struct {
	words  []string
	want   []string
	subset bool
}

// completionCases derives the cases from the CLI: the commands, each
// command's flags, the values of flags with a fixed set, drivers.
func completionCases(t *testing.T) []completionCase {
	t.Helper()
	cmds := commands(t)
	cases := []completionCase{
		{words: []string{"graphprobe", ""}, want: sorted(append(append([]string{}, cmds...), "help"))},
		{words: []string{"graphprobe", "help", ""}, want: sorted(append(append([]string{}, cmds...), "help"))},
	}
	drivers := driverNames(t)
	for _, cmd := range cmds {
		flags := helpFlags(t, cmd)
		cases = append(cases, completionCase{words: []string{"graphprobe", cmd, "--"}, want: sorted(append(flags, "--help"))})
		for flag, vals := range valuesInHelp(t, cmd) {
			if flag == "--strategy" || flag == "--bench" || flag == "--format" {
				cases = append(cases, completionCase{words: []string{"graphprobe", cmd, flag, ""}, want: vals})
			}
		}
		if contains(flags, "--driver") {
			cases = append(cases, completionCase{words: []string{"graphprobe", cmd, "--driver", ""}, want: drivers, subset: true})
		}
	}
	cases = append(cases, completionCase{words: []string{"graphprobe", "bench", ""}, want: drivers})
	return cases
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func checkCompletions(t *testing.T, shell string, cases []completionCase, got [][]string) {
	t.Helper()
	for i, c := range cases {
		g := sorted(got[i])
		if c.subset {
			for _, w := range c.want {
				if !contains(g, w) {
					t.Errorf("%s: %q completes to %v, lacking %s", shell, strings.Join(c.words, " "), g, w)
				}
			}
			continue
		}
		if strings.Join(g, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s: %q completes to\n  %v\nwant\n  %v", shell, strings.Join(c.words, " "), g, c.want)
		}
	}
}

// TestBashCompletion runs the bash completion function on every case
// derived from the CLI, and on --flag=value words, which bash splits at "=".
func TestBashCompletion(t *testing.T) {
	testutil.RequiresTool(t, "bash")
	cases := completionCases(t)
	cases = append(cases,
		completionCase{words: []string{"graphprobe", "select", "--format", "=", "y"}, want: []string{"yaml"}},
		completionCase{words: []string{"graphprobe", "probe", "--format", "="}, want: []string{"json", "text", "yaml"}},
		completionCase{words: []string{"graphprobe", "select", "--force", ""}, want: nil},
	)
	var script strings.Builder
	fmt.Fprintf(&script, "source %q || exit 1\n", filepath.Join(root(t), "packaging/completions/graphprobe.bash"))
	script.WriteString("complete -p graphprobe | grep -q -- '-F _graphprobe graphprobe$' || { echo 'not registered' >&2; exit 1; }\n")
	for i, c := range cases {
		fmt.Fprintf(&script, "COMP_WORDS=(")
		for _, w := range c.words {
			fmt.Fprintf(&script, "%q ", w)
		}
		fmt.Fprintf(&script, "); COMP_CWORD=%d; COMPREPLY=(); _graphprobe; echo \"case%d:${COMPREPLY[*]}\"\n", len(c.words)-1, i)
	}
	out := run(t, "bash", "--norc", "--noprofile", "-c", script.String())
	got := make([][]string, len(cases))
	for _, line := range strings.Split(out, "\n") {
		var i int
		if n, _ := fmt.Sscanf(line, "case%d:", &i); n == 1 {
			got[i] = strings.Fields(strings.SplitN(line, ":", 2)[1])
		}
	}
	checkCompletions(t, "bash", cases, got)
}

// zshCapture drives an interactive zsh through zpty: it loads the
// completion with compinit, wraps compadd to print every match, binds TAB to
// a widget that completes and then prints a marker, and for each case types
// the words and TAB, reads up to the marker, and clears the line (^U).
// Markers are typed split (@@RE”ADY@@) so that the terminal's echo of a
// typed line never matches what a read waits for.
const zshCapture = `
zmodload zsh/zpty || exit 1
zpty z 'zsh -f -i'
zpty -w z 'PROMPT=; RPROMPT=; PS2=; unsetopt zle_bracketed_paste 2>/dev/null; bindkey -e'
zpty -w z "fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -d ${(q)2}"
zpty -w z 'compadd() { local -a __m; builtin compadd -O __m "$@"; local x; for x in $__m; do print -r -- "<m>$x</m>"; done; builtin compadd "$@"; }'
zpty -w z 'tab-marked() { zle complete-word; print -r -- @@DO""NE@@; }; zle -N tab-marked; bindkey "^I" tab-marked'
zpty -w z "print -r -- @@RE''ADY@@"
zpty -r z line '*@@READY@@*' || exit 1
local i=0 out
for q in "${@[3,-1]}"; do
  zpty -w -n z "$q"$'\t'
  zpty -r z out '*@@DONE@@*' || exit 1
  zpty -w -n z $'\C-u'
  print -r -- "<case$i>${out}</case$i>"
  i=$((i + 1))
done
zpty -d z
`

// TestZshCompletion runs the zsh completion in a real interactive zsh on
// every case derived from the CLI.
func TestZshCompletion(t *testing.T) {
	testutil.RequiresTool(t, "zsh")
	if out, err := exec.Command("zsh", "-n", filepath.Join(repoRoot, "packaging/completions/_graphprobe")).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	cases := completionCases(t)
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(repoRoot, "packaging/completions/_graphprobe"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "_graphprobe"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-f", "-c", zshCapture, "zsh", dir, filepath.Join(t.TempDir(), "zcompdump")}
	for _, c := range cases {
		args = append(args, strings.Join(c.words, " "))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "zsh", args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TERM=xterm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("zsh: %v\n%s", err, out)
	}
	got := make([][]string, len(cases))
	matchRE := regexp.MustCompile(`<m>([^<\r\n]*)</m>`)
	for i := range cases {
		m := regexp.MustCompile(fmt.Sprintf(`(?s)<case%d>(.*?)</case%d>`, i, i)).FindSubmatch(out)
		if m == nil {
			t.Fatalf("zsh: no output for case %d:\n%s", i, out)
		}
		seen := map[string]bool{}
		for _, mm := range matchRE.FindAllSubmatch(m[1], -1) {
			w := strings.TrimSuffix(string(mm[1]), "=")
			if !seen[w] {
				seen[w] = true
				got[i] = append(got[i], w)
			}
		}
	}
	checkCompletions(t, "zsh", cases, got)
}
