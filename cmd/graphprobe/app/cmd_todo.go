package app

import (
	"context"
	"errors"
)

var errLater = errors.New("not available in this build yet")

func selectCommand() *command {
	return &command{name: "select", summary: "probe, decide, initialise and benchmark, then write daemon.json", run: func(context.Context, *env, []string) error { return errLater }}
}
func benchCommand() *command {
	return &command{name: "bench", summary: "initialise and benchmark drivers, report only", run: func(context.Context, *env, []string) error { return errLater }}
}
func captureCommand() *command {
	return &command{name: "capture", summary: "write this host's probe inputs as a fixture host", run: func(context.Context, *env, []string) error { return errLater }}
}
func matrixCommand() *command {
	return &command{name: "matrix", summary: "dry-run selection for captured hosts and Docker versions", run: func(context.Context, *env, []string) error { return errLater }}
}
