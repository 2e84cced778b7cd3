// Package gentables writes what is not Go from graphprobe's two tables
// (drivers.Info and selector's release table): the driver names, snapshotter
// names and Docker releases (and the CLI's output formats) in the shell
// completions and the man page. The
// files stay hand-written around marked blocks, which only this package
// writes; a test fails when a block is stale, so a new driver or release
// cannot miss them.
//
// Regenerate with:
//
//	go generate ./internal/gentables
package gentables

//go:generate go run ../tools/gentables -root ../..
