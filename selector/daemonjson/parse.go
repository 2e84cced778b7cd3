package daemonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of what Parse accepts. dockerd reads daemon.json whole, with no
// size limit, so any limit here refuses some file dockerd would read; it
// exists to bound the time and memory a corrupted or mis-generated file can
// cost a run at boot. A daemon.json in the wild is a few hundred bytes and
// three levels deep; an extreme one (5,000 insecure registries, 2,000
// labels, 256 address pools, 50 runtimes) is 360 KiB, and configurations
// over 1 MiB are read (TestOpenLargeRealConfig). MaxSize leaves five times
// the extreme one. Parse keeps only what graphprobe reads, so a hostile
// document costs mostly the decoder's garbage, little of it live at once:
// at this size an array of 0s allocates 88 MiB to parse and 268 MiB over a
// merge, a key every twelve bytes 109 MiB and 302 MiB, measured by
// test/reliability's TestParsersBoundedOnHostileInput. A larger limit
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
// Members and elements are kept only where graphprobe reads or edits them:
// in the top-level object, storage-opts and features.
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

// parseDocument parses a whole daemon.json. It returns a nil root for an
// empty (or whitespace-only) document, which dockerd reads as {}.
//
// encoding/json's Decoder does the lexing, so that what is valid JSON here
// is what dockerd's decoder reads; the tokens are walked with InputOffset
// to learn where each value's bytes are, which Merge needs to edit them in
// place. Only what graphprobe reads or edits is kept: the top-level
// members, and the children of storage-opts and features. Everything else
// is checked (duplicate keys, depth) and dropped, so that a large document
// costs little memory.
func parseDocument(name string, data []byte) (root *value, bomLen int, err *ParseError) {
	if len(data) > MaxSize {
		return nil, 0, &ParseError{Name: name, Msg: tooBig(humanSize(int64(len(data))))}
	}
	switch {
	case bytes.HasPrefix(data, bomUTF8):
		bomLen = len(bomUTF8)
	case bytes.HasPrefix(data, bomUTF16LE), bytes.HasPrefix(data, bomUTF16BE):
		return nil, 0, &ParseError{Name: name, Line: 1, Column: 1, Msg: "file is UTF-16 encoded; graphprobe edits UTF-8 only: convert it with iconv -f UTF-16 -t UTF-8"}
	}
	start := skipSpace(data, bomLen)
	if start == len(data) {
		return nil, bomLen, nil
	}
	w := &walker{name: name, data: data, base: bomLen, pos: bomLen, badUTF8: firstInvalidUTF8(data, bomLen)}
	w.dec = json.NewDecoder(bytes.NewReader(data[bomLen:]))
	v, perr := w.document()
	if perr != nil {
		return nil, 0, w.utf8Before(perr.Offset, perr)
	}
	if perr := w.utf8Before(len(data), nil); perr != nil {
		return nil, 0, perr
	}
	return v, bomLen, nil
}

// utf8Before returns an error for a byte that is not UTF-8 before off, or
// else err. The decoder reads such a byte in a string as U+FFFD;
// graphprobe refuses it, because re-encoding the string would change bytes
// it does not own. Before the place where the walk stopped, such a byte
// can only be inside a string.
func (w *walker) utf8Before(off int, err *ParseError) *ParseError {
	if w.badUTF8 < off {
		return w.errAt(w.badUTF8, "invalid UTF-8 byte 0x%02x in string literal: dockerd reads UTF-8 only", w.data[w.badUTF8])
	}
	return err
}

// walker walks one document's tokens.
type walker struct {
	name    string
	data    []byte
	dec     *json.Decoder
	base    int // the byte order mark's length: the decoder reads data[base:]
	pos     int // the end of the last token read
	depth   int
	badUTF8 int // the first byte that is not UTF-8, or len(data)
	last    scalar
}

// Which children value keeps: none, a container's own children, or (for
// the top-level object) its children and those of the members graphprobe
// reads.
const (
	keepNone = iota
	keepChildren
	keepRoot
)

func (w *walker) document() (*value, *ParseError) {
	v, _, err := w.value(true, 0, true, keepRoot)
	if err != nil {
		return nil, err
	}
	if v.kind != kindObject {
		// Reported at the value's start, found at its end.
		return nil, w.utf8Before(w.pos, w.errAt(v.start, "daemon.json must hold a JSON object, found %s", kindNames[v.kind]))
	}
	// The decoder reads a stream of values; dockerd's reads one.
	if rest := skipSpace(w.data, w.pos); rest < len(w.data) {
		return nil, w.invalid(rest, "after top-level value")
	}
	return &v, nil
}

