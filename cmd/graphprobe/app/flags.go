package app

import (
	"flag"
	"fmt"
	"io"
	"strings"
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
			return nil, usageErrorf("%s: %s", f.name, strings.TrimPrefix(err.Error(), "flag provided but not defined: "))
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
