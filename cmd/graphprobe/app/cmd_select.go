package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/graphprobe/graphprobe/drivers"
	_ "github.com/graphprobe/graphprobe/drivers/all" // every driver graphprobe can initialise
	"github.com/graphprobe/graphprobe/drivers/bench"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector"
	"github.com/graphprobe/graphprobe/selector/lock"
	"github.com/graphprobe/graphprobe/selector/policy"
	"github.com/graphprobe/graphprobe/selector/state"
	"github.com/graphprobe/graphprobe/version"
)

const selectUsage = `Usage: graphprobe select [FLAGS]

Probe the host, decide which storage driver the target Docker release will
accept and run best, initialise and benchmark it in a scratch area of the
data-root (all mounts in a private mount namespace, removed afterwards),
then merge the result into daemon.json: only storage-driver and storage-opts
(and features.containerd-snapshotter where needed) change, atomically, with
a backup. A rerun that finds nothing to change writes nothing.

Flags:
  --dry-run                 decide and show the daemon.json diff, write nothing
  --driver NAME             check and use this driver, or fail saying why not
  --policy FILE             YAML policy: priority, exclude, strategy, benchmark
                            sizes and weights, storage-opts per driver
  --bench quick|full|off    benchmark depth (default quick; full prints lines
                            that benchstat reads)
  --strategy priority|fastest
                            Docker's order (default), or the fastest eligible
                            driver when it beats the first by more than the
                            measured spread
  --image-store graphdriver|containerd|default
                            the image store on Docker 24+ (default: as the
                            release and the policy decide; the flag wins over
                            the policy); --driver means what is typed:
                            overlay2 is graph-driver mode, overlayfs the
                            containerd store
  --force                   allow switching away from a driver that holds
                            images (nothing is deleted; they are hidden)
  --no-load-modules         never modprobe a driver's module (dockerd would);
                            such a driver is then decided on availability
  --lock-file FILE          serialise runs on this lock (default ` + lock.DefaultPath + `)
  --lock-timeout DURATION   how long to wait for another run, with a unit:
                            30s, 2m (default 60s)
  --state-dir DIR           where the record of what a run proved is kept, so
                            that a rerun finding nothing changed skips the
                            proof (default ` + state.DefaultDir + `)
  --benchstat FILE          also write the benchmark lines to FILE
` + commonUsage + `
Exit codes: 0 written, already up to date, or dry run; 1 runtime error
(nothing written); 2 usage error; 3 no usable driver; 4 refused for safety
(prior driver data would be hidden, several prior drivers, or a dockerd flag
also sets the driver).

Examples:
  graphprobe select --dry-run
  graphprobe select --docker-version 20.10.24 --format json
  graphprobe select --driver overlay2 --bench off
  graphprobe select --strategy fastest --bench full --benchstat /tmp/bench.txt
  graphprobe select --root-prefix testdata/hosts/centos-7.9 --docker-version 17.03 --dry-run
`

const benchUsage = `Usage: graphprobe bench [DRIVER...] [FLAGS]

Initialise and benchmark the named drivers (default: every eligible one) in
a scratch area of the data-root, interleaved round-robin, and report median,
spread and units. Writes nothing.

Flags:
  --bench quick|full        depth (default full)
  --policy FILE             benchmark sizes and weights
  --no-load-modules         never modprobe a driver's module
  --benchstat FILE          also write the benchmark lines to FILE
` + commonUsage + `
Examples:
  graphprobe bench
  graphprobe bench overlay2 vfs --bench quick
  graphprobe bench --format json | jq '.candidates[] | {driver, benchmark}'
  graphprobe bench --benchstat new.txt && benchstat old.txt new.txt
`

func selectCommand() *command {
	return &command{name: "select", summary: "probe, decide, initialise and benchmark, then write daemon.json", usage: selectUsage,
		run: func(ctx context.Context, e *env, args []string) error { return runSelect(ctx, e, args, false) }}
}

func benchCommand() *command {
	return &command{name: "bench", summary: "initialise and benchmark drivers, report only", usage: benchUsage,
		run: func(ctx context.Context, e *env, args []string) error { return runSelect(ctx, e, args, true) }}
}