// next reads a token (a key or a delimiter) and returns it with the offset
// of its first byte.
func (w *walker) next() (json.Token, int, *ParseError) {
	tok, err := w.dec.Token()
	if err != nil {
		return nil, 0, w.tokenError(err)
	}
	// Between two tokens stand only whitespace and at most one separator,
	// which the decoder has checked.
	start := w.pos
	for start < len(w.data) && strings.IndexByte(" \t\r\n,:", w.data[start]) >= 0 {
		start++
	}
	w.pos = w.base + int(w.dec.InputOffset())
	return tok, start, nil
}

// value reads the next value, which follows sep unless it is the first in
// its container, and keeps the children that keep asks for. closed is true
// when the container's closing delimiter came instead.
//
// Numbers, literals and strings that are not kept go to Decode rather than
// Token: Token would decode each into an interface value, at several
// allocations a value, and most of a large document is such values that
// graphprobe drops.
func (w *walker) value(first bool, sep byte, kept bool, keep int) (v value, closed bool, err *ParseError) {
	off := skipSpace(w.data, w.pos)
	if !first {
		if off < len(w.data) && w.data[off] == sep {
			off = skipSpace(w.data, off+1)
		} else {
			off = len(w.data) // Token's error names what stands in the separator's place
		}
	}
	if off < len(w.data) && strings.IndexByte("{[]}", w.data[off]) < 0 && !(kept && w.data[off] == '"') {
		return w.scalar(off)
	}
	tok, start, err := w.next()
	if err != nil {
		return value{}, false, err
	}
	switch tok {
	case json.Delim('{'), json.Delim('['):
		v, err := w.container(tok.(json.Delim), start, keep)
		return v, false, err
	case json.Delim('}'), json.Delim(']'):
		return value{}, true, nil
	}
	if s, ok := tok.(string); ok {
		return value{kind: kindString, start: start, end: w.pos, str: s}, false, nil
	}
	return value{}, false, w.errAt(start, "unexpected token %v", tok) // the decoder returns no other here
}

// scalar reads the string, number or literal at off, without a string's
// text.
func (w *walker) scalar(off int) (value, bool, *ParseError) {
	w.last = scalar{}
	if err := w.dec.Decode(&w.last); err != nil {
		return value{}, false, w.tokenError(err)
	}
	w.pos = w.base + int(w.dec.InputOffset())
	if w.last.outOfRange {
		return value{}, false, w.errAt(off, "number %s is out of range (dockerd cannot read it)", truncateNum(string(w.data[off:w.pos])))
	}
	return value{kind: w.last.kind, start: off, end: w.pos, b: w.last.b}, false, nil
}

// scalar receives a string, number or literal from the decoder, as the
// bytes it checked.
type scalar struct {
	kind       kind
	b          bool
	outOfRange bool
}

func (s *scalar) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case '"':
		s.kind = kindString
	case 't', 'f':
		s.kind, s.b = kindBool, b[0] == 't'
	case 'n':
		s.kind = kindNull
	default:
		// dockerd decodes numbers into float64: one beyond its range
		// stops dockerd from starting, so it is no valid daemon.json.
		s.kind = kindNumber
		_, err := strconv.ParseFloat(string(b), 64)
		s.outOfRange = err != nil
	}
	return nil
}

// container reads an object or an array up to its closing delimiter.
func (w *walker) container(open json.Delim, start int, keep int) (value, *ParseError) {
	w.depth++
	defer func() { w.depth-- }()
	if w.depth > MaxDepth {
		return value{}, w.errAt(start, "nesting deeper than %d levels is refused", MaxDepth)
	}
	v := value{kind: kindArray, start: start}
	if open == '{' {
		v.kind = kindObject
	}
	var seen map[string]int // key -> offset of its first byte
	for i := 0; ; i++ {
		var m member
		childKeep, sep := keepNone, byte(',')
		if v.kind == kindObject {
			sep = ':'
			tok, kstart, err := w.next()
			if err != nil {
				return value{}, err
			}
			if tok == json.Delim('}') {
				v.end = w.pos
				return v, nil
			}
			key := tok.(string) // the decoder returns only strings in key position
			if prev, dup := seen[key]; dup {
				line, col := position(w.data, prev)
				return value{}, w.errAt(kstart, "duplicate key %s (also at line %d, column %d): remove one of them", strconv.Quote(key), line, col)
			}
			if seen == nil {
				seen = map[string]int{}
			}
			seen[key] = kstart
			m = member{key: key, keyStart: kstart, keyEnd: w.pos}
			if keep == keepRoot && (key == KeyStorageOpts || key == KeyFeatures) {
				childKeep = keepChildren
			}
		}
		child, closed, err := w.value(i == 0 && v.kind == kindArray, sep, keep != keepNone, childKeep)
		if err != nil {
			return value{}, err
		}
		if closed {
			v.end = w.pos
			return v, nil
		}
		if keep == keepNone {
			continue
		}
		kept := new(value) // only here, so that a dropped child costs no allocation
		*kept = child
		if v.kind == kindObject {
			m.val = kept
			v.members = append(v.members, m)
		} else {
			v.elems = append(v.elems, kept)
		}
	}
}

