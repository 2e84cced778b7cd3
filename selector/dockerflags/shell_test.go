package dockerflags

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSourceFile(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     []assignment
		warnings []string
	}{
		{
			name: "quotes, export, continuations, comments",
			in: "# comment\nA=plain\nexport B=\"double \\\"q\\\" $x\"\nC='single # not a comment'\n" +
				"E=\"multi\nline\"\nF=cont\\\ninued\nH=\r\n",
			want: []assignment{{"A", "plain", "/f", 2}, {"B", `double "q" `, "/f", 3}, {"C", "single # not a comment", "/f", 4},
				{"E", "multi\nline", "/f", 5}, {"F", "continued", "/f", 7}, {"H", "", "/f", 9}},
		},
		{
			name: "a value refers to earlier assignments",
			in:   "DOCKER_OPTS=\"-s aufs\"\nDOCKER_OPTS=\"$DOCKER_OPTS --storage-opt=dm.fs=xfs\"\nX=${UNSET:-dflt}${UNSET}\n",
			want: []assignment{{"DOCKER_OPTS", "-s aufs", "/f", 1}, {"DOCKER_OPTS", "-s aufs --storage-opt=dm.fs=xfs", "/f", 2}, {"X", "dflt", "/f", 3}},
		},
		{
			name: "append, several on a line, mixed quoting, arithmetic",
			in:   "O=-s\nO+=' vfs' P=a'b c'\"d\" N=$((2*3))\n",
			want: []assignment{{"O", "-s", "/f", 1}, {"O", "-s vfs", "/f", 2}, {"P", "ab cd", "/f", 2}, {"N", "6", "/f", 2}},
		},
		{
			name: "branches count, functions and subshells do not",
			in: "if [ -z \"${DOCKER_CERT_PATH}\" ]; then\n    DOCKER_CERT_PATH=/etc/docker\nfi\n" +
				"f() { OPTS=-s; }\n(OPTS=-s)\nOPTS=-s cmd\nreadonly R=1 S\n",
			want: []assignment{{"DOCKER_CERT_PATH", "/etc/docker", "/f", 2}, {"R", "1", "/f", 7}},
		},
		{
			name:     "commands that set variables are not followed",
			in:       ". /etc/docker.local\neval \"$X\"\nulimit -n 1024\n",
			warnings: []string{`line 1: "." is not run; variables it sets are not seen`, `line 2: "eval" is not run; variables it sets are not seen`},
		},
		{
			name:     "a syntax error ends the file",
			in:       "A=1\n; also a comment?\nB=2\n",
			want:     []assignment{{"A", "1", "/f", 1}},
			warnings: []string{"line 2: `;` can only immediately follow a statement; sh stops reading the file here"},
		},
		{
			name:     "unterminated quote",
			in:       "A=1\nDOCKER_OPTS=\"-s vfs\n",
			want:     []assignment{{"A", "1", "/f", 1}},
			warnings: []string{"line 2: reached EOF without closing quote `\"`; sh stops reading the file here"},
		},
		{
			name:     "an expansion error drops the assignment",
			in:       "A=${UNSET?not set}\nB=~root/x\n",
			want:     []assignment{{"B", "~root/x", "/f", 2}},
			warnings: []string{"line 1: A: UNSET: not set"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings, err := sourceFile(strings.NewReader(tt.in), "/f")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("warnings %q\nwant     %q", warnings, tt.warnings)
			}
		})
	}
}

// TestNothingRuns puts commands that would leave a file behind into every
// place sh would run them.
func TestNothingRuns(t *testing.T) {
	dir := t.TempDir()
	marker := func(n string) string { return filepath.Join(dir, n) }
	file := "A=\"$(touch " + marker("a") + ")x\"\nB=`touch " + marker("b") + "`y\nC=<(touch " + marker("c") + ")\n" +
		"D=$(touch " + marker("d") + "; echo -s vfs)\n"
	got, warnings, err := sourceFile(strings.NewReader(file), "/f")
	if err != nil {
		t.Fatal(err)
	}
	want := []assignment{{"A", "x", "/f", 1}, {"B", "y", "/f", 2}, {"C", "", "/f", 3}, {"D", "", "/f", 4}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if len(warnings) != 4 || warnings[0] != "line 1: command substitution is not run; it counts as empty" ||
		warnings[2] != "line 3: process substitution is not run; it counts as empty" {
		t.Errorf("warnings %q", warnings)
	}
	scriptCommands(arg{text: "dockerd -s $(touch " + marker("e") + ") `touch " + marker("f") + "`"}, nil)
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		if _, err := os.Lstat(marker(n)); err == nil {
			t.Errorf("command %s ran", n)
		}
	}
}

func TestShCommand(t *testing.T) {
	type f = Finding
	tests := []struct {
		name   string
		script string
		want   []Finding
	}{
		{"exec after other commands", "mkdir -p /run/docker; exec /usr/bin/dockerd -s vfs; echo -s no",
			[]f{{Key: StorageDriver, Flag: "-s", Value: "vfs"}}},
		{"quoted words", `exec dockerd --storage-opt "dm.basesize=20G" -s'overlay2'`,
			[]f{{Key: StorageOpts, Flag: "--storage-opt", Value: "dm.basesize=20G"}, {Key: StorageDriver, Flag: "-s", Value: "overlay2"}}},
		{"a variable of the unit keeps its name", `dockerd -s "$DRIVER" -H fd://`,
			[]f{{Key: StorageDriver, Flag: "-s", Value: "$DRIVER"}}},
		{"in a condition", `if [ -x /usr/bin/dockerd ]; then dockerd --storage-driver=btrfs; fi`,
			[]f{{Key: StorageDriver, Flag: "--storage-driver", Value: "btrfs"}}},
		{"not shell", `dockerd -s "vfs`, nil},
		{"no dockerd", `echo -s vfs`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rest, ok := daemonArgs([]arg{{text: "/bin/sh"}, {text: "-c"}, {text: tt.script}}, nil)
			var got []Finding
			if ok {
				got = scanFlags(rest)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
