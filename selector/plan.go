package selector

import (
	"fmt"
	"slices"
	"strings"

	"github.com/graphprobe/graphprobe/drivers"
	"github.com/graphprobe/graphprobe/drivers/bench"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
	"github.com/graphprobe/graphprobe/selector/dockerflags"
	"github.com/graphprobe/graphprobe/selector/policy"
	"github.com/graphprobe/graphprobe/version"
)

// PolicyInputs turns a policy and --image-store into decision inputs.
// The policy's priority list means "only these, in this order": the
// drivers it leaves out become exclusions, whereas Inputs.Priority alone
// lets the rest of dockerd's order follow. imageStore is --image-store:
// "" leaves the choice to the policy, "default" to the release, and
// "graphdriver" or "containerd" win over the policy.
func PolicyInputs(pol *policy.Policy, dv version.Docker, imageStore string) Inputs {
	if pol == nil {
		pol = &policy.Policy{}
	}
	in := Inputs{StorageOpts: pol.StorageOpts, ImageStore: pol.ImageStore}
	switch imageStore {
	case "":
	case "default":
		in.ImageStore = policy.ImageStoreDefault
	default:
		in.ImageStore = policy.ImageStore(imageStore)
	}
	if len(pol.Priority) > 0 || len(pol.Exclude) > 0 {
		order := pol.Order(ReleaseFor(dv).Priority)
		in.Priority = order
		for _, n := range drivers.Names() {
			if !slices.Contains(order, n) {
				in.Exclude = append(in.Exclude, n)
			}
		}
	}
	return in
}

// Write is the daemon.json change a decision asks for.
type Write struct {
	Change daemonjson.Change
	// Opts are the storage-opts daemon.json holds afterwards: the user's
	// that still belong to the driver, then the decision's; Dropped are
	// the user's that do not.
	Opts    []string
	Dropped []daemonjson.DroppedOpt
	// LeaveAlone: dockerd's command line already sets the driver and
	// nothing else is to be written, so daemon.json stays as it is (dockerd
	// refuses the same key in both places).
	LeaveAlone bool
}

// plan checks the choice against what dockerd's command line and
// environment set, and works out the daemon.json change. dockerd refuses
// to start with storage-driver or storage-opts both on its command line
// and in daemon.json, and DOCKER_DRIVER overrides daemon.json: each is a
// refusal known without initialising anything.
func (d *Decision) plan(in Inputs) {
	if d.Driver == "" || d.Refusal != nil {
		return
	}
	d.choiceReason = d.Reason
	var env *dockerflags.Finding
	var conflicts []dockerflags.Finding
	for i, f := range in.Flags {
		if f.Key == dockerflags.DriverEnv {
			env = &in.Flags[i]
		}
		if f.Conflicts() {
			conflicts = append(conflicts, f)
		}
	}
	if env != nil && env.Value != d.StorageDriver && env.Value != d.Driver {
		d.liftable = d.FromOrder && d.eligible(env.Value)
		d.Refusal = &Refusal{Kind: "flag-conflict",
			Message: fmt.Sprintf("%s sets DOCKER_DRIVER=%s for dockerd, which overrides daemon.json's storage-driver", where(*env), env.Value),
			Hint:    "remove DOCKER_DRIVER from the docker unit's environment, then rerun"}
		d.Driver, d.StorageDriver, d.FromOrder = "", "", false
		return
	}

	opts := daemonjson.StorageOpts(in.Configured.StorageOpts, d.StorageDriver, StorageRules(d.DockerVersion), d.StorageOpts)
	w := &Write{Opts: opts.Opts, Dropped: opts.Dropped, Change: daemonjson.Change{Driver: d.StorageDriver, Opts: opts.Opts}}
	if v := d.SetContainerdSnapshotter; v != nil {
		w.Change.Snapshotter = daemonjson.SnapshotterOff
		if *v {
			w.Change.Snapshotter = daemonjson.SnapshotterOn
		}
	}
	d.Write = w
	if len(conflicts) == 0 {
		return
	}
	// dockerd accepts a -s flag only when daemon.json says nothing of the
	// storage: fine when the flag already names the decided driver.
	sameKey, same := true, true
	for _, f := range conflicts {
		if f.Key != dockerflags.StorageDriver {
			sameKey = false
		}
		if f.Value != d.StorageDriver && f.Value != d.Driver {
			same = false
		}
	}
	clean := !in.Configured.HasStorageDriver
	if sameKey && same && clean && len(w.Opts) == 0 {
		w.LeaveAlone = true
		d.Reason += fmt.Sprintf("; already set by %s, so daemon.json is left alone", where(conflicts[0]))
		return
	}
	var locs []string
	for _, f := range conflicts {
		locs = append(locs, fmt.Sprintf("%s (%s %s)", where(f), f.Flag, f.Value))
	}
	d.liftable = d.FromOrder && sameKey && clean && d.eligibleAll(conflicts)
	d.Refusal = &Refusal{Kind: "flag-conflict",
		Message: "dockerd also gets storage settings from its command line: " + strings.Join(locs, "; ") + "; with storage-driver or storage-opts in daemon.json too, dockerd refuses to start",
		Hint:    flagConflictHint(conflicts)}
	d.Driver, d.StorageDriver, d.FromOrder = "", "", false
}

