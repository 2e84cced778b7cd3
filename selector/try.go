package selector

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/graphprobe/graphprobe/drivers/bench"
	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
	"github.com/graphprobe/graphprobe/version"
)

// ProveOptions say how Prove initialises and measures.
type ProveOptions struct {
	// All initialises and benchmarks every driver of Drivers (default:
	// every eligible one), for bench and the fastest strategy; otherwise
	// the decision's driver is initialised, and on failure the next one,
	// as dockerd does, and only the one that works is benchmarked.
	All     bool
	Drivers []string
	// Mode is quick, full or off (initialise only).
	Mode   string
	Sizes  bench.Sizes
	Budget time.Duration
	// ConfiguredOpts are daemon.json's storage-opts: a driver is tried
	// with those that belong to it, as dockerd would run it.
	ConfiguredOpts []string
	LoadModules    bool
	Progress       io.Writer
	Exec           probe.ExecFunc
}

// Prove initialises (and benchmarks) the drivers a decision names on the
// live host and decides again on what failed: dockerd moves to the next
// driver when one fails to initialise, and so does Prove. A driver that
// fails only with a storage option the user set (daemon.json, policy) is
// an error: the option is what to fix, never a reason to switch drivers.
func Prove(ctx context.Context, d *Decision, o ProveOptions) (*Decision, *ProveResult, error) {
	in := d.in
	in.Failed = map[string]string{}
	for k, v := range d.in.Failed {
		in.Failed[k] = v
	}
	req := func(names []string, all bool) ProveRequest {
		mods := map[string]string{}
		for _, n := range names {
			if c := d.Candidate(n); c != nil && c.Module != "" {
				mods[n] = c.Module
			}
		}
		return ProveRequest{
			Drivers: names, All: all, Mode: o.Mode, Sizes: o.Sizes, Budget: o.Budget,
			StorageOpts: storageOptsFor(d, names, o.ConfiguredOpts), Modules: mods, LoadModules: o.LoadModules,
			WarnNoDType:   ReleaseFor(d.DockerVersion).DTypeWarnOnly,
			ScratchParent: d.host.DataRoot.ProbedPath, Progress: o.Progress, Exec: o.Exec,
		}
	}
	checkUserOpts := func(ir *InitResult) error {
		if ir == nil || ir.OK || ir.Skipped != "" {
			return nil
		}
		user := userStorageOpts(ir.Driver, o.ConfiguredOpts, in.StorageOpts, d.DockerVersion)
		if len(user) == 0 {
			return nil
		}
		base := req([]string{ir.Driver}, false)
		base.Mode = bench.Off
		base.StorageOpts = map[string][]string{ir.Driver: graphprobeOpts(d, ir.Driver)}
		p, err := Trial(ctx, base)
		if err != nil {
			return err
		}
		if again := p.Init(ir.Driver); again == nil || !again.OK {
			return nil
		}
		var named []string
		for _, u := range user {
			named = append(named, u.opt+" ("+u.from+")")
		}
		return fmt.Errorf("storage option %s is refused here: %s (%s initialises without it; fix or remove the option: graphprobe does not switch drivers because of an option that was asked for)", strings.Join(named, ", "), ir.Error, ir.Driver)
	}

	if o.All {
		names := o.Drivers
		if len(names) == 0 {
			names = d.Eligible()
		}
		p, err := Trial(ctx, req(names, true))
		if err != nil {
			return d, nil, err
		}
		for _, ir := range p.Inits {
			if err := checkUserOpts(&ir); err != nil {
				return d, nil, err
			}
			if !ir.OK && ir.Skipped == "" {
				in.Failed[ir.Driver] = ir.Error
			}
		}
		return Decide(d.host, d.DockerVersion, in), p, nil
	}

	var prove *ProveResult
	var warnings []string
	for d.Refusal == nil && d.Driver != "" {
		p, err := Trial(ctx, req([]string{d.Driver}, false))
		if err != nil {
			return d, nil, err
		}
		prove = mergeProve(prove, p)
		ir := p.Init(d.Driver)
		if ir == nil || ir.OK || ir.Skipped != "" {
			break
		}
		if err := checkUserOpts(ir); err != nil {
			return d, nil, err
		}
		in.Failed[d.Driver] = ir.Error
		if !ir.NotSupported {
			warnings = append(warnings, fmt.Sprintf("%s failed to initialise with an error that would stop dockerd (not a \"not supported\" error): %s", d.Driver, ir.Error))
		}
		d = Decide(d.host, d.DockerVersion, in)
		if in.Driver != "" {
			// --driver: that one or nothing.
			break
		}
	}
	if prove != nil {
		prove.Warnings = warnings
	}
	return d, prove, nil
}

func mergeProve(a, b *ProveResult) *ProveResult {
	if a == nil {
		return b
	}
	a.Inits = append(a.Inits, b.Inits...)
	for k, v := range b.Benchmarks {
		a.Benchmarks[k] = v
	}
	a.BenchLines = append(a.BenchLines, b.BenchLines...)
	return a
}

// storageOptsFor are the options each driver is initialised with: those
// daemon.json would hold if it were chosen (the existing ones that belong
// to it, the policy's, graphprobe's own), less override_kernel_check.
func storageOptsFor(d *Decision, names []string, existing []string) map[string][]string {
	out := map[string][]string{}
	for _, n := range names {
		if c := d.Candidate(n); c != nil {
			if opts := withoutKernelCheck(daemonjson.StorageOpts(existing, n, StorageRules(d.DockerVersion), c.StorageOpts).Opts); len(opts) > 0 {
				out[n] = opts
			}
		}
	}
	return out
}

// graphprobeOpts are the options graphprobe itself adds for a driver.
func graphprobeOpts(d *Decision, name string) []string {
	if c := d.Candidate(name); c != nil {
		return withoutKernelCheck(c.OwnOpts)
	}
	return nil
}

// withoutKernelCheck leaves out override_kernel_check, which is for old
// dockerd's kernel version check where graphprobe's drivers test.
func withoutKernelCheck(opts []string) []string {
	var out []string
	for _, o := range opts {
		if !strings.Contains(o, "override_kernel_check") {
			out = append(out, o)
		}
	}
	return out
}

type userOpt struct{ opt, from string }

// userStorageOpts are the options of a driver that the user set: in
// daemon.json, or in the policy.
func userStorageOpts(name string, existing []string, policyOpts map[string][]string, dv version.Docker) []userOpt {
	var out []userOpt
	for _, o := range daemonjson.StorageOpts(existing, name, StorageRules(dv), nil).Opts {
		out = append(out, userOpt{o, "daemon.json"})
	}
	for _, o := range policyOpts[name] {
		out = append(out, userOpt{o, "policy"})
	}
	return out
}
