package dockerflags

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	shexpand "mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// The files sysvinit and upstart scripts source with "." and the scripts
// of "sh -c" in a unit are shell, so they are read with a shell parser
// (mvdan.cc/sh) rather than by hand: quoting, continuations, comments,
// "export", "+=" and "$VAR" in a value referring to an earlier assignment
// come out as sh has them. Nothing in them is ever run: a command
// substitution or process substitution expands to nothing (with a
// warning), globbing is off, and no variable comes from graphprobe's own
// environment.

// newShellParser reads bash's grammar, a superset of the dash and bash
// that run init scripts, so that a bash-only construct is read rather
// than refused.
func newShellParser() *syntax.Parser {
	return syntax.NewParser(syntax.Variant(syntax.LangBash))
}

// shellEnv is the variables a sourced file has set so far, and nothing
// else: the init script starts from an empty environment as far as its
// storage variables go.
type shellEnv map[string]string

func (e shellEnv) Get(name string) shexpand.Variable {
	if user, ok := strings.CutPrefix(name, "HOME "); ok {
		// ~user: the expander would look the user up in the running
		// host's passwd, which is not the scanned host's.
		return shexpand.Variable{Set: true, Kind: shexpand.String, Str: "~" + user}
	}
	v, ok := e[name]
	if !ok {
		return shexpand.Variable{}
	}
	return shexpand.Variable{Set: true, Kind: shexpand.String, Str: v}
}

func (e shellEnv) Each(fn func(string, shexpand.Variable) bool) {
	for name, v := range e {
		if !fn(name, shexpand.Variable{Set: true, Kind: shexpand.String, Str: v}) {
			return
		}
	}
}

// Set serves ${VAR:=word} and $((VAR=n)).
func (e shellEnv) Set(name string, vr shexpand.Variable) error {
	switch {
	case !vr.IsSet():
		delete(e, name)
	case vr.Kind != shexpand.KeepValue:
		e[name] = vr.String()
	}
	return nil
}

// noExec is an expansion config that runs nothing: a command or process
// substitution expands to "" and is reported through warn.
func noExec(env shexpand.Environ, warn func(syntax.Pos, string)) *shexpand.Config {
	return &shexpand.Config{
		Env: env,
		CmdSubst: func(_ io.Writer, cs *syntax.CmdSubst) error {
			warn(cs.Pos(), "command substitution is not run; it counts as empty")
			return nil
		},
		ProcSubst: func(ps *syntax.ProcSubst) (string, error) {
			warn(ps.Pos(), "process substitution is not run; it counts as empty")
			return "", nil
		},
	}
}

// setsVariables are the builtins that may set a variable in ways the scan
// does not follow (another file, a string run as code, input).
var setsVariables = map[string]bool{
	".": true, "source": true, "eval": true, "read": true, "readarray": true,
	"mapfile": true, "unset": true, "set": true, "let": true, "getopts": true,
}

// sourceFile evaluates the assignments of a file that an init script
// sources, in order, each with the variables set before it. Every
// assignment in an if, case or loop counts, as if each branch ran once;
// function bodies, subshells and prefix assignments of a command
// (NAME=x cmd) set nothing in the sourcing shell and are skipped. A
// syntax error ends the file with a warning, as it ends sh's ".".
func sourceFile(r io.Reader, file string) ([]assignment, []string, error) {
	s, err := readText(r)
	if err != nil {
		return nil, nil, err
	}
	var (
		out      []assignment
		warnings []string
		env      = shellEnv{}
	)
	warn := func(p syntax.Pos, msg string) {
		warnings = append(warnings, fmt.Sprintf("line %d: %s", p.Line(), msg))
	}
	cfg := noExec(env, warn)
	assign := func(as *syntax.Assign) {
		if as.Naked || as.Name == nil || as.Index != nil || as.Array != nil {
			return // export NAME, declare flags, arrays
		}
		name := as.Name.Value
		v, err := shexpand.Literal(cfg, as.Value)
		if err != nil {
			warn(as.Pos(), fmt.Sprintf("%s: %v", name, err))
			return
		}
		if as.Append {
			v = env[name] + v
		}
		env[name] = v
		out = append(out, assignment{name: name, value: v, file: file, line: int(as.Pos().Line())})
	}
	walk := func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.FuncDecl, *syntax.Subshell, *syntax.CmdSubst, *syntax.ProcSubst:
			return false
		case *syntax.CallExpr:
			if len(n.Args) == 0 {
				for _, as := range n.Assigns {
					assign(as)
				}
				return false
			}
			if name := n.Args[0].Lit(); setsVariables[name] {
				warn(n.Pos(), fmt.Sprintf("%q is not run; variables it sets are not seen", name))
			}
		case *syntax.DeclClause:
			for _, as := range n.Args {
				assign(as)
			}
			return false
		}
		return true
	}
	// Statement by statement, so that those before a syntax error count.
	// The loop never stops early: after some errors StmtsSeq yields again
	// (v3.14.1; Parser.Stmts, which returns at the first error, panics
	// there), so later yields are drained and ignored.
	var perr error
	for st, err := range newShellParser().StmtsSeq(strings.NewReader(s)) {
		switch {
		case perr != nil:
		case err != nil:
			perr = err
		default:
			syntax.Walk(st, walk)
		}
	}
	if perr != nil {
		warnings = append(warnings, parseWarning(perr))
	}
	return out, warnings, nil
}

