// Command benchcmd times whole commands: it runs each one N times and
// prints the median wall time, the spread and the peak resident memory, as
// Go benchmark lines (benchstat reads them) followed by a readable table.
//
//	benchcmd -n 11 -name probe-live -- graphprobe probe --format json
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 11, "runs")
	name := flag.String("name", "", "benchmark name")
	okCodes := flag.String("ok", "0", "exit codes that count as success (comma-separated)")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 || *name == "" {
		fmt.Fprintln(os.Stderr, "usage: benchcmd -name NAME [-n N] -- COMMAND [ARGS...]")
		os.Exit(2)
	}
	allowed := map[int]bool{}
	for _, c := range splitInts(*okCodes) {
		allowed[c] = true
	}
	var walls []time.Duration
	var peak int64
	for i := 0; i < *n; i++ {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = nil, nil
		start := time.Now()
		err := cmd.Run()
		wall := time.Since(start)
		if cmd.ProcessState == nil || (!allowed[cmd.ProcessState.ExitCode()] && err != nil) {
			fmt.Fprintf(os.Stderr, "benchcmd %s: %v\n", *name, err)
			os.Exit(1)
		}
		walls = append(walls, wall)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > peak {
			peak = ru.Maxrss // KiB on Linux
		}
	}
	sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
	med := walls[len(walls)/2]
	for _, w := range walls {
		fmt.Printf("BenchmarkCommand/%s 1 %d ns/op %d peak-KiB\n", *name, w.Nanoseconds(), peak)
	}
	fmt.Printf("# %-28s median %9.2f ms  min %9.2f ms  max %9.2f ms  peak RSS %6.1f MiB  (%d runs)\n",
		*name, ms(med), ms(walls[0]), ms(walls[len(walls)-1]), float64(peak)/1024, len(walls))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func splitInts(s string) []int {
	var out []int
	cur, have := 0, false
	for _, c := range s + "," {
		if c >= '0' && c <= '9' {
			cur, have = cur*10+int(c-'0'), true
			continue
		}
		if have {
			out = append(out, cur)
		}
		cur, have = 0, false
	}
	return out
}
