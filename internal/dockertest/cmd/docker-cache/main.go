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
	base := dockertest.DefaultCacheDir()
	if len(os.Args) > 2 || (len(os.Args) == 2 && (os.Args[1] == "-h" || os.Args[1] == "--help")) {
		fmt.Fprintf(os.Stderr, "usage: docker-cache [DIR]\n\nFills DIR (default $%s, else %s) with every engine release the end-to-end tests run, unpacked.\n", dockertest.CacheEnv, base)
		return 2
	}
	if len(os.Args) == 2 {
		base = os.Args[1]
	}
	code := 0
	for _, rel := range dockertest.Releases {
		c, err := dockertest.Fill(context.Background(), base, rel, os.Stderr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "docker-cache: %s: %v\n", rel.Name, err)
			code = 1
			continue
		}
		fmt.Printf("%s\t%s\n", c.Dir, c.Version)
	}
	return code
}
