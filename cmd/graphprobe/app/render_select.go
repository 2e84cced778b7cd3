package app

import (
	"fmt"
	"io"
	"strings"

	"github.com/graphprobe/graphprobe/drivers/bench"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector"
)

// renderSelectText is the report people read: the host in brief, every
// driver with its verdict and reason, the benchmark, the decision and the
// daemon.json diff.
func renderSelectText(w io.Writer, s *style, res *selector.Result, dryRun, benchLines bool) {
	r := res.Probe
	fmt.Fprintf(w, "%s\n", s.bold("Host"))
	fmt.Fprintf(w, "  kernel       %s\n", r.Kernel.Release)
	dt := r.Facts[probe.FactDType]
	fs := r.DataRoot.Filesystem
	if r.DataRoot.OnOverlay {
		fs += s.yellow(" (nested on overlayfs)")
	}
	fmt.Fprintf(w, "  data-root    %s on %s, d_type %s\n", r.DataRoot.Path, fs, triText(s, dt.Supported))
	prior := "none"
	if len(r.PriorDrivers) > 0 {
		prior = strings.Join(r.PriorDrivers, ", ")
	}
	fmt.Fprintf(w, "  prior state  %s\n", prior)
	fmt.Fprintf(w, "  docker       %s (%s)\n", res.DockerVersion, versionSource(res.DockerVersionSource))

	fmt.Fprintf(w, "%s\n", s.bold("Drivers"))
	for _, c := range res.Candidates {
		mark, verdict := "  ", s.red("rejected")
		if c.Eligible {
			verdict = s.green("eligible")
		}
		if c.Driver == res.GraphDriver {
			mark = s.green("▸ ")
		}
		extra := ""
		switch {
		case c.Initialized:
			extra = s.dim(" (initialised)")
		case c.InitError != "" && c.Eligible:
			extra = s.dim(" (not initialised)")
		}
		if c.Priority < 0 {
			extra += s.dim(" (not in this release)")
		}
		fmt.Fprintf(w, "  %s%-15s %s%s\n", mark, c.Driver, verdict, extra)
		for _, reason := range c.Reasons {
			fmt.Fprintf(w, "      %s\n", reason)
		}
		if !c.Eligible {
			for _, h := range c.Hints {
				fmt.Fprintf(w, "      %s %s\n", s.yellow("fix:"), h)
			}
		}
		for _, u := range c.Unverified {
			fmt.Fprintf(w, "      %s %s\n", s.yellow("unverified:"), u)
		}
		if c.InitError != "" && c.Eligible {
			fmt.Fprintf(w, "      %s\n", c.InitError)
		}
	}

	var benched []selector.Candidate
	for _, c := range res.Candidates {
		if c.Benchmark != nil {
			benched = append(benched, c)
		}
	}
	if len(benched) > 0 {
		fmt.Fprintf(w, "%s %s\n", s.bold("Benchmark"), s.dim("(median, spread = (max-min)/median)"))
		names := []string{}
		for _, r := range benched[0].Benchmark.Results {
			names = append(names, r.Name)
		}
		fmt.Fprintf(w, "  %-38s", "")
		for _, c := range benched {
			fmt.Fprintf(w, " %22s", c.Driver)
		}
		fmt.Fprintln(w)
		for _, n := range names {
			fmt.Fprintf(w, "  %-38s", n)
			for _, c := range benched {
				fmt.Fprintf(w, " %22s", resultText(c.Benchmark, n))
			}
			fmt.Fprintln(w)
		}
		for _, c := range benched {
			if c.Benchmark.Error != "" {
				fmt.Fprintf(w, "  %s %s: %s\n", s.red("stopped"), c.Driver, c.Benchmark.Error)
			}
			for _, note := range c.Benchmark.Notes {
				fmt.Fprintf(w, "  %s: %s\n", c.Driver, note)
			}
			if c.Benchmark.Score > 0 {
				fmt.Fprintf(w, "  %s score %.2f (1.00 = best on every measure)\n", c.Driver, c.Benchmark.Score)
			}
		}
		if len(res.Environment) > 0 {
			fmt.Fprintf(w, "  %s\n", s.dim(fmt.Sprintf("on %s, %s, kernel %s", res.Environment["probedPath"], res.Environment["backingFs"], res.Environment["kernel"])))
		}
	}

	fmt.Fprintf(w, "%s\n", s.bold("Decision"))
	switch {
	case res.Refused != nil:
		fmt.Fprintf(w, "  %s %s\n", s.red("refused:"), res.Refused.Message)
		if res.Refused.Hint != "" {
			fmt.Fprintf(w, "  %s %s\n", s.yellow("fix:"), res.Refused.Hint)
		}
	case res.DaemonJSON == nil:
		fmt.Fprintf(w, "  benchmark only; nothing decided or written\n")
	case res.Driver == "":
		fmt.Fprintf(w, "  %s %s\n", s.red("no usable storage driver:"), res.Reason)
	default:
		what := res.Driver
		if res.GraphDriver != res.Driver {
			what += " (the containerd snapshotter for " + res.GraphDriver + ")"
		}
		fmt.Fprintf(w, "  storage-driver %s, image store %s\n", s.green(what), res.ImageStore)
		fmt.Fprintf(w, "  %s\n", res.Reason)
		if len(res.StorageOpts) > 0 {
			fmt.Fprintf(w, "  storage-opts %s\n", strings.Join(res.StorageOpts, ", "))
		}
		for _, d := range res.DroppedOpts {
			fmt.Fprintf(w, "  dropped storage-opt %s: %s\n", d.Opt, d.Reason)
		}
	}
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "  %s %s\n", s.yellow("warning:"), warn)
	}
	if dj := res.DaemonJSON; dj != nil && res.Refused == nil && res.Driver != "" {
		fmt.Fprintf(w, "%s %s\n", s.bold("daemon.json"), dj.Path)
		switch {
		case !dj.Changed:
			fmt.Fprintf(w, "  already up to date; nothing written\n")
		case dryRun:
			fmt.Fprintf(w, "  dry run: this diff would be applied\n")
		case dj.Written:
			fmt.Fprintf(w, "  written")
			if dj.Backup != "" {
				fmt.Fprintf(w, "; previous content in %s", dj.Backup)
			}
			fmt.Fprintln(w)
			fmt.Fprintf(w, "  restart dockerd to apply it (a reload does not change the storage driver)\n")
		}
		if dj.Diff != "" {
			for _, line := range strings.Split(strings.TrimRight(dj.Diff, "\n"), "\n") {
				switch {
				case strings.HasPrefix(line, "+") && !strings.HasPrefix(line, "+++"):
					line = s.green(line)
				case strings.HasPrefix(line, "-") && !strings.HasPrefix(line, "---"):
					line = s.red(line)
				}
				fmt.Fprintf(w, "  %s\n", line)
			}
		}
	}
	if benchLines && len(res.BenchLines) > 0 {
		fmt.Fprintln(w)
		for _, l := range res.BenchLines {
			fmt.Fprintln(w, l)
		}
	}
}

