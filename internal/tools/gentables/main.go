// Command gentables regenerates the blocks of the completions and the man
// page that come from graphprobe's driver and release tables (package
// internal/gentables); run through go generate.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/graphprobe/graphprobe/internal/gentables"
)

func main() {
	root := flag.String("root", ".", "the repository root")
	flag.Parse()
	changed, err := gentables.Write(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gentables:", err)
		os.Exit(1)
	}
	for _, p := range changed {
		fmt.Println("gentables: wrote", p)
	}
}
