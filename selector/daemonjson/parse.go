package daemonjson

import (
	"bytes"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits of what Parse accepts. dockerd reads daemon.json whole, with no
// size limit, so any limit here refuses some file dockerd would read; it
// exists to bound the time and memory a corrupted or mis-generated file can
// cost a run at boot. A daemon.json in the wild is a few hundred bytes and
// three levels deep; an extreme one (5,000 insecure registries, 2,000
// labels, 256 address pools, 50 runtimes) is 360 KiB. MaxSize leaves five
// times that; the densest hostile document of that size (an array of 0s)
// allocates 139 MiB to parse and 420 MiB over a merge, measured by
// test/reliability's TestParsersBoundedOnHostileInput: a larger limit
// would let a broken file cost a small host's boot far more.
const (
	MaxSize  = 2 << 20
	MaxDepth = 64
)

// tooBig says that a daemon.json of the given size is over MaxSize, and
// how to proceed.
func tooBig(size string) string {
	return fmt.Sprintf("file is %s, over graphprobe's %s limit for a daemon.json "+
		"(dockerd has none; the limit bounds what a run costs at boot): check that the file is not corrupt "+
		"or mis-generated, or set storage-driver by hand to what "+
		"`graphprobe select --dry-run --config EMPTY.json` prints (EMPTY.json holding {})",
		size, humanSize(MaxSize))
}

// The keys graphprobe reads or writes.
const (
	KeyStorageDriver = "storage-driver"
	KeyStorageOpts   = "storage-opts"
	KeyFeatures      = "features"
	KeySnapshotter   = "containerd-snapshotter"
	KeyDataRoot      = "data-root"
	// KeyGraph is data-root's name before Docker 17.05; dockerd still
	// read it until 23.0.
	KeyGraph = "graph"
)

// ParseError is a daemon.json that cannot be used: bad JSON, a duplicate
// key, a key of the wrong type, or a document over the limits. Line and
// Column (1-based, columns in characters) point at the offending byte; both
// are 0 for errors about the whole file (its size).
type ParseError struct {
	Name   string
	Line   int
	Column int
	Offset int
	Msg    string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("parse %s: %s", e.Name, e.Msg)
	}
	return fmt.Sprintf("parse %s: line %d, column %d: %s", e.Name, e.Line, e.Column, e.Msg)
}

type kind uint8

const (
	kindObject kind = iota + 1
	kindArray
	kindString
	kindNumber
	kindBool
	kindNull
)

var kindNames = map[kind]string{
	kindObject: "an object", kindArray: "an array", kindString: "a string",
	kindNumber: "a number", kindBool: "a boolean", kindNull: "null",
}

// value is one JSON value and where its bytes are in the document.
type value struct {
	kind       kind
	start, end int // [start, end) in the document
	members    []member
	elems      []*value
	str        string // decoded, for strings
	b          bool   // for booleans
}

type member struct {
	key              string // decoded
	keyStart, keyEnd int    // the quoted key
	val              *value
}

func (v *value) lookup(key string) (int, *member) {
	if v == nil {
		return -1, nil
	}
	for i := range v.members {
		if v.members[i].key == key {
			return i, &v.members[i]
		}
	}
	return -1, nil
}

var (
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
)

type parser struct {
	name  string
	data  []byte
	pos   int
	depth int
}

