package daemonjson

import (
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const testName = "/etc/docker/daemon.json"

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"bad value on line 3", "{\n  \"debug\": true,\n  \"log-level\": x\n}", "line 3, column 16: invalid character 'x' looking for beginning of value"},
		{"trailing comma", `{"a":1,}`, "line 1, column 8: invalid character '}' looking for beginning of object key string"},
		{"single quotes", `{'a':1}`, `line 1, column 2: invalid character '\'' looking for beginning of object key string`},
		{"missing colon", `{"a" 1}`, "line 1, column 6: invalid character '1' after object key"},
		{"missing comma", `{"a":1 "b":2}`, `line 1, column 8: invalid character '"' after object key:value pair`},
		{"bad literal", `{"a":tru}`, "line 1, column 9: invalid character '}' in literal true (expecting 'e')"},
		{"control character in string", "{\"a\":\"\x01\"}", `line 1, column 7: invalid character '\x01' in string literal`},
		{"newline in string", "{\"a\":\"x\ny\"}", `line 1, column 8: invalid character '\n' in string literal`},
		{"bad escape", `{"a":"\q"}`, "line 1, column 8: invalid character 'q' in string escape code"},
		{"bad unicode escape", `{"a":"\u12g4"}`, `line 1, column 11: invalid character 'g' in \u hexadecimal character escape`},
		{"leading zero", `{"a":01}`, "line 1, column 7: invalid character '1' after object key:value pair"},
		{"bare decimal point", `{"a":1.}`, "line 1, column 8: invalid character '}' after decimal point in numeric literal"},
		{"empty exponent", `{"a":1e}`, "line 1, column 8: invalid character '}' in exponent of numeric literal"},
		{"lone minus", `{"a":-}`, "line 1, column 7: invalid character '}' in numeric literal"},
		{"number out of float64 range", `{"a":1000E700}`, "line 1, column 6: number 1000E700 is out of range (dockerd cannot read it)"},
		{"two documents", `{} {}`, "line 1, column 4: invalid character '{' after top-level value"},
		{"missing array comma", `{"a":[1 2]}`, "line 1, column 9: invalid character '2' after array element"},
		{"truncated", `{"a":`, "line 1, column 6: unexpected end of JSON input"},
		{"truncated string", `{"a":"abc`, "line 1, column 10: unexpected end of JSON input"},
		{"columns count characters", "{\"é\":1, \"x\": é}", "line 1, column 14: invalid character 'é' looking for beginning of value"},
		{"columns skip the byte order mark", "\xef\xbb\xbf{x}", "line 1, column 2: invalid character 'x' looking for beginning of object key string"},
		{"invalid UTF-8 in string", "{\"a\":\"\xff\"}", "line 1, column 7: invalid UTF-8 byte 0xff in string literal: dockerd reads UTF-8 only"},
		{"invalid UTF-8 outside strings", "\xff", "line 1, column 1: invalid UTF-8 byte 0xff looking for beginning of value: dockerd reads UTF-8 only"},
		{"UTF-16", "\xff\xfe{\x00}\x00", "line 1, column 1: file is UTF-16 encoded; graphprobe edits UTF-8 only: convert it with iconv -f UTF-16 -t UTF-8"},
		{"array at top level", `["overlay2"]`, "line 1, column 1: daemon.json must hold a JSON object, found an array"},
		{"string at top level", "\n  \"overlay2\"", "line 2, column 3: daemon.json must hold a JSON object, found a string"},
		{"null at top level", `null`, "line 1, column 1: daemon.json must hold a JSON object, found null"},
		{"duplicate key", "{\n  \"storage-driver\": \"aufs\",\n  \"storage-driver\": \"overlay2\"\n}", `line 3, column 3: duplicate key "storage-driver" (also at line 2, column 3): remove one of them`},
		{"duplicate key spelled with an escape", `{"debug":true,"d\u0065bug":false}`, `line 1, column 15: duplicate key "debug" (also at line 1, column 2): remove one of them`},
		{"duplicate nested key", `{"log-opts":{"max-size":"1m","max-size":"2m"}}`, `line 1, column 30: duplicate key "max-size" (also at line 1, column 14): remove one of them`},
		{"storage-driver a number", `{"storage-driver": 5}`, "line 1, column 20: storage-driver must be a string, found a number"},
		{"storage-driver an array", `{"storage-driver": ["overlay2"]}`, "line 1, column 20: storage-driver must be a string, found an array"},
		{"storage-opts a string", `{"storage-opts": "overlay2.size=1G"}`, "line 1, column 18: storage-opts must be an array of strings, found a string"},
		{"storage-opts element a number", `{"storage-opts": ["a=1", 1]}`, "line 1, column 26: storage-opts[1] must be a string, found a number"},
		{"storage-opts element null", `{"storage-opts": [null]}`, "line 1, column 19: storage-opts[0] must be a string, found null"},
		{"features an array", `{"features": []}`, "line 1, column 14: features must be an object, found an array"},
		{"snapshotter a string", `{"features": {"containerd-snapshotter": "yes"}}`, "line 1, column 41: features.containerd-snapshotter must be true or false, found a string"},
		{"snapshotter null", `{"features": {"containerd-snapshotter": null}}`, "line 1, column 41: features.containerd-snapshotter must be true or false, found null"},
		{"data-root a boolean", `{"data-root": true}`, "line 1, column 15: data-root must be a string, found a boolean"},
		{"graph an object", `{"graph": {}}`, "line 1, column 11: graph must be a string, found an object"},
		// Values graphprobe does not keep are checked as strictly as the ones it reads.
		{"bad escape in a nested value", `{"log-opts":{"max-size":"1\q"}}`, "line 1, column 28: invalid character 'q' in string escape code"},
		{"number out of range in a nested array", `{"x":[1, 1e999]}`, "line 1, column 10: number 1e999 is out of range (dockerd cannot read it)"},
		{"missing comma in a nested array", `{"x":[ 1 ,  2 3]}`, "line 1, column 15: invalid character '3' after array element"},
		{"bad literal after a line break", "{\"x\":[1,\n  tru]}", "line 2, column 6: invalid character ']' in literal true (expecting 'e')"},
		{"trailing comma in a nested array", `{"x":[1,]}`, "line 1, column 9: invalid character ']' looking for beginning of value"},
		{"invalid UTF-8 in a nested string", "{\"x\":{\"y\":[\"\xff\"]}}", "line 1, column 13: invalid UTF-8 byte 0xff in string literal: dockerd reads UTF-8 only"},
		{"invalid UTF-8 in a top-level string", "\"\xff\"", "line 1, column 2: invalid UTF-8 byte 0xff in string literal: dockerd reads UTF-8 only"},
		{"duplicate key deep in a nested value", `{"x":{"a":1,"b":{"c":[true,false,null,"s",{"d":1,"d":2}]}}}`, `line 1, column 50: duplicate key "d" (also at line 1, column 44): remove one of them`},
		{"nesting over the limit", `{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + "}", "line 1, column 69: nesting deeper than 64 levels is refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(testName, []byte(tt.in))
			want := "parse " + testName + ": " + tt.want
			if err == nil || err.Error() != want {
				t.Fatalf("Parse(%q)\n got: %v\nwant: %s", tt.in, err, want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
		})
	}
}

func TestParseSizeLimit(t *testing.T) {
	big := []byte(`{"a":"` + strings.Repeat("x", MaxSize) + `"}`)
	_, err := Parse(testName, big)
	want := "parse " + testName + ": file is 2097160 bytes, over graphprobe's 2 MiB limit for a daemon.json (dockerd has none; " +
		"the limit bounds what a run costs at boot): check that the file is not corrupt or mis-generated, " +
		"or set storage-driver by hand to what `graphprobe select --dry-run --config EMPTY.json` prints (EMPTY.json holding {})"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	// Exactly at the limit is accepted.
	atLimit := []byte(`{"a":"` + strings.Repeat("x", MaxSize-8) + `"}`)
	if len(atLimit) != MaxSize {
		t.Fatalf("test document is %d bytes", len(atLimit))
	}
	if _, err := Parse(testName, atLimit); err != nil {
		t.Fatal(err)
	}
}

func TestParseDepthLimit(t *testing.T) {
	// The top-level object is level 1; MaxDepth levels in all are fine.
	in := `{"a":` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + "}"
	if _, err := Parse(testName, []byte(in)); err != nil {
		t.Fatalf("depth %d refused: %v", MaxDepth, err)
	}
	// Deep input well past the limit fails fast with the same message.
	deep := strings.Repeat("[", MaxSize/2)
	_, err := Parse(testName, []byte(`{"a":`+deep))
	if err == nil || !strings.Contains(err.Error(), "nesting deeper than 64 levels is refused") {
		t.Fatalf("got %v", err)
	}
}

func TestParseDocument(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Document
	}{
		{"empty file", "", Document{}},
		{"whitespace only", " \n\t\n", Document{}},
		{"byte order mark and whitespace", "\xef\xbb\xbf\n", Document{}},
		{"empty object", "{}", Document{Keys: []string{}}},
		{
			"storage keys",
			`{"debug": true, "storage-driver": "overlay2", "storage-opts": ["overlay2.size=1G"], "data-root": "/srv/docker"}`,
			Document{StorageDriver: "overlay2", HasStorageDriver: true, StorageOpts: []string{"overlay2.size=1G"}, HasStorageOpts: true, DataRoot: "/srv/docker",
				Keys: []string{"debug", "storage-driver", "storage-opts", "data-root"}},
		},
		{
			"escaped key and value",
			`{"storage\u002ddriver": "over\u006cay2"}`,
			Document{StorageDriver: "overlay2", HasStorageDriver: true, Keys: []string{"storage-driver"}},
		},
		{
			"nulls count as absent",
			`{"storage-driver": null, "storage-opts": null, "data-root": null, "features": null}`,
			Document{Keys: []string{"storage-driver", "storage-opts", "data-root", "features"}},
		},
		{
			"empty storage-opts is present",
			`{"storage-opts": []}`,
			Document{StorageOpts: []string{}, HasStorageOpts: true, Keys: []string{"storage-opts"}},
		},
		{
			"legacy graph key",
			`{"graph": "/data/docker"}`,
			Document{DataRoot: "/data/docker", Keys: []string{"graph"}},
		},
		{
			"data-root wins over graph",
			`{"data-root": "/b", "graph": "/a"}`,
			Document{DataRoot: "/b", Keys: []string{"data-root", "graph"}},
		},
		{
			"snapshotter",
			`{"features": {"buildkit": true, "containerd-snapshotter": false}}`,
			Document{Snapshotter: ptr(false), Keys: []string{"features"}},
		},
		{
			"surrogate pair and invalid surrogate",
			`{"a": "\ud83d\ude00", "b": "\ud800x"}`,
			Document{Keys: []string{"a", "b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(testName, []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if d.StorageDriver != tt.want.StorageDriver || d.HasStorageDriver != tt.want.HasStorageDriver ||
				!slices.Equal(d.StorageOpts, tt.want.StorageOpts) || d.HasStorageOpts != tt.want.HasStorageOpts ||
				(d.StorageOpts == nil) != (tt.want.StorageOpts == nil) ||
				d.DataRoot != tt.want.DataRoot || !slices.Equal(d.Keys, tt.want.Keys) ||
				(d.Snapshotter == nil) != (tt.want.Snapshotter == nil) ||
				(d.Snapshotter != nil && *d.Snapshotter != *tt.want.Snapshotter) {
				t.Fatalf("got  %+v\nwant %+v", *d, tt.want)
			}
		})
	}
}

func TestParseDecodesStrings(t *testing.T) {
	d, err := Parse(testName, []byte(`{"x": 1, "storage-driver": "a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := "a\"b\\c/d\b\f\n\r\té😀\uFFFD"
	if d.StorageDriver != want {
		t.Fatalf("got %q, want %q", d.StorageDriver, want)
	}
}

func ptr[T any](v T) *T { return &v }

func BenchmarkParseMaxSize(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("{\n")
	for i := 0; sb.Len() < MaxSize*3/4; i++ { // uniqueKeys lengthens it
		sb.WriteString(`  "key` + strings.Repeat("k", i%50) + string(rune('a'+i%26)) + `": [1e3, "v\u00e9", {"n": null}],` + "\n")
	}
	doc := []byte(strings.TrimSuffix(sb.String(), ",\n") + "\n}")
	// Keys repeat; make them unique by index.
	doc = uniqueKeys(doc)
	if _, err := Parse(testName, doc); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		_, _ = Parse(testName, doc)
	}
}

func BenchmarkParseDeepRefusal(b *testing.B) {
	doc := []byte(`{"a":` + strings.Repeat("[", MaxSize-10))
	for b.Loop() {
		if _, err := Parse(testName, doc); err == nil {
			b.Fatal("accepted")
		}
	}
}

func uniqueKeys(doc []byte) []byte {
	var out strings.Builder
	n := 0
	for _, line := range strings.SplitAfter(string(doc), "\n") {
		if strings.HasPrefix(line, `  "key`) {
			line = strings.Replace(line, `"key`, `"key`+strconv.Itoa(n)+"-", 1)
			n++
		}
		out.WriteString(line)
	}
	return []byte(out.String())
}

// BenchmarkParseHostile1MiB parses 1 MiB documents shaped to cost the most
// per byte (a value every two bytes, a key every twelve), to show what a
// corrupt or mis-generated daemon.json costs a run at boot; run with
// -benchmem. live-B is what the parsed document keeps alive.
func BenchmarkParseHostile1MiB(b *testing.B) {
	const n = 1 << 20
	fill := func(prefix, unit, suffix string) []byte {
		return []byte(prefix + strings.Repeat(unit, (n-len(prefix)-len(suffix))/len(unit)) + suffix)
	}
	var keys strings.Builder
	keys.WriteString("{")
	for i := 0; keys.Len() < n-32; i++ {
		keys.WriteString(`"k` + strconv.Itoa(1000000+i) + `":0,`)
	}
	keys.WriteString(`"end":0}`)
	// For comparison, a real configuration of the same size (as in
	// TestOpenLargeRealConfig).
	var regs strings.Builder
	regs.WriteString("{\n  \"storage-driver\": \"overlay2\",\n  \"insecure-registries\": [\n")
	for i := 0; regs.Len() < n-64; i++ {
		regs.WriteString(`    "registry-` + strconv.Itoa(i) + ".build.corp.example.com:5000\",\n")
	}
	regs.WriteString("    \"registry.example.com:5000\"\n  ]\n}\n")
	for _, bc := range []struct {
		name string
		doc  []byte
	}{
		{"array of 0s", fill(`{"a":[`, "0,", "0]}")},
		{"array of empty objects", fill(`{"a":[`, "{},", "{}]}")},
		{"many keys", []byte(keys.String())},
		{"storage-opts of empty strings", fill(`{"storage-opts":[`, `"",`, `""]}`)},
		{"real: insecure registries", []byte(regs.String())},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := Parse(testName, bc.doc); err != nil {
				b.Fatal(err)
			}
			// What a parsed document keeps alive, beside what parsing
			// allocates in all (B/op).
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			d, _ := Parse(testName, bc.doc)
			runtime.GC()
			runtime.ReadMemStats(&m1)
			runtime.KeepAlive(d)
			b.SetBytes(int64(len(bc.doc)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Parse(testName, bc.doc)
			}
			b.ReportMetric(float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)), "live-B")
		})
	}
}