func versionSource(src string) string {
	switch src {
	case "flag":
		return "from --docker-version"
	case "dockerd":
		return "dockerd --version"
	}
	return "no dockerd found: the newest release graphprobe knows"
}

func resultText(db *bench.Benchmark, name string) string {
	for _, r := range db.Results {
		if r.Name == name {
			return fmt.Sprintf("%s ±%.0f%%", humanValue(r.Median, r.Unit), r.Spread*100)
		}
	}
	return "-"
}

func humanValue(v float64, unit string) string {
	if strings.HasPrefix(unit, "ns/") {
		per := strings.TrimPrefix(unit, "ns")
		switch {
		case v >= 1e9:
			return fmt.Sprintf("%.2f s%s", v/1e9, per)
		case v >= 1e6:
			return fmt.Sprintf("%.2f ms%s", v/1e6, per)
		case v >= 1e3:
			return fmt.Sprintf("%.1f µs%s", v/1e3, per)
		}
		return fmt.Sprintf("%.0f ns%s", v, per)
	}
	if strings.HasPrefix(unit, "B/") {
		switch {
		case v >= 1<<20:
			return fmt.Sprintf("%.1f MiB%s", v/(1<<20), unit[1:])
		case v >= 1<<10:
			return fmt.Sprintf("%.1f KiB%s", v/(1<<10), unit[1:])
		}
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}
