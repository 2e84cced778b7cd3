package app

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
	"github.com/graphprobe/graphprobe/selector/state"
)

// proofStatus is the "proof" object of the select document: whether this
// run reused what an earlier run proved, and whether it recorded its own.
type proofStatus struct {
	Record string `json:"record"`
	// Reused is true when nothing changed since ProvenAt: the driver was
	// not initialised or benchmarked again.
	Reused   bool   `json:"reused"`
	ProvenAt string `json:"provenAt,omitempty"`
	// Reason says why the record was reused, or why the run proved in full.
	Reason string `json:"reason"`
	Saved  bool   `json:"saved"`
	// Error is why the record could not be written (the run still succeeded).
	Error string `json:"error,omitempty"`
}

// selectOutput is the select document with the proof status.
type selectOutput struct {
	*selector.Result
	Proof *proofStatus `json:"proof,omitempty"`
}

// proofRun is one select run's use of the proof record (selector/state).
type proofRun struct {
	dir    string
	inputs state.Inputs
	obs    state.Observation
	obsOK  bool
	rec    *state.Record // reusable; nil when the run proves in full
	status proofStatus
}

// newProofRun looks for a record that still holds. why is non-empty when
// the caller's flags rule reuse out (--force, an explicit --bench).
func newProofRun(dir string, cfg *daemonjson.File, dataRoot, why string, in state.Inputs) *proofRun {
	p := &proofRun{dir: dir, inputs: in, status: proofStatus{Record: state.Path(dir)}}
	if dataRoot == "" {
		dataRoot = probe.DefaultDataRoot
	}
	p.inputs.Config = cfg.Target
	p.inputs.ConfigSHA256 = state.HashBytes(cfg.Content, cfg.Exists)
	obs, err := state.Observe(state.ObserveOptions{DataRoot: dataRoot})
	if err != nil {
		p.status.Reason = "cannot observe the host cheaply: " + err.Error()
		return p
	}
	p.obs, p.obsOK = obs, true
	if why != "" {
		p.status.Reason = why
		return p
	}
	rec, err := state.Load(dir)
	switch {
	case err == state.ErrNoRecord:
		p.status.Reason = "no earlier proof on record"
		return p
	case err != nil:
		p.status.Reason = "record not trusted: " + err.Error()
		return p
	}
	if d := rec.Difference(obs, p.inputs); d != "" {
		p.status.Reason = "changed since the proof of " + rec.ProvenAt.Format(time.RFC3339) + ": " + d
		return p
	}
	p.rec = rec
	return p
}

// report is the recorded probe with what the cheap probe saw afresh, or
// nil when the run must probe in full.
func (p *proofRun) report(started time.Time) *probe.Report {
	if p == nil || p.rec == nil {
		return nil
	}
	r := *p.rec.Report
	r.DataRoot.Exists = p.obs.Exists
	r.DataRoot.ProbedPath = p.obs.ProbedPath
	if p.obs.InodesTotal > 0 {
		r.DataRoot.InodesTotal, r.DataRoot.InodesFree = p.obs.InodesTotal, p.obs.InodesFree
	}
	r.PriorDrivers = append([]string{}, p.obs.Prior...)
	r.Docker.Running = p.obs.DockerRunning
	r.DurationMillis = float64(time.Since(started).Microseconds()) / 1000
	return &r
}

func (p *proofRun) reusing() bool { return p != nil && p.rec != nil }

// confirm checks the decision made on the recorded report: the same
// choice, nothing to write. Otherwise the run proves in full.
func (p *proofRun) confirm(res *selector.Result, err error) bool {
	switch {
	case err != nil:
		p.status.Reason = "deciding on the record failed (" + err.Error() + ")"
	case res.Outcome() != nil || res.DaemonJSON == nil:
		p.status.Reason = "the decision on the record is no longer a choice: " + res.Reason
	case !state.DecisionOf(res).SameChoice(p.rec.Decision):
		p.status.Reason = fmt.Sprintf("the prior state changed the decision (%s → %s)", p.rec.Decision.Driver, res.Driver)
	case res.DaemonJSON.Changed:
		p.status.Reason = "daemon.json would change"
	default:
		p.status.Reused = true
		p.status.ProvenAt = p.rec.ProvenAt.Format(time.RFC3339)
		p.status.Reason = "proven on " + p.rec.ProvenAt.Format("2006-01-02 15:04 MST") + ", nothing changed"
		return true
	}
	p.rec = nil
	return false
}

// forget drops the record before a full proof that may write: if that
// proof now fails or decides otherwise, no record of the old one may
// remain to be reused.
func (p *proofRun) forget() {
	if p != nil && !p.reusing() {
		_ = state.Remove(p.dir)
	}
}

// save records a full proof that initialised the chosen driver and whose
// daemon.json is written (or already was).
func (p *proofRun) save(res *selector.Result, cfg *daemonjson.File) {
	if p == nil || p.status.Reused || !p.obsOK || res.Outcome() != nil || res.Refused != nil || res.Driver == "" {
		return
	}
	initialized := false
	for _, c := range res.Candidates {
		if c.Driver == res.GraphDriver && c.Initialized {
			initialized = true
		}
	}
	if !initialized {
		return
	}
	in := p.inputs
	in.Config = cfg.Target
	in.ConfigSHA256 = state.HashBytes(cfg.Content, cfg.Exists)
	rec := &state.Record{SchemaVersion: state.SchemaVersion, ProvenAt: time.Now().UTC().Truncate(time.Second),
		Host: p.obs, Inputs: in, Decision: state.DecisionOf(res), Report: res.Probe}
	if err := state.Save(p.dir, rec); err != nil {
		p.status.Error = err.Error()
		return
	}
	p.status.Saved = true
}

// policyInput names the policy and hashes its bytes.
func policyInput(path string) (string, string) {
	if path == "" {
		return "", ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return abs, "unreadable"
	}
	return abs, state.HashBytes(data, true)
}

// renderProofText is the proof line of the text report.
func renderProofText(w io.Writer, s *style, p *proofRun) {
	if p == nil {
		return
	}
	st := p.status
	fmt.Fprintf(w, "%s\n", s.bold("Proof"))
	switch {
	case st.Reused:
		fmt.Fprintf(w, "  %s: the driver was not initialised or benchmarked again\n", s.green(st.Reason))
		fmt.Fprintf(w, "  %s\n", s.dim("(record "+st.Record+"; --force or --bench proves it again)"))
	case st.Saved:
		fmt.Fprintf(w, "  proved in full (%s); recorded in %s\n", st.Reason, st.Record)
	case st.Error != "":
		fmt.Fprintf(w, "  proved in full (%s); %s %s\n", st.Reason, s.yellow("not recorded:"), st.Error)
	default:
		fmt.Fprintf(w, "  proved in full (%s); nothing recorded\n", st.Reason)
	}
}

// fullProofFlag says which flag asks for a full proof ("" when none):
// --force, or --bench given explicitly (the default quick benchmark is
// what a reused proof stands for).
func fullProofFlag(fs *flagSet, force bool) string {
	if force {
		return "--force given"
	}
	why := ""
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "bench" {
			why = "--bench given"
		}
	})
	return why
}

// proofInputs are the flags that shape a decision; the daemon.json part
// is filled in from the file.
func proofInputs(c *commonFlags, driver, policyPath, strategy string, noLoad bool) state.Inputs {
	in := state.Inputs{DockerVersion: c.dockerVersion, Driver: driver, Strategy: strategy, NoLoadModules: noLoad}
	in.Policy, in.PolicySHA256 = policyInput(policyPath)
	return in
}
