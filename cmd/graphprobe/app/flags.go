package app

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// flagSet is a GNU-style flag set: --name value, --name=value, flags and
// positional arguments in any order, and "--" to end flags.
type flagSet struct {
	*flag.FlagSet
	name string
}

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, name: name}
}

// parse returns the positional arguments.
func (f *flagSet) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.FlagSet.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, usageErrorf("%s: %s", f.name, gnuFlagError(err))
		}
		rest := f.FlagSet.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		// Did the flag package stop at "--" itself? It consumes it; then
		// what remains is positional.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// gnuFlagError rewrites the flag package's messages, which name flags Go
// style ("-format"), with the double dashes that graphprobe's flags are
// written with everywhere else.
func gnuFlagError(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "invalid boolean value ") {
		msg = strings.TrimSuffix(msg, ": parse error") + ": must be true or false"
	}
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return "unknown flag --" + strings.TrimPrefix(name, "-")
	}
	for _, p := range []string{"for flag -", "for -", "flag needs an argument: -", "invalid boolean flag "} {
		if i := strings.Index(msg, p); i >= 0 {
			rest := strings.TrimPrefix(msg[i+len(p):], "-")
			if p == "invalid boolean flag " {
				return "invalid boolean flag --" + rest
			}
			return msg[:i] + strings.TrimSuffix(p, "-") + "--" + rest
		}
	}
	return msg
}

// absPathValue is a flag that takes an absolute path only: a relative
// data-root would depend on the directory graphprobe happens to run in,
// while dockerd's is absolute. Rejecting it while parsing makes it the
// same usage error (exit 2) for every command.
type absPathValue struct{ val *string }

func (a absPathValue) String() string {
	if a.val == nil {
		return ""
	}
	return *a.val
}

func (a absPathValue) Set(s string) error {
	if !filepath.IsAbs(s) {
		if abs, err := filepath.Abs(s); err == nil && s != "" {
			return fmt.Errorf("must be an absolute path, as dockerd's is: did you mean %s?", abs)
		}
		return fmt.Errorf("must be an absolute path, as dockerd's is")
	}
	*a.val = filepath.Clean(s)
	return nil
}

// durationValue is a duration flag whose error says what is expected:
// the flag package's own says only "parse error", and a bare number (5)
// is the usual mistake.
type durationValue struct{ val *time.Duration }

func (d durationValue) String() string {
	if d.val == nil {
		return ""
	}
	return d.val.String()
}

func (d durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("must be a duration with a unit, like 5s, 90s or 2m")
	}
	if v < 0 {
		return fmt.Errorf("must not be negative")
	}
	*d.val = v
	return nil
}

// enumValue is a flag restricted to a set of words.
type enumValue struct {
	val    *string
	values []string
}

func newEnum(fs *flag.FlagSet, name, def, usage string, values ...string) *string {
	v := def
	fs.Var(&enumValue{val: &v, values: values}, name, usage)
	return &v
}

func (e *enumValue) String() string {
	if e.val == nil {
		return ""
	}
	return *e.val
}

func (e *enumValue) Set(s string) error {
	for _, v := range e.values {
		if s == v {
			*e.val = s
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(e.values, ", "))
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