func runSelect(ctx context.Context, e *env, args []string, benchOnly bool) error {
	name := "select"
	if benchOnly {
		name = "bench"
	}
	fs := newFlagSet(name)
	c := addCommon(fs)
	var dryRun, force, noLoad bool
	var driver, policyPath, lockFile, benchstat, stateDir string
	var lockTimeout time.Duration
	benchDefault := bench.Quick
	if benchOnly {
		benchDefault = bench.Full
	}
	benchMode := newEnum(fs.FlagSet, "bench", benchDefault, "", bench.Quick, bench.Full, bench.Off)
	strategy := newEnum(fs.FlagSet, "strategy", "", "", string(policy.StrategyPriority), string(policy.StrategyFastest))
	imageStore := newEnum(fs.FlagSet, "image-store", "", "", string(policy.ImageStoreGraphDriver), string(policy.ImageStoreContainerd), "default")
	fs.StringVar(&policyPath, "policy", "", "")
	fs.BoolVar(&noLoad, "no-load-modules", false, "")
	fs.StringVar(&benchstat, "benchstat", "", "")
	if !benchOnly {
		fs.BoolVar(&dryRun, "dry-run", false, "")
		fs.BoolVar(&force, "force", false, "")
		fs.StringVar(&driver, "driver", "", "")
		fs.StringVar(&lockFile, "lock-file", lock.DefaultPath, "")
		lockTimeout = 60 * time.Second
		fs.Var(durationValue{&lockTimeout}, "lock-timeout", "")
		fs.StringVar(&stateDir, "state-dir", state.DefaultDir, "")
	}
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if !benchOnly {
		if err := noPositional(name, pos); err != nil {
			return err
		}
	}
	if benchOnly && *benchMode == bench.Off {
		return usageErrorf("bench: --bench off benchmarks nothing")
	}
	var benchDrivers []string
	for _, d := range pos {
		if !contains(knownDrivers(), d) {
			return usageErrorf("%s: unknown driver %q (known: %s)", name, d, strings.Join(knownDrivers(), ", "))
		}
		benchDrivers = append(benchDrivers, d)
	}
	if driver != "" && !contains(knownDrivers(), selector.GraphDriverFor(driver)) {
		return usageErrorf("select: --driver %q: unknown driver (known: %s)", driver, strings.Join(knownDrivers(), ", "))
	}
	if driver != "" {
		snapshotter := selector.GraphDriverFor(driver) != driver
		switch {
		case *imageStore == string(policy.ImageStoreContainerd) && !snapshotter && selector.Snapshotter(driver) != "":
			return usageErrorf("select: --driver %s is a graph driver; with --image-store containerd name its snapshotter: --driver %s", driver, selector.Snapshotter(driver))
		case *imageStore == string(policy.ImageStoreContainerd) && !snapshotter:
			return usageErrorf("select: --driver %s has no containerd snapshotter; drop --image-store containerd", driver)
		case *imageStore == string(policy.ImageStoreGraphDriver) && snapshotter:
			return usageErrorf("select: --driver %s is a containerd snapshotter; with --image-store graphdriver use --driver %s", driver, selector.GraphDriverFor(driver))
		}
	}
	var dv version.Docker
	if c.dockerVersion != "" {
		if dv, err = selector.ParseDockerVersion(c.dockerVersion); err != nil {
			return usageErrorf("--docker-version: %v", err)
		}
	}

	var pol *policy.Policy
	if policyPath != "" {
		if pol, err = policy.Load(policyPath); err != nil {
			return withCode(ExitRuntime, err)
		}
	}
	live := c.rootPrefix == ""
	if live && os.Geteuid() != 0 {
		what := "mount test layers in a scratch area of the data-root and to write " + c.configPath()
		if benchOnly {
			what = "mount test layers in a scratch area of the data-root"
		}
		return withCode(ExitRuntime, fmt.Errorf("%s needs root to %s; rerun as root (nothing was changed)", name, what))
	}

	// One run at a time on a host: a second waits, saying who holds it.
	if live && !benchOnly {
		l, err := lock.Acquire(ctx, lockFile, lock.Options{Timeout: lockTimeout, OnWait: func(pid int) {
			fmt.Fprintf(e.stderr, "graphprobe: waiting up to %s for another graphprobe run (pid %d) holding %s\n", lockTimeout, pid, lockFile)
		}})
		if err != nil {
			return withCode(ExitRuntime, err)
		}
		defer l.Release()
	}

	h, err := loadHost(c.rootPrefix, c.configPath(), c.dataRoot)
	if err != nil {
		return err
	}
	flags, err := h.dockerFlags()
	if err != nil {
		return err
	}
	cfgFile, doc, dataRoot := h.configFile, h.config, h.probeOpts.DataRoot
	// A rerun that finds what an earlier run proved unchanged decides on
	// its record, without initialising or benchmarking (selector/state).
	started := time.Now()
	var proof *proofRun
	if live && !benchOnly {
		proof = newProofRun(stateDir, cfgFile, dataRoot, fullProofFlag(fs, force), proofInputs(c, driver, policyPath, *strategy, *imageStore, noLoad))
	}
	var progress io.Writer
	if f, ok := e.stderr.(*os.File); ok && isTerminal(f) && *benchMode != bench.Off {
		progress = &progressWriter{w: f}
	}
	decide := func() (*selector.Result, error) {
		r := proof.report(started)
		if r == nil {
			var err error
			if r, err = h.probe(ctx, false); err != nil {
				return nil, err
			}
		}
		source := "flag"
		if c.dockerVersion == "" {
			var err error
			if dv, source, err = engineVersion(r, live); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		return selector.Run(ctx, selector.Request{
			Report: r, RootPrefix: c.rootPrefix, ConfigFile: cfgFile, Config: doc, Flags: flags,
			DockerVersion: dv, DockerVersionSource: source, Policy: pol,
			Driver: driver, Force: force, DryRun: dryRun || proof.reusing(), Bench: *benchMode, Strategy: *strategy,
			LoadModules: !noLoad, BenchOnly: benchOnly, BenchDrivers: benchDrivers,
			Progress: progress, Exec: probe.RunCommand, Proven: proof.reusing(), ImageStore: *imageStore,
		})
	}
	var res *selector.Result
	if proof.reusing() {
		res, err = decide()
		if !proof.confirm(res, err) {
			res = nil
		}
	}
	if res == nil {
		if !dryRun {
			proof.forget()
		}
		res, err = decide()
		if err == nil && !dryRun {
			proof.save(res, cfgFile)
		}
	}
	if p, ok := progress.(*progressWriter); ok {
		p.done()
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return withCode(signalled(ctx), fmt.Errorf("%s interrupted: every mount and scratch dir was removed, daemon.json is untouched", name))
		}
		return withCode(ExitRuntime, err)
	}
	var nothingRan error
	if benchOnly && live {
		nothingRan = benchShortfall(res, benchDrivers)
	}
	if benchstat != "" && len(res.BenchLines) > 0 {
		if err := os.WriteFile(benchstat, []byte(strings.Join(res.BenchLines, "\n")+"\n"), 0o644); err != nil {
			return withCode(ExitRuntime, fmt.Errorf("write benchmark lines: %w", err))
		}
	}
	out := any(res)
	if proof != nil {
		out = selectOutput{Result: res, Proof: &proof.status}
	}
	if err := writeDoc(e.stdout, *c.format, out, func(w io.Writer, s *style) {
		renderSelectText(w, s, res, dryRun, *benchMode == bench.Full)
		renderProofText(w, s, proof)
	}); err != nil {
		return err
	}
	switch out := res.Outcome(); {
	case nothingRan != nil:
		return withCode(ExitNoDriver, nothingRan)
	case out == nil:
		return nil
	case errors.Is(out, selector.ErrRefused):
		return withCode(ExitRefused, out)
	default:
		return withCode(ExitNoDriver, out)
	}
}

