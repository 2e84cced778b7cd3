package main

import (
	"context"
	"fmt"
	"os"

	"github.com/graphprobe/graphprobe/internal/dockertest"
)

func main() {
	os.Exit(run())
}

func run() int {
	dir := dockertest.DefaultCacheDir()
	if len(os.Args) > 2 || (len(os.Args) == 2 && (os.Args[1] == "-h" || os.Args[1] == "--help")) {
		fmt.Fprintf(os.Stderr, "usage: docker-cache [DIR]\n\nFills DIR (default $%s, else %s) with Debian's %v, unpacked.\n", dockertest.CacheEnv, dir, dockertest.Packages)
		return 2
	}
	if len(os.Args) == 2 {
		dir = os.Args[1]
	}
	c, err := dockertest.Fill(context.Background(), dir, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "docker-cache: %v\n", err)
		return 1
	}
	fmt.Printf("%s\t%s\n", c.Dir, c.Version)
	return 0
}
