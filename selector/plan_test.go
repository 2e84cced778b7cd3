package selector

import (
	"slices"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/drivers/bench"
	"github.com/graphprobe/graphprobe/selector/dockerflags"
	"github.com/graphprobe/graphprobe/selector/policy"
	"github.com/graphprobe/graphprobe/version"
)

func flagS(v string) dockerflags.Finding {
	return dockerflags.Finding{Key: dockerflags.StorageDriver, Flag: "-s", Value: v, File: "/lib/systemd/system/docker.service", Line: 6}
}

func envDriver(v string) dockerflags.Finding {
	return dockerflags.Finding{Key: dockerflags.DriverEnv, Flag: "DOCKER_DRIVER", Value: v, File: "/etc/systemd/system/docker.service.d/env.conf", Line: 2}
}

// TestDecideFlags: what dockerd's command line and environment set is part
// of the decision: a refusal, or daemon.json left alone.
func TestDecideFlags(t *testing.T) {
	optFlag := dockerflags.Finding{Key: dockerflags.StorageOpts, Flag: "--storage-opt", Value: "overlay2.size=10G", File: "/etc/default/docker", Line: 1, Via: "$DOCKER_OPTS in ExecStart at /lib/systemd/system/docker.service:11"}
	tests := []struct {
		name       string
		docker     string
		in         Inputs
		refusal    string // substring of the refusal's message, "" for none
		write      bool   // a daemon.json change is planned
		leaveAlone bool
		storage    string
	}{
		{name: "no flags", docker: "20.10.24", write: true, storage: "overlay2"},
		// Without daemon.json, a flag naming the decided driver is all
		// dockerd needs.
		{name: "no daemon.json, -s overlay2", docker: "20.10.24", in: Inputs{Flags: []dockerflags.Finding{flagS("overlay2")}}, write: true, leaveAlone: true, storage: "overlay2"},
		{name: "29, -s overlay2 over the overlayfs snapshotter", docker: "29.0.0", in: Inputs{Flags: []dockerflags.Finding{flagS("overlay2")}}, write: true, leaveAlone: true, storage: "overlayfs"},
		{name: "daemon.json has storage-driver, -s overlay2", docker: "20.10.24", in: Inputs{Configured: Configured{StorageDriver: "overlay2", HasStorageDriver: true}, Flags: []dockerflags.Finding{flagS("overlay2")}}, refusal: "-s overlay2", write: true},
		{name: "daemon.json has an empty storage-driver, -s overlay2", docker: "20.10.24", in: Inputs{Configured: Configured{HasStorageDriver: true}, Flags: []dockerflags.Finding{flagS("overlay2")}}, refusal: "dockerd refuses to start", write: true},
		{name: "-s names another driver", docker: "20.10.24", in: Inputs{Flags: []dockerflags.Finding{flagS("vfs")}}, refusal: "-s vfs", write: true},
		{name: "--storage-opt", docker: "20.10.24", in: Inputs{Flags: []dockerflags.Finding{flagS("overlay2"), optFlag}}, refusal: "--storage-opt overlay2.size=10G", write: true},
		{name: "DOCKER_DRIVER names another driver", docker: "20.10.24", in: Inputs{Flags: []dockerflags.Finding{envDriver("vfs")}}, refusal: "DOCKER_DRIVER=vfs"},
		{name: "DOCKER_DRIVER names the decided driver", docker: "20.10.24", in: Inputs{Flags: []dockerflags.Finding{envDriver("overlay2")}}, write: true, storage: "overlay2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(modernExt4.report(), version.MustDocker(tt.docker), tt.in)
			if tt.refusal != "" {
				if d.Refusal == nil || d.Refusal.Kind != "flag-conflict" || !strings.Contains(d.Refusal.Message, tt.refusal) {
					t.Fatalf("refusal %+v, want a flag-conflict naming %q", d.Refusal, tt.refusal)
				}
				if d.Driver != "" || d.StorageDriver != "" {
					t.Errorf("driver %q (%q) with a refusal", d.Driver, d.StorageDriver)
				}
				if d.NeedsProof(string(policy.StrategyPriority)) {
					t.Error("a refusal over dockerd's flags still asks for a proof")
				}
			} else if d.Refusal != nil {
				t.Fatalf("refusal %+v", d.Refusal)
			}
			if (d.Write != nil) != tt.write {
				t.Fatalf("write %+v, want one: %v", d.Write, tt.write)
			}
			if d.Write == nil {
				return
			}
			if d.Write.LeaveAlone != tt.leaveAlone {
				t.Errorf("leave alone %v, want %v (reason %q)", d.Write.LeaveAlone, tt.leaveAlone, d.Reason)
			}
			if tt.leaveAlone && !strings.Contains(d.Reason, "already set by /lib/systemd/system/docker.service:6") {
				t.Errorf("reason %q does not name the flag", d.Reason)
			}
			if tt.storage != "" && (d.StorageDriver != tt.storage || d.Write.Change.Driver != tt.storage) {
				t.Errorf("storage-driver %q, change %q, want %q", d.StorageDriver, d.Write.Change.Driver, tt.storage)
			}
		})
	}
}

