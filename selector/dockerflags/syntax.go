package dockerflags

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// directive is one Key=Value line of a unit file, with continuation lines
// joined.
type directive struct {
	section, key, value string
	line                int // of the key
}

// maxLine bounds one logical line of a unit or environment file.
const maxLine = 1 << 20

// parseUnit reads a systemd unit file or drop-in as systemd.syntax(7)
// describes it: comments start with # or ; at the start of a line, a
// trailing backslash continues the line (replaced by a space) and comment
// lines inside a continuation are dropped.
func parseUnit(r io.Reader) ([]directive, []string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxLine)
	var (
		out      []directive
		warnings []string
		section  string
		pending  strings.Builder
		start    int
		inCont   bool
		n        int
	)
	flush := func() {
		line := strings.TrimSpace(pending.String())
		pending.Reset()
		inCont = false
		if line == "" {
			return
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				warnings = append(warnings, fmt.Sprintf("line %d: malformed section header %q", start, line))
				return
			}
			section = line[1 : len(line)-1]
			return
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			warnings = append(warnings, fmt.Sprintf("line %d: not a key=value line: %q", start, truncate(line, 60)))
			return
		}
		out = append(out, directive{section: section, key: strings.TrimSpace(k), value: strings.TrimSpace(v), line: start})
	}
	for sc.Scan() {
		n++
		text := strings.TrimSuffix(sc.Text(), "\r")
		trimmed := strings.TrimSpace(text)
		if strings.HasPrefix(trimmed, "#") || strings.HasPrefix(trimmed, ";") {
			continue
		}
		if !inCont {
			start = n
			if trimmed == "" {
				continue
			}
		}
		if strings.HasSuffix(text, "\\") {
			pending.WriteString(text[:len(text)-1])
			pending.WriteByte(' ')
			inCont = true
			continue
		}
		pending.WriteString(text)
		flush()
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if inCont {
		flush()
	}
	return out, warnings, nil
}

// word is one argument of a command line, with where it came from.
type word struct {
	text string
	// bareVar is set for an unquoted word that is exactly $NAME: systemd
	// replaces it by the variable's value split into words.
	bareVar string
	// braced lists the ${NAME} references in the word.
	braced []string
}

// splitCommand splits an ExecStart= value into words as systemd does
// (systemd.service(5), "Command lines"; not sh, so by hand):
// whitespace separates words, "..." and '...' quote, and backslash escapes
// the next character (C escapes \n \t and friends are decoded). $$ is a
// literal dollar.
func splitCommand(s string) ([]word, error) {
	var (
		out    []word
		cur    strings.Builder
		in     bool // inside a word
		quoted bool // the word has a quoted part
		braced []string
	)
	end := func() {
		if !in {
			return
		}
		w := word{text: cur.String(), braced: braced}
		if !quoted && len(braced) == 0 && strings.HasPrefix(w.text, "$") && isName(w.text[1:]) {
			w.bareVar = w.text[1:]
		}
		out = append(out, w)
		cur.Reset()
		in, quoted, braced = false, false, nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			end()
		case c == '\\':
			in = true
			if i+1 >= len(s) {
				cur.WriteByte('\\')
				continue
			}
			i++
			cur.WriteString(unescape(s[i]))
		case c == '"' || c == '\'':
			in, quoted = true, true
			q := c
			i++
			for ; i < len(s) && s[i] != q; i++ {
				if s[i] == '\\' && q == '"' && i+1 < len(s) {
					i++
					cur.WriteString(unescape(s[i]))
					continue
				}
				if s[i] == '$' && q == '"' {
					if name, n := bracedRef(s[i:]); n > 0 {
						braced = append(braced, name)
						cur.WriteString(s[i : i+n])
						i += n - 1
						continue
					}
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated %c quote", q)
			}
		case c == '$':
			in = true
			if i+1 < len(s) && s[i+1] == '$' {
				cur.WriteString("$$") // kept escaped until expansion
				i++
				continue
			}
			if name, n := bracedRef(s[i:]); n > 0 {
				braced = append(braced, name)
				cur.WriteString(s[i : i+n])
				i += n - 1
				continue
			}
			cur.WriteByte(c)
		default:
			in = true
			cur.WriteByte(c)
		}
	}
	end()
	return out, nil
}

// bracedRef reads "${NAME}" at the start of s.
func bracedRef(s string) (string, int) {
	if !strings.HasPrefix(s, "${") {
		return "", 0
	}
	j := strings.IndexByte(s, '}')
	if j < 0 || !isName(s[2:j]) {
		return "", 0
	}
	return s[2:j], j + 1
}