// eligible reports whether a storage-driver value names an eligible
// driver other than the one chosen.
func (d *Decision) eligible(value string) bool {
	c := d.Candidate(GraphDriverFor(value))
	return c != nil && c.Eligible && c.Driver != d.Driver
}

// eligibleAll reports whether storage-driver flags all name one eligible
// driver other than the one chosen.
func (d *Decision) eligibleAll(fs []dockerflags.Finding) bool {
	for _, f := range fs {
		if !d.eligible(f.Value) || GraphDriverFor(f.Value) != GraphDriverFor(fs[0].Value) {
			return false
		}
	}
	return true
}

// NeedsProof reports whether initialising and benchmarking can still
// change the outcome under the strategy: not after a refusal that no
// other choice lifts, nor when no driver is left.
func (d *Decision) NeedsProof(strategy string) bool {
	if d.Refusal != nil {
		return strategy == string(policy.StrategyFastest) && d.liftable
	}
	return d.Driver != ""
}

// Choose applies the strategy to a decision made on proven drivers: with
// the fastest strategy, a driver chosen by the priority order gives way to
// one that is faster by more than the measured spread. The result is a
// new decision, refusals and daemon.json change included.
func Choose(d *Decision, strategy string, benchmarks map[string]*bench.Benchmark, weights map[string]float64) (*Decision, error) {
	if strategy != string(policy.StrategyFastest) || !(d.FromOrder || d.liftable) {
		return d, nil
	}
	name, why := ChooseFastest(d.Order, benchmarks, weights)
	if name == "" {
		return d, nil
	}
	if c := d.Candidate(name); c == nil || !c.Eligible {
		return nil, fmt.Errorf("choose %s: not eligible", name)
	}
	in := d.in
	in.pick = &pick{driver: name, reason: "fastest strategy: " + why}
	if name == d.Driver {
		in.pick.reason = d.choiceReason + "; fastest strategy: " + why
	}
	return Decide(d.host, d.DockerVersion, in), nil
}

// Applied is the daemon.json a decision produces, not yet written.
type Applied struct {
	Content []byte
	Changed bool
	// Diff is the unified diff of the change ("" when unchanged).
	Diff string
}

// Apply merges the decision's change into daemon.json (doc is the parsed
// file, nil when there is none) without writing anything.
func Apply(d *Decision, f *daemonjson.File, doc *daemonjson.Document) (*Applied, error) {
	if d.Write == nil {
		return &Applied{}, nil
	}
	var orig []byte
	if f.Exists {
		orig = f.Content
	}
	var a Applied
	var err error
	if doc != nil {
		a.Content, a.Changed, err = doc.Merge(d.Write.Change)
	} else {
		a.Content, a.Changed, err = daemonjson.Merge(orig, d.Write.Change)
	}
	if err != nil {
		return nil, err
	}
	if a.Changed {
		a.Diff = daemonjson.Diff(f.Path, orig, a.Content)
	}
	return &a, nil
}

func where(f dockerflags.Finding) string {
	s := fmt.Sprintf("%s:%d", f.File, f.Line)
	if f.Via != "" {
		s += " (via " + f.Via + ")"
	}
	return s
}