// TestChoose: the fastest strategy decides again on its pick, refusals and
// daemon.json change included, and a flag refusal that the pick could lift
// is left to the proof.
func TestChoose(t *testing.T) {
	slow := map[string]float64{}
	for k, v := range overlay2Figures {
		slow[k] = v * 10
	}
	benchmarks := map[string]*bench.Benchmark{"overlay2": benchmark(slow), "fuse-overlayfs": benchmark(overlay2Figures)}
	fastest := string(policy.StrategyFastest)
	for _, tt := range []struct {
		name      string
		flags     []dockerflags.Finding
		proof     bool   // NeedsProof before proving, under fastest
		refusal   bool   // after Choose
		storage   string // after Choose
		reasonHas string
	}{
		{name: "no flags", proof: true, storage: "fuse-overlayfs", reasonHas: "fastest strategy: faster than overlay2"},
		{name: "flag names the fastest", flags: []dockerflags.Finding{flagS("fuse-overlayfs")}, proof: true, storage: "fuse-overlayfs", reasonHas: "already set by"},
		{name: "flag names the first in order", flags: []dockerflags.Finding{flagS("overlay2")}, proof: true, refusal: true},
		{name: "flag names a driver that cannot run", flags: []dockerflags.Finding{flagS("btrfs")}, proof: false, refusal: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(modernExt4.report(), version.MustDocker("20.10.24"), Inputs{Flags: tt.flags})
			if got := d.NeedsProof(fastest); got != tt.proof {
				t.Fatalf("NeedsProof(fastest) = %v, want %v (refusal %+v)", got, tt.proof, d.Refusal)
			}
			c, err := Choose(d, fastest, benchmarks, nil)
			if err != nil {
				t.Fatal(err)
			}
			if (c.Refusal != nil) != tt.refusal {
				t.Fatalf("refusal %+v, want one: %v (driver %q, %s)", c.Refusal, tt.refusal, c.Driver, c.Reason)
			}
			if tt.refusal {
				return
			}
			if c.StorageDriver != tt.storage || c.Write == nil || c.Write.Change.Driver != tt.storage {
				t.Errorf("storage-driver %q, write %+v, want %q", c.StorageDriver, c.Write, tt.storage)
			}
			if !strings.Contains(c.Reason, tt.reasonHas) {
				t.Errorf("reason %q, want it to mention %q", c.Reason, tt.reasonHas)
			}
		})
	}
	// The priority strategy leaves the decision as it is.
	d := Decide(modernExt4.report(), version.MustDocker("20.10.24"), Inputs{})
	if c, err := Choose(d, string(policy.StrategyPriority), benchmarks, nil); err != nil || c.Driver != "overlay2" {
		t.Errorf("priority: %q, %v", c.Driver, err)
	}
}

// TestPolicyInputs: the policy's priority list means "only these": the
// drivers it leaves out are excluded; --image-store wins over the policy.
func TestPolicyInputs(t *testing.T) {
	pol := &policy.Policy{Priority: []string{"vfs"}, ImageStore: policy.ImageStoreContainerd}
	in := PolicyInputs(pol, version.MustDocker("29.0.0"), "")
	if strings.Join(in.Priority, ",") != "vfs" || !slices.Contains(in.Exclude, "overlay2") || slices.Contains(in.Exclude, "vfs") {
		t.Errorf("priority %q exclude %q", in.Priority, in.Exclude)
	}
	if in.ImageStore != policy.ImageStoreContainerd {
		t.Errorf("image store %q", in.ImageStore)
	}
	if in := PolicyInputs(pol, version.MustDocker("29.0.0"), "default"); in.ImageStore != policy.ImageStoreDefault {
		t.Errorf("--image-store default: %q", in.ImageStore)
	}
	if in := PolicyInputs(pol, version.MustDocker("29.0.0"), "graphdriver"); in.ImageStore != policy.ImageStoreGraphDriver {
		t.Errorf("--image-store graphdriver: %q", in.ImageStore)
	}
	d := Decide(modernExt4.report(), version.MustDocker("29.0.0"), in)
	if d.Driver != "vfs" {
		t.Errorf("policy priority vfs: decided %q (%s)", d.Driver, d.Reason)
	}
}