func unescape(c byte) string {
	switch c {
	case 'n':
		return "\n"
	case 't':
		return "\t"
	case 'r':
		return "\r"
	case 'a':
		return "\a"
	case 'b':
		return "\b"
	case 'f':
		return "\f"
	case 'v':
		return "\v"
	case 's':
		return " "
	}
	return string(c)
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// splitVarWords splits a variable's value into words the way systemd
// replaces a "$VAR" word of ExecStart= (systemd.service(5)): whitespace
// separates, quotes group and are removed. This is systemd's splitting,
// not sh's (which removes no quotes from an expanded value), so it stays
// by hand.
func splitVarWords(s string) []string {
	var (
		out []string
		cur strings.Builder
		in  bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		case c == '"' || c == '\'':
			in = true
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				cur.WriteString(s[i+1:])
				i = len(s)
				continue
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '\\' && i+1 < len(s):
			in = true
			i++
			cur.WriteByte(s[i])
		default:
			in = true
			cur.WriteByte(c)
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// assignment is NAME=value from an environment file or Environment=.
type assignment struct {
	name, value string
	file        string
	line        int
}

// parseEnvFile reads a file of NAME=value lines as systemd's
// EnvironmentFile= does (systemd.exec(5)): comments, single and double
// quotes (which may span lines), backslash escapes and continuations, and
// "export NAME=..." for files written for sh too. It is not sh (a file
// that an init script sources is read by sourceFile): systemd runs no
// command and has no "$VAR" in values, so it stays by hand.
func parseEnvFile(r io.Reader, file string) ([]assignment, []string, error) {
	s, err := readText(r)
	if err != nil {
		return nil, nil, err
	}
	var (
		out      []assignment
		warnings []string
	)
	line := 1
	i := 0
	skipToEOL := func() {
		for i < len(s) && s[i] != '\n' {
			i++
		}
	}
	for i < len(s) {
		// Start of a line.
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		if s[i] == '\n' {
			i++
			line++
			continue
		}
		if s[i] == '#' || s[i] == ';' {
			skipToEOL()
			continue
		}
		startLine := line
		if strings.HasPrefix(s[i:], "export ") || strings.HasPrefix(s[i:], "export\t") {
			i += len("export ")
			for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
				i++
			}
		}
		j := i
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || j > i && s[j] >= '0' && s[j] <= '9') {
			j++
		}
		name := s[i:j]
		k := j
		for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
			k++
		}
		if name == "" || k >= len(s) || s[k] != '=' {
			end := strings.IndexByte(s[i:], '\n')
			if end < 0 {
				end = len(s) - i
			}
			warnings = append(warnings, fmt.Sprintf("line %d: not an assignment: %q", startLine, truncate(s[i:i+end], 60)))
			i += end
			continue
		}
		i = k + 1
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		var val strings.Builder
		pendingSpace := ""
	value:
		for i < len(s) {
			c := s[i]
			switch {
			case c == '\n':
				break value
			case c == ' ' || c == '\t':
				// Kept only when more value follows; a # after blanks
				// starts a comment, as in sh.
				sp := i
				for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
					i++
				}
				if i < len(s) && s[i] == '#' {
					skipToEOL()
					break value
				}
				pendingSpace = s[sp:i]
				continue
			case c == '\\':
				if i+1 < len(s) && s[i+1] == '\n' {
					i += 2
					line++
					continue
				}
				val.WriteString(pendingSpace)
				pendingSpace = ""
				if i+1 < len(s) {
					val.WriteByte(s[i+1])
					i += 2
				} else {
					i++
				}
				continue
			case c == '"' || c == '\'':
				val.WriteString(pendingSpace)
				pendingSpace = ""
				i++
				for i < len(s) && s[i] != c {
					if s[i] == '\n' {
						line++
					}
					if c == '"' && s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
						if s[i+1] != '\n' {
							val.WriteByte(s[i+1])
						} else {
							line++
						}
						i += 2
						continue
					}
					val.WriteByte(s[i])
					i++
				}
				if i >= len(s) {
					warnings = append(warnings, fmt.Sprintf("line %d: unterminated %c quote in %s", startLine, c, name))
					break value
				}
				i++ // closing quote
				continue
			}
			val.WriteString(pendingSpace)
			pendingSpace = ""
			val.WriteByte(c)
			i++
		}
		out = append(out, assignment{name: name, value: val.String(), file: file, line: startLine})
	}
	return out, warnings, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// readText reads a small text file whole, with CRLF line ends read as the
// author meant them (a \r would end up at the end of values).
func readText(r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxLine+1))
	if err != nil {
		return "", err
	}
	if len(data) > maxLine {
		return "", fmt.Errorf("over %d bytes", maxLine)
	}
	return strings.ReplaceAll(string(data), "\r\n", "\n"), nil
}