func knownDrivers() []string { return drivers.Names() }

// benchShortfall adds a warning for every driver that bench was asked for
// (by name, or every eligible one) but could not benchmark, saying why, and
// returns an error when none of them was benchmarked: a run that measured
// nothing must not look like a success to a script.
func benchShortfall(res *selector.Result, named []string) error {
	asked := named
	if len(asked) == 0 {
		for _, c := range res.Candidates {
			if c.Eligible {
				asked = append(asked, c.Driver)
			}
		}
	}
	var missing []string
	ran := 0
	for _, name := range asked {
		var c *selector.Candidate
		for i := range res.Candidates {
			if res.Candidates[i].Driver == name {
				c = &res.Candidates[i]
			}
		}
		if c != nil && c.Benchmark != nil {
			ran++
			continue
		}
		why := "it was not initialised"
		switch {
		case c == nil:
			why = "it is unknown"
		case !c.Eligible && len(c.Reasons) > 0:
			why = strings.Join(c.Reasons, "; ")
		case c.InitError != "":
			why = c.InitError
		}
		missing = append(missing, name+": "+why)
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s was not benchmarked: %s", name, why))
	}
	if ran > 0 {
		return nil
	}
	if len(asked) == 0 {
		return errors.New("bench: no storage driver can run on this host, so nothing was benchmarked")
	}
	return fmt.Errorf("bench: nothing was benchmarked, no driver named could run here (%s)", strings.Join(missing, "; "))
}

// progressWriter keeps one status line on a terminal.
type progressWriter struct {
	w    *os.File
	last int
}

func (p *progressWriter) Write(b []byte) (int, error) {
	line := strings.TrimRight(string(b), "\n")
	pad := ""
	if n := p.last - len(line); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.last = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	return len(b), nil
}

func (p *progressWriter) done() {
	if p.last > 0 {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.last))
	}
}

// engineVersion is the Docker release to decide for when --docker-version
// is not given: dockerd's own, or the newest release graphprobe knows when
// no dockerd is installed (provisioning before Docker). A dockerd that is
// installed but did not tell its version (too slow at boot, broken) is an
// error, not the newest release: a newer release's choice (the containerd
// snapshotter "overlayfs" for 29) stops an older dockerd from starting.
func engineVersion(r *probe.Report, live bool) (version.Docker, string, error) {
	d := r.Docker
	if d.Version != "" {
		if v, err := selector.ParseDockerVersion(d.Version); err == nil {
			return v, "dockerd", nil
		}
	}
	if live && d.Binary != "" {
		why := "no version in its output"
		for _, w := range r.Warnings {
			if strings.HasPrefix(w, d.Binary+" --version") || strings.HasPrefix(w, "parse docker version") {
				why = w
				break
			}
		}
		return version.Docker{}, "", fmt.Errorf("read the version of %s: %s; pass --docker-version (its release, e.g. 20.10) so that the decision fits it; nothing was changed", d.Binary, why)
	}
	return selector.NewestKnown, "newest-known", nil
}