func (p *parser) errAt(off int, format string, args ...any) *ParseError {
	line, col := position(p.data, off)
	return &ParseError{Name: p.name, Line: line, Column: col, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// position turns a byte offset into a 1-based line and character column.
func position(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	line = 1 + bytes.Count(data[:off], []byte{'\n'})
	lineStart := bytes.LastIndexByte(data[:off], '\n') + 1
	if lineStart == 0 && bytes.HasPrefix(data[:off], bomUTF8) {
		lineStart = len(bomUTF8) // editors do not show the byte order mark
	}
	return line, 1 + utf8.RuneCount(data[lineStart:off])
}

// describe names the character at off the way encoding/json does, so that
// messages read like the ones dockerd prints.
func (p *parser) describe(off int) string {
	r, size := utf8.DecodeRune(p.data[off:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("byte 0x%02x", p.data[off])
	}
	switch r {
	case '\'':
		return `character '\''`
	case '"':
		return `character '"'`
	}
	q := strconv.QuoteRune(r)
	return "character " + q
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) unexpectedEOF() *ParseError {
	return p.errAt(len(p.data), "unexpected end of JSON input")
}

func (p *parser) invalid(context string) *ParseError {
	if firstRuneInvalid(p.data[p.pos:]) {
		return p.errAt(p.pos, "invalid UTF-8 byte 0x%02x %s: dockerd reads UTF-8 only", p.data[p.pos], context)
	}
	return p.errAt(p.pos, "invalid %s %s", p.describe(p.pos), context)
}

func firstRuneInvalid(b []byte) bool {
	r, size := utf8.DecodeRune(b)
	return r == utf8.RuneError && size <= 1
}

// parseDocument parses a whole daemon.json. It returns a nil root for an
// empty (or whitespace-only) document, which dockerd reads as {}.
func parseDocument(name string, data []byte) (root *value, bomLen int, err error) {
	if len(data) > MaxSize {
		return nil, 0, &ParseError{Name: name, Msg: tooBig(humanSize(int64(len(data))))}
	}
	switch {
	case bytes.HasPrefix(data, bomUTF8):
		bomLen = len(bomUTF8)
	case bytes.HasPrefix(data, bomUTF16LE), bytes.HasPrefix(data, bomUTF16BE):
		return nil, 0, &ParseError{Name: name, Line: 1, Column: 1, Msg: "file is UTF-16 encoded; graphprobe edits UTF-8 only: convert it with iconv -f UTF-16 -t UTF-8"}
	}
	p := &parser{name: name, data: data, pos: bomLen}
	p.skipSpace()
	if p.pos == len(data) {
		return nil, bomLen, nil
	}
	start := p.pos
	v, perr := p.parseValue()
	if perr != nil {
		return nil, 0, perr
	}
	if v.kind != kindObject {
		return nil, 0, p.errAt(start, "daemon.json must hold a JSON object, found %s", kindNames[v.kind])
	}
	p.skipSpace()
	if p.pos < len(data) {
		return nil, 0, p.invalid("after top-level value")
	}
	return v, bomLen, nil
}

func (p *parser) parseValue() (*value, *ParseError) {
	if p.pos >= len(p.data) {
		return nil, p.unexpectedEOF()
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.parseObject()
	case c == '[':
		return p.parseArray()
	case c == '"':
		start := p.pos
		s, err := p.parseString()
		if err != nil {
			return nil, err
		}
		return &value{kind: kindString, start: start, end: p.pos, str: s}, nil
	case c == '-' || c >= '0' && c <= '9':
		return p.parseNumber()
	case c == 't':
		return p.parseLiteral("true", kindBool, true)
	case c == 'f':
		return p.parseLiteral("false", kindBool, false)
	case c == 'n':
		return p.parseLiteral("null", kindNull, false)
	default:
		return nil, p.invalid("looking for beginning of value")
	}
}

func (p *parser) enter() *ParseError {
	p.depth++
	if p.depth > MaxDepth {
		return p.errAt(p.pos, "nesting deeper than %d levels is refused", MaxDepth)
	}
	return nil
}

func (p *parser) parseObject() (*value, *ParseError) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	v := &value{kind: kindObject, start: p.pos}
	p.pos++ // {
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		v.end = p.pos
		return v, nil
	}
	seen := map[string]int{}
	for {
		if p.pos >= len(p.data) {
			return nil, p.unexpectedEOF()
		}
		if p.data[p.pos] != '"' {
			return nil, p.invalid("looking for beginning of object key string")
		}
		keyStart := p.pos
		key, err := p.parseString()
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[key]; dup {
			line, col := position(p.data, v.members[prev].keyStart)
			return nil, p.errAt(keyStart, "duplicate key %s (also at line %d, column %d): remove one of them", strconv.Quote(key), line, col)
		}
		seen[key] = len(v.members)
		keyEnd := p.pos
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.unexpectedEOF()
		}
		if p.data[p.pos] != ':' {
			return nil, p.invalid("after object key")
		}
		p.pos++
		p.skipSpace()
		val, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		v.members = append(v.members, member{key: key, keyStart: keyStart, keyEnd: keyEnd, val: val})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.unexpectedEOF()
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipSpace()
		case '}':
			p.pos++
			v.end = p.pos
			return v, nil
		default:
			return nil, p.invalid("after object key:value pair")
		}
	}
}

func (p *parser) parseArray() (*value, *ParseError) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	v := &value{kind: kindArray, start: p.pos}
	p.pos++ // [
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		v.end = p.pos
		return v, nil
	}
	for {
		e, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		v.elems = append(v.elems, e)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.unexpectedEOF()
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			p.skipSpace()
		case ']':
			p.pos++
			v.end = p.pos
			return v, nil
		default:
			return nil, p.invalid("after array element")
		}
	}
}

