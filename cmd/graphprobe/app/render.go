package app

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"
)

// encoders are the machine-readable output formats, each a pure function
// of the document value (JSON is the tree the schemas describe; YAML has
// the same tree). A new format is one row here.
var encoders = []struct {
	name   string
	encode func(doc any) ([]byte, error)
}{
	{"json", marshalJSON},
	{"yaml", func(doc any) ([]byte, error) {
		b, err := marshalJSON(doc)
		if err != nil {
			return nil, err
		}
		return jsonToYAML(b)
	}},
}

// Formats are the values of --format: "text", every command's own
// rendering for people, then the encoders.
func Formats() []string {
	out := []string{"text"}
	for _, e := range encoders {
		out = append(out, e.name)
	}
	return out
}

// newFormatFlag adds --format to a command.
func newFormatFlag(fs *flag.FlagSet) *string {
	f := Formats()
	usage := "output format: " + strings.Join(f[:len(f)-1], ", ") + " or " + f[len(f)-1]
	return newEnum(fs, "format", "text", usage, f...)
}

// writeDoc prints a document in the chosen format. Rendering is a pure
// function of the value: text goes through textFn.
func writeDoc(w io.Writer, format string, doc any, textFn func(io.Writer, *style)) error {
	for _, e := range encoders {
		if e.name == format {
			b, err := e.encode(doc)
			if err != nil {
				return err
			}
			_, err = w.Write(b)
			return err
		}
	}
	var buf bytes.Buffer
	textFn(&buf, newStyle(w))
	_, err := w.Write(buf.Bytes())
	return err
}

func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return buf.Bytes(), nil
}

// jsonToYAML converts a JSON document to YAML keeping the key order, so
// that the YAML tree is the JSON tree.
func jsonToYAML(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	node, err := jsonNode(dec)
	if err != nil {
		return nil, fmt.Errorf("convert to yaml: %w", err)
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(node); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	enc.Close()
	return out.Bytes(), nil
}

func jsonNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string)
				v, err := jsonNode(dec)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
			}
			_, err := dec.Token()
			return n, err
		case '[':
			n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			for dec.More() {
				v, err := jsonNode(dec)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, v)
			}
			_, err := dec.Token()
			if len(n.Content) == 0 {
				n.Style = yaml.FlowStyle
			}
			return n, err
		}
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}, nil
	case json.Number:
		tag := "!!int"
		if _, err := strconv.ParseInt(t.String(), 10, 64); err != nil {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: t.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected json token %v", tok)
}

// style colours text output on a terminal, and not when piped or when
// NO_COLOR is set.
type style struct{ color bool }

func newStyle(w io.Writer) *style {
	s := &style{}
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return s
	}
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		s.color = true
	}
	return s
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func (s *style) wrap(code, text string) string {
	if !s.color {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

// pad left-justifies text, which may hold colour codes, in width columns:
// fmt's %-15s counts the escape bytes and would misalign every coloured
// cell.
func (s *style) pad(text string, width int) string {
	if n := width - visibleWidth(text); n > 0 {
		return text + strings.Repeat(" ", n)
	}
	return text
}

// visibleWidth is the number of characters text shows: runes outside
// "ESC [ ... m" sequences.
func visibleWidth(text string) int {
	n := 0
	for i := 0; i < len(text); {
		if text[i] == 0x1b && i+1 < len(text) && text[i+1] == '[' {
			j := strings.IndexByte(text[i:], 'm')
			if j < 0 {
				break
			}
			i += j + 1
			continue
		}
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
		n++
	}
	return n
}

func (s *style) bold(t string) string   { return s.wrap("1", t) }
func (s *style) green(t string) string  { return s.wrap("32", t) }
func (s *style) red(t string) string    { return s.wrap("31", t) }
func (s *style) yellow(t string) string { return s.wrap("33", t) }
func (s *style) dim(t string) string    { return s.wrap("2", t) }
