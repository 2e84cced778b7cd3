package probe_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/probe"
)

var update = flag.Bool("update", false, "rewrite the fact list of schema/probe.schema.json from the fact table")

const probeSchema = "../schema/probe.schema.json"

// TestSchemaFactNames keeps the JSON schema's list of facts equal to the
// fact table, in its order: the schema is generated from the table (go
// generate ./probe, or this test with -update) and never edited by hand.
func TestSchemaFactNames(t *testing.T) {
	data, err := os.ReadFile(probeSchema)
	if err != nil {
		t.Fatal(err)
	}
	want, err := withFactNames(data, probe.FactNames())
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if !bytes.Equal(data, want) {
			if err := os.WriteFile(probeSchema, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		data = want
	}
	var doc struct {
		Properties struct {
			Facts struct {
				Required []string `json:"required"`
			} `json:"facts"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parse %s: %v", probeSchema, err)
	}
	if got := doc.Properties.Facts.Required; !reflect.DeepEqual(got, probe.FactNames()) {
		t.Errorf("%s: facts.required = %q, want the fact table's %q (run go generate ./probe)", probeSchema, got, probe.FactNames())
	}
	if !bytes.Equal(data, want) {
		t.Errorf("%s is stale: run go generate ./probe", probeSchema)
	}
}

// withFactNames rewrites the "required" array of the schema's "facts"
// property in place, leaving every other byte as it is.
func withFactNames(schema []byte, names []string) ([]byte, error) {
	s := string(schema)
	facts := strings.Index(s, "\n    \"facts\": {")
	if facts < 0 {
		return nil, fmt.Errorf("rewrite %s: no facts property", probeSchema)
	}
	const key = "\"required\": ["
	start := strings.Index(s[facts:], key)
	if start < 0 {
		return nil, fmt.Errorf("rewrite %s: facts property without a required list", probeSchema)
	}
	start += facts + len(key)
	end := strings.IndexByte(s[start:], ']')
	if end < 0 {
		return nil, fmt.Errorf("rewrite %s: unterminated required list", probeSchema)
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		b, err := json.Marshal(n)
		if err != nil {
			return nil, err
		}
		quoted[i] = string(b)
	}
	return []byte(s[:start] + strings.Join(quoted, ", ") + s[start+end:]), nil
}