// parseString reads a quoted string at p.pos and returns it decoded, as
// encoding/json would (invalid surrogate escapes become U+FFFD).
func (p *parser) parseString() (string, *ParseError) {
	p.pos++ // opening quote
	var sb []byte
	plainFrom := p.pos
	for {
		if p.pos >= len(p.data) {
			return "", p.unexpectedEOF()
		}
		c := p.data[p.pos]
		switch {
		case c == '"':
			sb = append(sb, p.data[plainFrom:p.pos]...)
			p.pos++
			return string(sb), nil
		case c < 0x20:
			return "", p.invalid("in string literal")
		case c == '\\':
			sb = append(sb, p.data[plainFrom:p.pos]...)
			p.pos++
			if p.pos >= len(p.data) {
				return "", p.unexpectedEOF()
			}
			switch e := p.data[p.pos]; e {
			case '"', '\\', '/':
				sb = append(sb, e)
				p.pos++
			case 'b':
				sb = append(sb, '\b')
				p.pos++
			case 'f':
				sb = append(sb, '\f')
				p.pos++
			case 'n':
				sb = append(sb, '\n')
				p.pos++
			case 'r':
				sb = append(sb, '\r')
				p.pos++
			case 't':
				sb = append(sb, '\t')
				p.pos++
			case 'u':
				p.pos++
				r, err := p.hex4()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(r) {
					r2 := unicodeReplacement
					if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
						save := p.pos
						p.pos += 2
						lo, err := p.hex4()
						if err != nil {
							return "", err
						}
						if dec := utf16.DecodeRune(r, lo); dec != unicodeReplacement {
							r2 = dec
						} else {
							p.pos = save // the second escape stands on its own
						}
					}
					r = r2
				}
				sb = utf8.AppendRune(sb, r)
			default:
				return "", p.invalid("in string escape code")
			}
			plainFrom = p.pos
		case c < utf8.RuneSelf:
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && size == 1 {
				return "", p.errAt(p.pos, "invalid UTF-8 byte 0x%02x in string literal: dockerd reads UTF-8 only", c)
			}
			p.pos += size
		}
	}
}

const unicodeReplacement = '\uFFFD'

func (p *parser) hex4() (rune, *ParseError) {
	var r rune
	for i := 0; i < 4; i++ {
		if p.pos >= len(p.data) {
			return 0, p.unexpectedEOF()
		}
		c := p.data[p.pos]
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, p.invalid(`in \u hexadecimal character escape`)
		}
		p.pos++
	}
	return r, nil
}

func (p *parser) parseNumber() (*value, *ParseError) {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.data[p.pos] == '-' {
		p.pos++
	}
	if p.pos >= len(p.data) {
		return nil, p.unexpectedEOF()
	}
	switch c := p.data[p.pos]; {
	case c == '0':
		p.pos++
	case c >= '1' && c <= '9':
		digits()
	default:
		return nil, p.invalid("in numeric literal")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if p.pos >= len(p.data) {
			return nil, p.unexpectedEOF()
		}
		if digits() == 0 {
			return nil, p.invalid("after decimal point in numeric literal")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if p.pos >= len(p.data) {
			return nil, p.unexpectedEOF()
		}
		if digits() == 0 {
			return nil, p.invalid("in exponent of numeric literal")
		}
	}
	// dockerd decodes numbers into float64: one beyond its range stops
	// dockerd from starting, so it is no valid daemon.json either.
	if _, err := strconv.ParseFloat(string(p.data[start:p.pos]), 64); err != nil {
		return nil, p.errAt(start, "number %s is out of range (dockerd cannot read it)", truncateNum(p.data[start:p.pos]))
	}
	return &value{kind: kindNumber, start: start, end: p.pos}, nil
}

func truncateNum(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

func (p *parser) parseLiteral(lit string, k kind, b bool) (*value, *ParseError) {
	start := p.pos
	for i := 0; i < len(lit); i++ {
		if p.pos >= len(p.data) {
			return nil, p.unexpectedEOF()
		}
		if p.data[p.pos] != lit[i] {
			return nil, p.invalid(fmt.Sprintf("in literal %s (expecting %s)", lit, quoteChar(lit[i])))
		}
		p.pos++
	}
	return &value{kind: k, start: start, end: p.pos, b: b}, nil
}

func quoteChar(c byte) string {
	return strconv.QuoteRune(rune(c))
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