// parseWarning words a shell syntax error as a warning with its line.
func parseWarning(err error) string {
	var pe syntax.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("line %d: %s; sh stops reading the file here", pe.Pos.Line(), pe.Text)
	}
	var le syntax.LangError
	if errors.As(err, &le) {
		return fmt.Sprintf("line %d: %s is not shell that sh reads; sh stops reading the file here", le.Pos.Line(), le.Feature)
	}
	return err.Error()
}

// initScriptFields splits a variable's value as an init script passes
// it, unquoted ($DOCKER_OPTS): sh splits the value at blanks and removes
// no quotes, so DOCKER_OPTS="-s 'vfs'" gives dockerd the value 'vfs'
// with its quotes. Globbing, the other step, is not done: the pattern
// would be matched against the running host, not the scanned one.
func initScriptFields(value string) []string {
	return strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' })
}

// unitVar looks up a variable of the unit's environment, which systemd
// hands to the sh of "sh -c", and says where its value was written.
type unitVar func(name string) (value string, o Origin, ok bool)

// unitVars looks variables up in the unit's environment for the script of
// the ExecStart at ex, recording each one used as expand does.
func unitVars(env map[string]assignment, ex located, used map[string]bool) unitVar {
	return func(name string) (string, Origin, bool) {
		a, ok := env[name]
		if !ok {
			return "", Origin{}, false
		}
		used[path.Clean(a.file)+"\x00"+a.name] = true
		return a.value, Origin{File: a.file, Line: a.line, Via: fmt.Sprintf("$%s in ExecStart at %s:%d", name, ex.file, ex.line)}, true
	}
}

// scriptCommands returns the simple commands of an "sh -c" script, each
// expanded into its words as sh would pass them, with the unit's
// variables from vars (nil: none known). A variable vars does not know
// keeps its text, "$NAME", so that it is seen as a value, not skipped. A
// word that takes a variable's value comes from where the value was
// written. Nothing is run; a script that does not parse runs nothing and
// gives no commands.
func scriptCommands(script arg, vars unitVar) [][]arg {
	f, err := newShellParser().Parse(strings.NewReader(script.text), "")
	if err != nil {
		return nil
	}
	var out [][]arg
	cfg := noExec(scriptEnv{shellEnv{}, vars}, func(syntax.Pos, string) {})
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		var words []arg
		for _, w := range call.Args {
			fields, err := shexpand.Fields(cfg, w)
			if err != nil {
				return true
			}
			o := script.Origin
			for _, name := range paramNames(w) {
				if vars == nil {
					break
				}
				if v, vo, ok := vars(name); ok && v != "" {
					o = vo
				}
			}
			for _, s := range fields {
				words = append(words, arg{text: s, Origin: o})
			}
		}
		if len(words) > 0 && !namesOnly[words[0].text] {
			out = append(out, words)
		}
		return true
	})
	return out
}

// paramNames lists the variables a word refers to outside command
// substitutions.
func paramNames(w *syntax.Word) []string {
	var names []string
	syntax.Walk(w, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.CmdSubst, *syntax.ProcSubst:
			return false
		case *syntax.ParamExp:
			if n.Param != nil {
				names = append(names, n.Param.Value)
			}
		}
		return true
	})
	return names
}

// namesOnly are commands that may name dockerd without starting it:
// [ -x /usr/bin/dockerd ].
var namesOnly = map[string]bool{"[": true, "test": true, "echo": true, "printf": true}

// scriptEnv is the environment of an "sh -c" script: what the script
// set, then the unit's variables, then every other name answered with its
// own reference, "$NAME". IFS, which sh does not take from its
// environment, stays unset (the default), and so do the positional and
// special parameters.
type scriptEnv struct {
	shellEnv
	vars unitVar
}

func (e scriptEnv) Get(name string) shexpand.Variable {
	if v := e.shellEnv.Get(name); v.IsSet() || name == "IFS" || !isName(name) {
		return v
	}
	if e.vars != nil {
		if v, _, ok := e.vars(name); ok {
			return shexpand.Variable{Set: true, Kind: shexpand.String, Str: v}
		}
	}
	return shexpand.Variable{Set: true, Kind: shexpand.String, Str: "$" + name}
}
