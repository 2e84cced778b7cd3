package dockerflags

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseFiles feeds arbitrary bytes to the unit, command-line,
// environment-file and shell readers and the flag scanner: they read files
// anyone with root may have edited by hand, and must neither panic nor
// loop.
func FuzzParseFiles(f *testing.F) {
	for _, name := range []string{"rhel7-docker.service", "debian-default-docker", "ubuntu1404-default-docker"} {
		b, err := os.ReadFile(filepath.Join("testdata", "real", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("[Service]\nExecStart=/bin/sh -c 'dockerd -Ds\"x\" ${A}' \\\n  $B\n"))
	f.Add([]byte("O=${A:=x}$((B=2))`c`$(d) e=<(f)\nif [ x ]; then O+=\"$O ~u/g\"; fi\n. /x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ds, _, err := parseUnit(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, d := range ds {
			if d.line < 1 {
				t.Fatalf("line %d", d.line)
			}
			words, err := splitCommand(d.value)
			if err != nil {
				continue
			}
			var args []arg
			for _, w := range words {
				args = append(args, arg{text: w.text})
			}
			if rest, ok := daemonArgs(args, nil); ok {
				scanFlags(rest)
			}
			scanFlags(args)
		}
		for _, words := range scriptCommands(arg{text: string(data)}, nil) {
			scanFlags(words)
		}
		if as, _, err := sourceFile(bytes.NewReader(data), "f"); err == nil {
			for _, a := range as {
				if !isName(a.name) || a.line < 1 {
					t.Fatalf("bad shell assignment %+v", a)
				}
				var args []arg
				for _, w := range initScriptFields(a.value) {
					args = append(args, arg{text: w})
				}
				scanFlags(args)
			}
		}
		as, _, err := parseEnvFile(bytes.NewReader(data), "f")
		if err != nil {
			return
		}
		for _, a := range as {
			if !isName(a.name) || a.line < 1 {
				t.Fatalf("bad assignment %+v", a)
			}
			var args []arg
			for _, w := range splitVarWords(a.value) {
				args = append(args, arg{text: w})
			}
			scanFlags(args)
		}
	})
}
