package app

import (
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/probe"
	"github.com/graphprobe/graphprobe/selector"
	"github.com/graphprobe/graphprobe/version"
)

// A dockerd that is installed but whose version could not be read must not
// be decided for as the newest release: on a booting Debian 12 host (dockerd
// 20.10, `--version` timing out) that wrote "overlayfs", and dockerd then
// refused to start.
func TestEngineVersion(t *testing.T) {
	for _, tc := range []struct {
		name       string
		docker     probe.Docker
		warnings   []string
		live       bool
		want       version.Docker
		wantSource string
		wantErr    string
	}{
		{name: "dockerd answered", live: true,
			docker: probe.Docker{Binary: "/usr/sbin/dockerd", Version: "20.10.24"},
			want:   version.Docker{Major: 20, Minor: 10, Patch: 24}, wantSource: "dockerd"},
		{name: "no dockerd", live: true,
			want: selector.NewestKnown, wantSource: "newest-known"},
		{name: "dockerd timed out", live: true,
			docker:   probe.Docker{Binary: "/usr/sbin/dockerd"},
			warnings: []string{"/usr/sbin/dockerd --version: signal: killed"},
			wantErr:  "read the version of /usr/sbin/dockerd: /usr/sbin/dockerd --version: signal: killed; pass --docker-version"},
		{name: "dockerd printed garbage", live: true,
			docker:   probe.Docker{Binary: "/usr/sbin/dockerd"},
			warnings: []string{`parse docker version: unexpected output "Segmentation fault"`},
			wantErr:  `read the version of /usr/sbin/dockerd: parse docker version: unexpected output "Segmentation fault"; pass`},
		{name: "captured host without a version", live: false,
			docker: probe.Docker{Binary: "/usr/bin/dockerd"},
			want:   selector.NewestKnown, wantSource: "newest-known"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &probe.Report{Docker: tc.docker, Warnings: tc.warnings}
			got, source, err := engineVersion(r, tc.live)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || source != tc.wantSource {
				t.Errorf("got %v from %s, want %v from %s", got, source, tc.want, tc.wantSource)
			}
		})
	}
}
