package probe

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/graphprobe/graphprobe/version"
	"golang.org/x/sys/unix"
)

// TestFactRows checks what the rest of the probe relies on in the table.
func TestFactRows(t *testing.T) {
	seen := map[string]int{}
	for i := range factRows {
		row := &factRows[i]
		if _, dup := seen[row.name]; dup {
			t.Errorf("%s: two rows", row.name)
		}
		seen[row.name] = i
		if row.decide == nil {
			t.Errorf("%s: no decide", row.name)
		}
		if (row.live == nil) != (row.on == noLiveTest) {
			t.Errorf("%s: a live test must say where it runs, and only a live test", row.name)
		}
		if row.live != nil && row.minKernel.IsZero() {
			t.Errorf("%s: a live test without a minimum kernel cannot be checked on a newer one", row.name)
		}
		if row.param != "" && row.config == "" {
			t.Errorf("%s: module parameter %s without its kernel option", row.name, row.param)
		}
		if (row.backport == nil) != (row.backportNote == "") {
			t.Errorf("%s: a backport needs its note", row.name)
		}
		if row.config != "" && !strings.HasPrefix(row.config, "CONFIG_") {
			t.Errorf("%s: kernel option %q", row.name, row.config)
		}
	}
	for i := range factRows {
		row := &factRows[i]
		// The overlay features read the overlay fact: it is decided first.
		if strings.HasPrefix(row.name, FactOverlay+".") && seen[FactOverlay] > i {
			t.Errorf("%s comes before %s, whose verdict it reads", row.name, FactOverlay)
		}
		if row.settledBy != "" {
			j, ok := seen[row.settledBy]
			if !ok || factRows[j].live == nil {
				t.Errorf("%s: settled by %q, which has no live test", row.name, row.settledBy)
			}
		}
	}
}

func TestLiveOrder(t *testing.T) {
	var got, want []string
	for _, row := range liveOrder(factRows) {
		got = append(got, row.name)
	}
	for i := range factRows {
		if factRows[i].live != nil {
			want = append(want, factRows[i].name)
		}
	}
	pos := map[string]int{}
	for i, n := range got {
		pos[n] = i
	}
	for _, row := range liveOrder(factRows) {
		if row.settledBy != "" && pos[row.settledBy] > pos[row.name] {
			t.Errorf("%s runs before %s, which settles it", row.name, row.settledBy)
		}
	}
	if pos[FactMultiLowerdir] > pos[FactOverlay] {
		t.Errorf("order %v: the multi-lower test must run before the one-lower test", got)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("live tests %v, want each row with a test once: %v", got, want)
	}
}

// TestRunLiveStamps checks that a row names its fact and minimum kernel in
// a "no" of its test, unless the host's settings caused it, and leaves an
// inconclusive error alone.
func TestRunLiveStamps(t *testing.T) {
	inconclusive := errors.New("mkdir: no space left on device")
	tests := []struct {
		name     string
		result   error
		want     string
		kernelNo bool
	}{
		{"yes", nil, "", false},
		{"kernel lacks it", notSupported("mount: %s", "invalid argument"), "overlay.example not supported: mount: invalid argument (requires kernel 5.1 or later)", true},
		{"mount rejected", classifyMount(fmt.Errorf("mount overlay: %w", unix.EINVAL)), "overlay.example not supported: mount overlay: invalid argument (requires kernel 5.1 or later)", true},
		{"mount failed otherwise", classifyMount(fmt.Errorf("mount overlay: %w", unix.ENOSPC)), "mount overlay: no space left on device", false},
		{"host setting", notEnabled("metacopy is on by default"), "overlay.example not supported: metacopy is on by default", false},
		{"inconclusive", inconclusive, inconclusive.Error(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row := &factRow{name: "overlay.example", minKernel: version.K(5, 1), live: func(string, *liveEnv) error { return tt.result }, on: onTmpfs}
			err := row.runLive(t.TempDir(), &liveEnv{})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			var ue *UnsupportedError
			if got := errors.As(err, &ue) && ue.MinKernel != ""; got != tt.kernelNo {
				t.Errorf("a no of the kernel = %v, want %v", got, tt.kernelNo)
			}
		})
	}
}

// TestFixtureFactNames checks that a probe reports every fact of the table
// and no other, on a captured host and on an empty tree.
func TestFixtureFactNames(t *testing.T) {
	for _, dir := range []string{"../testdata/hosts/centos-7.9", writeTree(t, map[string]string{"proc/": ""})} {
		r := runFixture(t, dir)
		var got []string
		for n := range r.Facts {
			got = append(got, n)
		}
		want := FactNames()
		sort.Strings(got)
		sort.Strings(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: facts %v, want %v", dir, got, want)
		}
	}
}
