package app

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/graphprobe/graphprobe/internal/testutil"
	"github.com/graphprobe/graphprobe/selector/state"
)

// proofHost is a live select setup whose every path is the test's: a
// data-root, daemon.json, lock, state dir and a dockerd on PATH that only
// prints its version.
type proofHost struct {
	dataRoot, config, lock, stateDir, bin string
}

func newProofHost(t *testing.T) *proofHost {
	t.Helper()
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	h := &proofHost{dataRoot: filepath.Join(dir, "docker"), config: filepath.Join(dir, "etc", "daemon.json"),
		lock: filepath.Join(dir, "lock"), stateDir: filepath.Join(dir, "state"), bin: filepath.Join(dir, "bin")}
	os.MkdirAll(h.bin, 0o755)
	h.dockerd(t, "20.10.24")
	t.Setenv("PATH", h.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return h
}

// dockerd installs a new dockerd binary (a new file, as a package upgrade
// renames one into place).
func (h *proofHost) dockerd(t *testing.T, version string) {
	t.Helper()
	tmp := filepath.Join(h.bin, ".dockerd.new")
	if err := os.WriteFile(tmp, []byte("#!/bin/sh\necho 'Docker version "+version+", build 0000000'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(h.bin, "dockerd")); err != nil {
		t.Fatal(err)
	}
}

type proofDoc struct {
	DockerVersion string `json:"dockerVersion"`
	Driver        string `json:"driver"`
	Candidates    []struct {
		Driver      string `json:"driver"`
		Initialized bool   `json:"initialized"`
	} `json:"candidates"`
	DaemonJSON struct {
		Written bool `json:"written"`
	} `json:"daemonJSON"`
	Probe struct {
		PriorDrivers []string `json:"priorDrivers"`
	} `json:"probe"`
	Proof *struct {
		Record   string `json:"record"`
		Reused   bool   `json:"reused"`
		ProvenAt string `json:"provenAt"`
		Reason   string `json:"reason"`
		Saved    bool   `json:"saved"`
		Error    string `json:"error"`
	} `json:"proof"`
}

func (h *proofHost) run(t *testing.T, extra ...string) proofDoc {
	t.Helper()
	args := append([]string{"select", "--format", "json", "--data-root", h.dataRoot, "--config", h.config,
		"--lock-file", h.lock, "--state-dir", h.stateDir}, extra...)
	out, errOut, code := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("select %s: exit %d: %s", strings.Join(extra, " "), code, errOut)
	}
	validate(t, loadSchema(t, "select.schema.json"), out)
	var doc proofDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Proof == nil {
		t.Fatalf("select %s: no proof object", strings.Join(extra, " "))
	}
	return doc
}

func (d proofDoc) initialized(driver string) bool {
	for _, c := range d.Candidates {
		if c.Driver == driver {
			return c.Initialized
		}
	}
	return false
}

// reused runs select and checks that it decided on the record.
func (h *proofHost) reused(t *testing.T, why string) proofDoc {
	t.Helper()
	d := h.run(t)
	if !d.Proof.Reused || !strings.Contains(d.Proof.Reason, "nothing changed") || d.initialized(d.Driver) || d.DaemonJSON.Written {
		t.Fatalf("%s: want the record reused, got %+v, initialised %v, written %v", why, *d.Proof, d.initialized(d.Driver), d.DaemonJSON.Written)
	}
	return d
}

// full runs select and checks that it proved in full, for the reason
// named, and recorded the new proof.
func (h *proofHost) full(t *testing.T, why, reasonHas string, extra ...string) proofDoc {
	t.Helper()
	d := h.run(t, extra...)
	if d.Proof.Reused || !strings.Contains(d.Proof.Reason, reasonHas) || !d.initialized(d.Driver) {
		t.Fatalf("%s: want a full proof because of %q, got %+v (initialised %v)", why, reasonHas, *d.Proof, d.initialized(d.Driver))
	}
	if !d.Proof.Saved {
		t.Fatalf("%s: the full proof was not recorded: %+v", why, *d.Proof)
	}
	return d
}

// rewrite changes the record through its own encoding, as another host,
// kernel or graphprobe would have written it.
func (h *proofHost) rewrite(t *testing.T, change func(r *state.Record)) {
	t.Helper()
	r, err := state.Load(h.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	change(r)
	if err := state.Save(h.stateDir, r); err != nil {
		t.Fatal(err)
	}
}

func (h *proofHost) record(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(state.Path(h.stateDir))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProofRecord walks a host through what must and must not make a
// rerun prove again.
func TestProofRecord(t *testing.T) {
	h := newProofHost(t)

	// A dry run on a fresh host proves but records nothing.
	d := h.run(t, "--dry-run")
	if d.Proof.Reused || d.Proof.Saved {
		t.Fatalf("first dry run: %+v", *d.Proof)
	}
	if _, err := os.Lstat(state.Path(h.stateDir)); err == nil {
		t.Fatal("a dry run wrote a record")
	}

	d = h.full(t, "first run", "no earlier proof")
	if !d.DaemonJSON.Written || d.Driver == "" || d.DockerVersion != "20.10.24" {
		t.Fatalf("first run: %+v", d)
	}
	h.reused(t, "rerun")
	rec := h.record(t)
	if d := h.run(t, "--dry-run"); !d.Proof.Reused {
		t.Fatalf("a dry run may read the record: %+v", *d.Proof)
	}
	if !bytes.Equal(rec, h.record(t)) {
		t.Fatal("a reused proof rewrote the record")
	}

	// dockerd's first start makes the data-root and fills overlay2/: the
	// decision on the record is the same, so it stands.
	os.MkdirAll(filepath.Join(h.dataRoot, d.Driver, "l"), 0o700)
	if d := h.reused(t, "prior state of the chosen driver"); len(d.Probe.PriorDrivers) != 1 {
		t.Fatalf("prior drivers not observed afresh: %v", d.Probe.PriorDrivers)
	}

	h.full(t, "explicit --bench", "--bench given", "--bench", "quick")
	h.full(t, "--force", "--force given", "--force")
	h.reused(t, "after the forced proof")

	cfg, _ := os.ReadFile(h.config)
	os.WriteFile(h.config, bytes.Replace(cfg, []byte("{"), []byte("{\n  \"debug\": true,"), 1), 0o644)
	h.full(t, "daemon.json edited by hand", "changed since the proof")
	h.reused(t, "after the edit was proven")

	h.dockerd(t, "24.0.9")
	if d := h.full(t, "Docker upgraded", "dockerd"); d.DockerVersion != "24.0.9" {
		t.Fatalf("docker version %s after the upgrade", d.DockerVersion)
	}
	h.reused(t, "after the upgrade was proven")

	for _, tc := range []struct {
		name, reason string
		change       func(r *state.Record)
	}{
		{"kernel upgraded", "kernel", func(r *state.Record) { r.Host.KernelRelease = "5.10.0-28-amd64" }},
		{"graphprobe upgraded", "graphprobe changed", func(r *state.Record) { r.Host.Graphprobe.Version = "0.9.0" }},
		{"record from a cloned image", "machine-id", func(r *state.Record) { r.Host.MachineID = "00000000000000000000000000000001" }},
		{"filesystem reformatted", "data-root", func(r *state.Record) { r.Host.DataRoot.FSID = "0000000000000001" }},
	} {
		h.rewrite(t, tc.change)
		h.full(t, tc.name, tc.reason)
		h.reused(t, "after "+tc.name)
	}

	// A record that cannot be trusted is ignored, and replaced.
	good := h.record(t)
	for _, tc := range []struct {
		name, reason string
		spoil        func()
	}{
		{"truncated", "corrupt", func() { os.WriteFile(state.Path(h.stateDir), good[:len(good)-40], 0o644) }},
		{"corrupted", "sha256", func() {
			b := bytes.Replace(good, []byte(`"overlay2"`), []byte(`"overlay3"`), 1)
			os.WriteFile(state.Path(h.stateDir), b, 0o644)
		}},
		{"a symlink", "symlink", func() {
			other := filepath.Join(t.TempDir(), "record.json")
			os.WriteFile(other, good, 0o644)
			os.Remove(state.Path(h.stateDir))
			os.Symlink(other, state.Path(h.stateDir))
		}},
		{"owned by another user", "belongs to uid", func() {
			os.WriteFile(state.Path(h.stateDir), good, 0o644)
			os.Chown(state.Path(h.stateDir), 4321, 4321)
		}},
	} {
		tc.spoil()
		h.full(t, "record "+tc.name, tc.reason)
		if fi, err := os.Lstat(state.Path(h.stateDir)); err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("record %s: not replaced by a regular file: %v", tc.name, err)
		}
		h.reused(t, "after the "+tc.name+" record was replaced")
	}

	// The data-root's filesystem changes under the same path.
	if err := unix.Mount("tmpfs", h.dataRoot, "tmpfs", 0, "size=64m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(h.dataRoot, unix.MNT_DETACH) })
	h.full(t, "data-root now on tmpfs", "data-root")
	h.reused(t, "after tmpfs was proven")
}
