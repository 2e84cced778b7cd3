package dockerflags

import (
	"reflect"
	"strings"
	"testing"
)

func TestScanFlags(t *testing.T) {
	type f = Finding
	tests := []struct {
		name string
		cmd  string
		want []Finding
	}{
		{"short with space", "dockerd -s overlay2", []f{{Key: StorageDriver, Flag: "-s", Value: "overlay2"}}},
		{"short joined", "dockerd -soverlay2", []f{{Key: StorageDriver, Flag: "-s", Value: "overlay2"}}},
		{"short with equals", "dockerd -s=overlay2", []f{{Key: StorageDriver, Flag: "-s", Value: "overlay2"}}},
		{"after boolean shorthand", "dockerd -Ds overlay2", []f{{Key: StorageDriver, Flag: "-s", Value: "overlay2"}}},
		{"long with space", "dockerd --storage-driver overlay2", []f{{Key: StorageDriver, Flag: "--storage-driver", Value: "overlay2"}}},
		{"long with equals", "dockerd --storage-driver=overlay2", []f{{Key: StorageDriver, Flag: "--storage-driver", Value: "overlay2"}}},
		{"storage-opt both forms", "dockerd --storage-opt dm.fs=xfs --storage-opt=dm.basesize=1G", []f{
			{Key: StorageOpts, Flag: "--storage-opt", Value: "dm.fs=xfs"}, {Key: StorageOpts, Flag: "--storage-opt", Value: "dm.basesize=1G"}}},
		{"one-dash long name of Docker 1.x", "docker -d -storage-driver=aufs", []f{{Key: StorageDriver, Flag: "-storage-driver", Value: "aufs"}}},
		{"graph and data-root", "dockerd -g /a --graph=/b --data-root /c", []f{
			{Key: DataRoot, Flag: "-g", Value: "/a"}, {Key: DataRoot, Flag: "--graph", Value: "/b"}, {Key: DataRoot, Flag: "--data-root", Value: "/c"}}},
		{"value shorthand hides letters", "dockerd -Hunix:///var/run/docker.sock -l debug -G docker", nil},
		{"value of a value shorthand is skipped", "dockerd -H -s", nil},
		{"other long flags", "dockerd --log-opt max-size=1m --storage-driverx=1 --exec-opt native.cgroupdriver=systemd", nil},
		{"end of flags", "dockerd -- -s overlay2", nil},
		{"missing value", "dockerd --storage-driver", []f{{Key: StorageDriver, Flag: "--storage-driver", Value: ""}}},
		{"docker daemon", "/usr/bin/docker daemon -s btrfs", []f{{Key: StorageDriver, Flag: "-s", Value: "btrfs"}}},
		{"docker -d", "/usr/bin/docker -H fd:// -d -s devicemapper", []f{{Key: StorageDriver, Flag: "-s", Value: "devicemapper"}}},
		{"docker client command is not the daemon", "/usr/bin/docker run -s x", nil},
		{"env wrapper", "/usr/bin/env FOO=1 /usr/bin/dockerd -s vfs", []f{{Key: StorageDriver, Flag: "-s", Value: "vfs"}}},
		{"dockerd-current", "/usr/bin/dockerd-current --storage-driver overlay2", []f{{Key: StorageDriver, Flag: "--storage-driver", Value: "overlay2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var args []arg
			for _, w := range strings.Fields(tt.cmd) {
				args = append(args, arg{text: w})
			}
			rest, ok := daemonArgs(args, nil)
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

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		bare []string
	}{
		{`/usr/bin/dockerd -H fd:// $DOCKER_OPTS`, []string{"/usr/bin/dockerd", "-H", "fd://", "$DOCKER_OPTS"}, []string{"", "", "", "DOCKER_OPTS"}},
		{`a "b c" 'd e' f\ g "h\"i"`, []string{"a", "b c", "d e", "f g", `h"i`}, nil},
		{`a "$X" ${Y}z $$Z`, []string{"a", "$X", "${Y}z", "$$Z"}, []string{"", "", "", ""}},
		{`a\tb`, []string{"a\tb"}, nil},
	}
	for _, tt := range tests {
		words, err := splitCommand(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		var got, bare []string
		for _, w := range words {
			got = append(got, w.text)
			bare = append(bare, w.bareVar)
		}
		if !reflect.DeepEqual(got, tt.want) || tt.bare != nil && !reflect.DeepEqual(bare, tt.bare) {
			t.Errorf("splitCommand(%q) = %q %q, want %q %q", tt.in, got, bare, tt.want, tt.bare)
		}
	}
	if _, err := splitCommand(`a "b`); err == nil || err.Error() != `unterminated " quote` {
		t.Fatalf("got %v", err)
	}
}

func TestParseEnvFile(t *testing.T) {
	in := "# comment\n; also a comment\nA=plain\nexport B=\"double \\\"q\\\" $x\"\nC='single # not a comment'\nD=one two # comment\n" +
		"E=\"multi\nline\"\nF=cont\\\ninued\n  G = spaced\nnot an assignment\nH=\r\n"
	got, warnings, err := parseEnvFile(strings.NewReader(in), "/f")
	if err != nil {
		t.Fatal(err)
	}
	want := []assignment{
		{"A", "plain", "/f", 3}, {"B", `double "q" $x`, "/f", 4}, {"C", "single # not a comment", "/f", 5},
		{"D", "one two", "/f", 6}, {"E", "multi\nline", "/f", 7}, {"F", "continued", "/f", 9}, {"G", "spaced", "/f", 11}, {"H", "", "/f", 13},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(warnings, []string{`line 12: not an assignment: "not an assignment"`}) {
		t.Fatalf("warnings %q", warnings)
	}
}

func TestParseUnit(t *testing.T) {
	in := "[Unit]\nDescription=x\n\n[Service]\n# c\nExecStart=/a \\\n  -b \\\n; comment in continuation\n  -c\nEnvironment=A=1\r\nbroken line\n[Bad\n"
	got, warnings, err := parseUnit(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []directive{
		{"Unit", "Description", "x", 2},
		{"Service", "ExecStart", "/a    -b    -c", 6},
		{"Service", "Environment", "A=1", 10},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(warnings, []string{`line 11: not a key=value line: "broken line"`, `line 12: malformed section header "[Bad"`}) {
		t.Fatalf("warnings %q", warnings)
	}
}
