// Package app is graphprobe's command line: flags in, calls to probe and
// selector, rendered documents out. Every exit code is decided by exitCode.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string
	run     func(ctx context.Context, e *env, args []string) error
}

// env is what a command gets: its writers, and the environment to consult.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

func commands() []*command {
	return []*command{
		probeCommand(),
		selectCommand(),
		benchCommand(),
		driversCommand(),
		captureCommand(),
		matrixCommand(),
		versionCommand(),
	}
}

// Run is the whole program: it returns the exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signalContext()
	defer stop()
	e := &env{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	err := run(ctx, e, args)
	code := exitCode(err)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "graphprobe: %v\n", err)
	}
	if errors.Is(err, flag.ErrHelp) {
		code = ExitOK
	}
	if sig := signalled(ctx); sig != 0 {
		code = sig
	}
	return code
}

func run(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		printUsage(e.stderr)
		return usageErrorf("no command given")
	}
	name := args[0]
	switch name {
	case "-h", "--help", "help":
		if len(args) > 1 {
			for _, c := range commands() {
				if c.name == args[1] {
					fmt.Fprint(e.stdout, c.usage)
					return nil
				}
			}
		}
		printUsage(e.stdout)
		return nil
	case "--version", "-v":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name {
			err := c.run(ctx, e, args[1:])
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(e.stdout, c.usage)
			}
			return err
		}
	}
	printUsage(e.stderr)
	return usageErrorf("unknown command %q", name)
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "graphprobe decides which Docker storage driver this host should use, proves it works, and configures it.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: graphprobe COMMAND [FLAGS]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	cs := commands()
	sort.SliceStable(cs, func(i, j int) bool { return false })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'graphprobe COMMAND --help' for a command's flags and examples.")
	fmt.Fprintln(w, "Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 no usable driver, 4 refused for safety.")
}

// signalContext cancels on SIGINT and SIGTERM and remembers which came, so
// that cleanup runs and the exit code says 130 or 143.
type sigKey struct{}

func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	got := new(int)
	ctx = context.WithValue(ctx, sigKey{}, got)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			if s == syscall.SIGINT {
				*got = ExitSIGINT
			} else {
				*got = ExitSIGTERM
			}
			cancel()
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel()
	}
}

func signalled(ctx context.Context) int {
	if p, ok := ctx.Value(sigKey{}).(*int); ok && ctx.Err() != nil {
		return *p
	}
	return 0
}

// commonFlags are the flags every host-reading command takes.
type commonFlags struct {
	format        *string
	dataRoot      string
	config        string
	rootPrefix    string
	dockerVersion string
}

func addCommon(fs *flagSet) *commonFlags {
	c := &commonFlags{}
	c.format = newFormatFlag(fs.FlagSet)
	fs.Var(absPathValue{&c.dataRoot}, "data-root", "Docker's data root (default: data-root from the daemon.json in use, else /var/lib/docker)")
	fs.StringVar(&c.config, "config", "", "the daemon.json to read and write (default /etc/docker/daemon.json)")
	fs.StringVar(&c.rootPrefix, "root-prefix", "", "read a captured fixture host instead of the live system")
	fs.StringVar(&c.dockerVersion, "docker-version", "", "the Docker engine the result is for (default: dockerd --version, else the newest known)")
	return c
}

const commonUsage = `Common flags:
  --format text|json|yaml   output format on stdout (default text)
  --data-root DIR           Docker's data root (default: data-root from the
                            daemon.json in use, else /var/lib/docker)
  --config FILE             the daemon.json to read and write
                            (default /etc/docker/daemon.json)
  --root-prefix DIR         read a captured fixture host instead of this one
  --docker-version V        the Docker engine the result is for (default:
                            dockerd --version, else the newest known)
`

func noPositional(name string, pos []string) error {
	if len(pos) > 0 {
		return usageErrorf("%s: unexpected argument %q", name, strings.Join(pos, " "))
	}
	return nil
}
