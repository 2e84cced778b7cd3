// Command graphprobe decides which Docker storage driver a Linux host should
// use, proves it works, and configures it.
package main

import (
	"os"

	"github.com/graphprobe/graphprobe/cmd/graphprobe/app"
)

func main() { os.Exit(app.Run(os.Args[1:], os.Stdout, os.Stderr)) }
