package app

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

const repoRoot = "../../.."

// fixtureHosts lists the captured hosts under testdata/hosts.
func fixtureHosts(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repoRoot, "testdata/hosts"))
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, e := range entries {
		if e.IsDir() {
			hosts = append(hosts, e.Name())
		}
	}
	if len(hosts) < 12 {
		t.Fatalf("only %d fixture hosts", len(hosts))
	}
	return hosts
}

// run runs the program and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

var durationRE = regexp.MustCompile(`"durationMillis": [0-9.e+-]+`)

// normalize removes what changes from run to run.
func normalize(s string) string {
	return durationRE.ReplaceAllString(s, `"durationMillis": 0`)
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/graphprobe/app -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the output:\n%s", path, lineDiff(string(want), got))
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			b.WriteString("- " + a + "\n+ " + c + "\n")
		}
	}
	return b.String()
}

func loadSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	// The schemas refer to each other by their $id.
	for _, f := range []string{"probe.schema.json", "select.schema.json"} {
		data, err := os.ReadFile(filepath.Join(repoRoot, "schema", f))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(data)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := c.AddResource("https://github.com/graphprobe/graphprobe/schema/"+f, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile("https://github.com/graphprobe/graphprobe/schema/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, doc string) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("output does not match the schema: %v", err)
	}
}

// TestFixtureMatrix probes every captured host and compares the report
// (JSON and text) with its golden file. `make matrix` runs it.
func TestFixtureMatrix(t *testing.T) {
	schema := loadSchema(t, "probe.schema.json")
	for _, host := range fixtureHosts(t) {
		t.Run(host, func(t *testing.T) {
			dir := filepath.Join(repoRoot, "testdata/hosts", host)
			out, errOut, code := runCLI(t, "probe", "--root-prefix", dir, "--config", filepath.Join(dir, "etc/docker/daemon.json"), "--format", "json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			validate(t, schema, out)
			compareGolden(t, filepath.Join(repoRoot, "testdata/golden/probe", host+".json"), normalize(out))
			text, _, code := runCLI(t, "probe", "--root-prefix", dir, "--format", "text")
			if code != 0 {
				t.Fatalf("text: exit %d", code)
			}
			compareGolden(t, filepath.Join(repoRoot, "testdata/golden/probe", host+".txt"), text)
			yml, _, code := runCLI(t, "probe", "--root-prefix", dir, "--format", "yaml")
			if code != 0 || !strings.HasPrefix(yml, "schemaVersion: 1\n") {
				t.Fatalf("yaml: exit %d: %.80s", code, yml)
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, repoRoot) || strings.Contains(out, "testdata/hosts") {
				t.Error("the report names the fixture directory: it must read as the host itself")
			}
		})
	}
}