func (w *walker) errAt(off int, format string, args ...any) *ParseError {
	line, col := position(w.data, off)
	return &ParseError{Name: w.name, Line: line, Column: col, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// tokenError turns the decoder's error into a ParseError at the offending
// byte. The decoder's own offsets cannot be used: for an error inside a
// string, number or literal, SyntaxError.Offset counts from where the
// decoder's scanner was created, not from the start of the input.
func (w *walker) tokenError(err error) *ParseError {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// Between tokens or inside one: the document ends before its
		// top-level value does.
		return w.errAt(len(w.data), "unexpected end of JSON input")
	case !errors.As(err, &se):
		return w.errAt(w.pos, "%v", err)
	}
	// Where the failed token starts, or the whitespace before it.
	at := w.base + int(w.dec.InputOffset())
	context, ok := w.context(se, at)
	if !ok || !tokenContexts[context] {
		// An error inside a string, number or literal: scan that one
		// value again with a scanner of its own, whose offset counts from
		// here.
		var raw json.RawMessage
		if err := json.NewDecoder(bytes.NewReader(w.data[at:])).Decode(&raw); errors.As(err, &se) && se.Offset > 0 {
			at += int(se.Offset) - 1
		}
		if context, ok = w.context(se, at); !ok {
			return w.errAt(at, "%s", se.Error())
		}
	}
	if context == "" {
		// The decoder names no context for a bad byte right after "{".
		context = " looking for beginning of object key string"
	}
	return w.invalid(at, strings.TrimPrefix(context, " "))
}

// context returns what se says after naming the byte at off, and false
// when se names another byte.
func (w *walker) context(se *json.SyntaxError, off int) (string, bool) {
	if off >= len(w.data) {
		return "", false
	}
	return strings.CutPrefix(se.Error(), "invalid character "+jsonQuoteChar(w.data[off]))
}

// tokenContexts are the contexts of errors the decoder finds between
// values (at the byte where the failed token starts), as opposed to
// inside one.
var tokenContexts = map[string]bool{
	"":                                true,
	" looking for beginning of value": true,
	" looking for beginning of object key string": true,
	" after object key":                           true,
	" after object key:value pair":                true,
	" after array element":                        true,
}

// jsonQuoteChar names a byte as encoding/json's messages do.
func jsonQuoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}

// invalid reports the byte at off as unexpected in context, naming the
// character (not encoding/json's byte) so that the message matches what
// the user sees in an editor.
func (w *walker) invalid(off int, context string) *ParseError {
	if off == w.badUTF8 {
		return w.errAt(off, "invalid UTF-8 byte 0x%02x %s: dockerd reads UTF-8 only", w.data[off], context)
	}
	return w.errAt(off, "invalid %s %s", describe(w.data, off), context)
}

// firstInvalidUTF8 returns the offset of the first byte from off on that
// does not belong to a UTF-8 character, or len(data).
func firstInvalidUTF8(data []byte, off int) int {
	if utf8.Valid(data[off:]) {
		return len(data)
	}
	for off < len(data) {
		r, size := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && size == 1 {
			return off
		}
		off += size
	}
	return len(data)
}

func skipSpace(data []byte, off int) int {
	for off < len(data) && (data[off] == ' ' || data[off] == '\t' || data[off] == '\n' || data[off] == '\r') {
		off++
	}
	return off
}

func truncateNum(n string) string {
	if len(n) > 40 {
		return n[:40] + "..."
	}
	return n
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

// describe names the character at off the way encoding/json names a byte,
// so that messages read like the ones dockerd prints.
func describe(data []byte, off int) string {
	r, size := utf8.DecodeRune(data[off:])
	switch {
	case r == utf8.RuneError && size <= 1:
		return fmt.Sprintf("byte 0x%02x", data[off])
	case r == '\'':
		return `character '\''`
	case r == '"':
		return `character '"'`
	}
	return "character " + strconv.QuoteRune(r)
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
