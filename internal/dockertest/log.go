package dockertest

import (
	"strconv"
	"strings"
)

// Entry is one line of dockerd's log. dockerd and the containerd it
// manages both write logrus text lines (time="..." level=error msg="..."
// key=value); the few lines that are not in that form, such as the final
// "failed to start daemon: ..." that dockerd prints before exiting, have
// Level "" and the whole line in Msg.
type Entry struct {
	Level  string
	Msg    string
	Fields map[string]string
	// Line is the line as written.
	Line string
}

// ParseLog splits a dockerd log into entries, skipping empty lines.
func ParseLog(log string) []Entry {
	var out []Entry
	for _, line := range strings.Split(log, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		out = append(out, parseLine(line))
	}
	return out
}

// parseLine reads a logrus text line. A line that does not start with a
// time= field is kept whole as a plain message.
func parseLine(line string) Entry {
	e := Entry{Line: line}
	if !strings.HasPrefix(line, "time=") {
		e.Msg = line
		return e
	}
	fields := map[string]string{}
	rest := line
	for rest != "" {
		rest = strings.TrimLeft(rest, " ")
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			break
		}
		key := rest[:eq]
		rest = rest[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				// Not a Go-quoted value: keep the rest as it is.
				val, rest = rest, ""
			} else {
				val, _ = strconv.Unquote(q)
				rest = rest[len(q):]
			}
		} else {
			sp := strings.IndexByte(rest, ' ')
			if sp < 0 {
				val, rest = rest, ""
			} else {
				val, rest = rest[:sp], rest[sp:]
			}
		}
		fields[key] = val
	}
	e.Level = fields["level"]
	e.Msg = fields["msg"]
	delete(fields, "time")
	delete(fields, "level")
	delete(fields, "msg")
	e.Fields = fields
	return e
}

// Plain returns the lines of a log that are not logrus entries: what
// dockerd prints on its way out ("failed to start daemon: ...", "unable to
// configure the Docker daemon with file ...").
func Plain(entries []Entry) []string {
	var out []string
	for _, e := range entries {
		if e.Level == "" {
			out = append(out, e.Msg)
		}
	}
	return out
}

// AtLevel returns the entries of the given level ("error", "warning",
// "fatal").
func AtLevel(entries []Entry, level string) []Entry {
	var out []Entry
	for _, e := range entries {
		if e.Level == level {
			out = append(out, e)
		}
	}
	return out
}

// WithField returns the entries whose field key has value val, such as
// storage-driver=overlay2 on a graph driver's init errors.
func WithField(entries []Entry, key, val string) []Entry {
	var out []Entry
	for _, e := range entries {
		if v, ok := e.Fields[key]; ok && v == val {
			out = append(out, e)
		}
	}
	return out
}
