package reliability

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/graphprobe/graphprobe/internal/testutil"
	"github.com/graphprobe/graphprobe/selector/daemonjson"
	"github.com/graphprobe/graphprobe/selector/state"
	"golang.org/x/sys/unix"
)

// killInitial is the daemon.json the kill test starts from: keys graphprobe
// must keep, a nested object, an escape, and a mode other than the default.
const killInitial = "{\n  \"debug\": true,\n  \"log-opts\": {\"max-size\": \"10m\"},\n  \"storage-driver\": \"vfs\",\n  \"labels\": [\"tier=db\", \"zone=\\u00e9\"]\n}\n"

// runTiming is what a calibration run of one configuration measured:
// its duration, and when (from the start) the first temporary file beside
// daemon.json appeared and the last rename there happened.
type runTiming struct {
	total, writeFrom, writeTo time.Duration
}

// timings are a configuration's calibration runs.
type timings []runTiming

// shortest is the calibration run that ended first: delays up to it kill
// nearly every run (a run that ends sooner is counted as completed).
func (ts timings) shortest() time.Duration {
	m := ts[0].total
	for _, t := range ts {
		m = min(m, t.total)
	}
	return m
}

// TestSIGKILLAtRandomMoments kills `select` with SIGKILL at random moments
// of runs that each change daemon.json (the driver toggles between vfs and
// overlay2; --bench alternates off and quick). Half of the delays are
// spread over the whole run (as long as the shortest calibration run), half
// over the window in which daemon.json, its backup and the report are
// written (measured first). After every
// kill: daemon.json is the old or the new content byte for byte, its
// backup and report are whole, the record of the proof (--state-dir) is
// absent, or whole and claims only a daemon.json that a finished run left
// on disk, and the test's mount table is unchanged.
// Then an unkilled run (--bench off, changing daemon.json again) must
// leave no temporary file and no scratch dir: the killed run's leftovers
// are gone. Runs go on until 200 were killed (about 290 runs and as many
// clean-up runs, under a minute on 2 cores); -short stops at 20.
func TestSIGKILLAtRandomMoments(t *testing.T) {
	h := newHost(t, testutil.Ext4, 256)
	writeFile(t, h.config, []byte(killInitial), 0o640)
	mountsBefore := mountsOf(t, h.mountRoots()...)
	// Made first so that the calibration watches the record's writes too.
	if err := os.Mkdir(h.state, 0o755); err != nil {
		t.Fatal(err)
	}

	drivers := []string{"vfs", "overlay2"}
	other := map[string]string{"vfs": "overlay2", "overlay2": "vfs"}
	benches := []string{"off", "quick"}

	// Calibration: each configuration twice, from the other driver, with
	// the config dir watched. It also records the exact bytes a run to
	// each driver writes.
	content := map[string][]byte{}
	timing := map[string]timings{}
	cur := "vfs"
	for round := 0; round < 2; round++ {
		for _, bench := range benches {
			for range drivers {
				target := other[cur]
				tm, r := timedRun(t, h, target, bench)
				if r.code != 0 {
					t.Fatalf("calibration run to %s (bench %s): %s", target, bench, r)
				}
				got := readFile(t, h.config)
				if want, ok := content[target]; ok && !bytes.Equal(got, want) {
					t.Fatalf("two runs to %s wrote different bytes:\n%q\n%q", target, want, got)
				}
				content[target] = got
				key := target + "/" + bench
				timing[key] = append(timing[key], tm)
				cur = target
			}
		}
	}
	for _, d := range drivers {
		if !strings.Contains(string(content[d]), `"storage-driver": "`+d+`"`) || !strings.Contains(string(content[d]), `"zone=\u00e9"`) {
			t.Fatalf("a run to %s wrote %q", d, content[d])
		}
	}
	for _, k := range slices.Sorted(mapsKeys(timing)) {
		for _, tm := range timing[k] {
			t.Logf("calibration %-14s run %v, daemon.json files written from %v to %v", k, tm.total.Round(time.Millisecond), tm.writeFrom.Round(100*time.Microsecond), tm.writeTo.Round(100*time.Microsecond))
		}
	}

	// Runs continue until n of them were SIGKILLed (a run may end before
	// its delay), at most 2n runs.
	n := 200
	if testing.Short() {
		n = 20
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var st struct {
		kills, completed, keptOld, gotNew, midWrite, tempsLeft, scratchKills, scratchLeft, recoveries int
		records                                                                                       map[string]int
	}
	st.records = map[string]int{}
	start := time.Now()
	runs := 0
	// The machine may be busier during calibration than after it: delays
	// shrink while runs end before an early delay, and grow back as kills
	// land, so the kills keep falling inside the runs.
	scale := 1.0
	for i := 0; st.kills < n && i < 2*n; i++ {
		runs++
		bench := benches[i%2]
		target := other[cur]
		old := readFile(t, h.config)
		ts := timing[target+"/"+bench]
		tm := ts[rng.IntN(len(ts))]
		var delay time.Duration
		early := rng.IntN(2) == 0
		if early {
			delay = time.Duration(rng.Int64N(int64(ts.shortest())))
		} else {
			from := max(tm.writeFrom-3*time.Millisecond, 0)
			delay = from + time.Duration(rng.Int64N(int64(tm.writeTo-from+3*time.Millisecond)))
		}
		delay = time.Duration(float64(delay) * scale)
		p := startGP(t, h.opts(), h.selectArgs("--driver", target, "--bench", bench, "--format", "json")...)
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
			syscall.Kill(-p.pid(), syscall.SIGKILL)
		case <-p.done:
			timer.Stop()
		}
		r := p.wait()
		now := readFile(t, h.config)
		// An early delay is shorter than any calibrated run: a run that
		// outlives it means the machine got faster.
		if early && r.signal == syscall.SIGKILL {
			scale = min(1, scale*1.02)
		} else if early {
			scale = max(0.05, scale*0.7)
		}
		switch {
		case r.signal == syscall.SIGKILL:
			st.kills++
			switch {
			case bytes.Equal(now, old):
				st.keptOld++
			case bytes.Equal(now, content[target]):
				st.gotNew++
			default:
				t.Fatalf("run %d (to %s, bench %s) killed after %v: daemon.json is neither the old nor the new content:\n%q", i, target, bench, delay, now)
			}
		case r.code == 0:
			st.completed++
			if !bytes.Equal(now, content[target]) {
				t.Fatalf("run %d completed, daemon.json is %q, want %q", i, now, content[target])
			}
			if got := checkRecord(t, h, i, old, now, target, content); got != "new" {
				t.Fatalf("run %d completed without recording its proof (record: %s)", i, got)
			}
		default:
			t.Fatalf("run %d (to %s, bench %s): %s", i, target, bench, r)
		}
		if _, err := daemonjson.Parse(h.config, now); err != nil {
			t.Fatalf("run %d: daemon.json does not parse: %v", i, err)
		}
		checkCompanions(t, h, i, content)
		if r.signal == syscall.SIGKILL {
			st.records[checkRecord(t, h, i, old, now, target, content)]++
		}
		if got := mountsOf(t, h.mountRoots()...); !slices.Equal(got, mountsBefore) {
			t.Fatalf("run %d killed after %v: mount table changed:\nbefore %q\nafter  %q", i, delay, mountsBefore, got)
		}
		temps := tempsIn(h.etc)
		if len(temps) > 0 {
			st.midWrite++
			st.tempsLeft += len(temps)
		}
		scratch := scratchIn(h.scratchDirs()...)
		if len(scratch) > 0 {
			st.scratchKills++
			st.scratchLeft += len(scratch)
		}

		// The next, unkilled run changes daemon.json again and must clean
		// up after the killed one.
		cur = "vfs"
		if bytes.Equal(now, content["overlay2"]) {
			cur = "overlay2"
		}
		next := other[cur]
		rr := runGP(t, h.opts(), h.selectArgs("--driver", next, "--bench", "off", "--format", "json")...)
		if rr.code != 0 {
			t.Fatalf("run after kill %d: %s", i, rr)
		}
		st.recoveries++
		if got := readFile(t, h.config); !bytes.Equal(got, content[next]) {
			t.Fatalf("run after kill %d wrote %q, want %q", i, got, content[next])
		}
		if left := tempsIn(h.state); len(left) > 0 {
			t.Fatalf("after the run that followed kill %d, temporary files are left beside the proof record: %q", i, left)
		}
		if left := tempsIn(h.etc); len(left) > 0 {
			t.Fatalf("after the run that followed kill %d, temporary files are left beside daemon.json: %q (the killed run left %q)", i, left, temps)
		}
		if left := scratchIn(h.scratchDirs()...); len(left) > 0 {
			t.Fatalf("after the run that followed kill %d, scratch dirs are left: %q (the killed run left %q)", i, left, scratch)
		}
		if got := mountsOf(t, h.mountRoots()...); !slices.Equal(got, mountsBefore) {
			t.Fatalf("run after kill %d: mount table changed:\nbefore %q\nafter  %q", i, mountsBefore, got)
		}
		cur = next
	}
	t.Logf("%d runs in %v (each followed by an unkilled run): %d SIGKILLed, %d completed before the kill",
		runs, time.Since(start).Round(time.Second), st.kills, st.completed)
	t.Logf("after a kill daemon.json was the old content %d times and the new content %d times; never anything else", st.keptOld, st.gotNew)
	t.Logf("%d kills landed mid-write (%d temporary files left beside daemon.json); %d kills left %d scratch dirs; the next run removed all of them (%d clean-up runs)",
		st.midWrite, st.tempsLeft, st.scratchKills, st.scratchLeft, st.recoveries)
	t.Logf("after a kill the proof record was gone %d times, the previous run's %d times, the killed run's (which had finished its proof and write) %d times; never torn, never claiming an unfinished proof",
		st.records["gone"], st.records["old"], st.records["new"])
	if st.kills < n {
		t.Errorf("only %d of %d runs were killed: the delays are longer than the runs", st.kills, runs)
	}
}

// checkCompanions checks the files graphprobe keeps beside daemon.json:
// the backup is a whole earlier daemon.json, the report is whole JSON.
func checkCompanions(t *testing.T, h *host, i int, content map[string][]byte) {
	t.Helper()
	if b, err := os.ReadFile(daemonjson.BackupPath(h.config)); err == nil {
		if !bytes.Equal(b, []byte(killInitial)) && !bytes.Equal(b, content["vfs"]) && !bytes.Equal(b, content["overlay2"]) {
			t.Fatalf("run %d: backup is not a whole earlier daemon.json: %q", i, b)
		}
	}
	if b, err := os.ReadFile(daemonjson.ReportPath(h.config)); err == nil && !json.Valid(b) {
		t.Fatalf("run %d: report is not whole JSON (%d bytes)", i, len(b))
	}
}

// checkRecord checks the proof record after run i, which went from the
// daemon.json old to now, aiming for target: there is none, or it is whole
// and trusted, names the driver, and claims the exact daemon.json bytes of
// the run before (old) or of this run once they are on disk (now). It
// returns "gone", "old" or "new".
func checkRecord(t *testing.T, h *host, i int, old, now []byte, target string, content map[string][]byte) string {
	t.Helper()
	rec, err := state.Load(h.state)
	if errors.Is(err, state.ErrNoRecord) {
		return "gone"
	}
	if err != nil {
		t.Fatalf("run %d: the proof record is not whole: %v", i, err)
	}
	claims := func(b []byte) bool {
		return rec.Inputs.ConfigSHA256 == state.HashBytes(b, true) && strings.Contains(string(b), `"storage-driver": "`+rec.Decision.Driver+`"`)
	}
	switch {
	case bytes.Equal(now, content[target]) && claims(now):
		if rec.Decision.Driver != target {
			t.Fatalf("run %d: record claims %s for the daemon.json of %s", i, rec.Decision.Driver, target)
		}
		return "new"
	case claims(old):
		return "old"
	}
	t.Fatalf("run %d: the proof record claims %s with daemon.json %s, which no finished run left (old %q, now %q)", i, rec.Decision.Driver, rec.Inputs.ConfigSHA256, old, now)
	return ""
}

// timedRun runs select to driver, watching the config dir, and returns
// when the daemon.json files were written.
func timedRun(t *testing.T, h *host, driver, bench string) (runTiming, result) {
	t.Helper()
	w := newWatcher(t)
	defer w.close()
	for _, d := range []string{h.etc, h.state} {
		if err := w.add(d, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
			t.Fatal(err)
		}
	}
	var events []fsEvent
	var werr error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			ev, ok, err := w.nextErr(5 * time.Millisecond)
			if err != nil {
				werr = err
				return
			}
			if ok {
				events = append(events, ev)
				continue
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	p := startGP(t, h.opts(), h.selectArgs("--driver", driver, "--bench", bench, "--format", "json")...)
	r := p.wait()
	close(stop)
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	tm := runTiming{total: r.dur}
	for _, ev := range events {
		at := ev.at.Sub(p.start)
		if tm.writeFrom == 0 || at < tm.writeFrom {
			tm.writeFrom = at
		}
		if at > tm.writeTo {
			tm.writeTo = at
		}
	}
	if len(events) == 0 && r.code == 0 {
		t.Fatalf("a run to %s changed nothing beside daemon.json", driver)
	}
	return tm, r
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestSIGKILLWithFuseDaemons kills `select --driver fuse-overlayfs --bench
// quick` at random moments. fuse-overlayfs mounts are served by daemon
// processes that graphprobe starts inside its mount namespace; they keep
// that namespace, its mounts and the data-root's filesystem busy for as
// long as they live. After each kill every such daemon must exit by
// itself (awaited through a pidfd, with a 30 s hang guard), and the next
// run must leave no scratch dir.
func TestSIGKILLWithFuseDaemons(t *testing.T) {
	testutil.RequiresTool(t, "fuse-overlayfs")
	h := newHost(t, testutil.Ext4, 256)
	writeFile(t, h.config, []byte(vfsConfig), 0o644)
	mountsBefore := mountsOf(t, h.mountRoots()...)
	calib := runGP(t, h.opts(), h.selectArgs("--driver", "fuse-overlayfs", "--bench", "quick", "--format", "json")...)
	if calib.code != 0 || parseSelect(t, calib).Driver != "fuse-overlayfs" {
		t.Fatalf("calibration run: %s", calib)
	}
	n := 30
	if testing.Short() {
		n = 6
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	var kills, daemonsSeen, daemonsLeft int
	var longestExit time.Duration
	for i := 0; i < n; i++ {
		if r := runGP(t, h.opts(), h.selectArgs("--driver", "vfs", "--bench", "off")...); r.code != 0 {
			t.Fatalf("run %d to vfs: %s", i, r)
		}
		if left := scratchIn(h.scratchDirs()...); len(left) > 0 {
			t.Fatalf("before run %d: scratch dirs left by the killed run were not removed: %q", i, left)
		}
		old := readFile(t, h.config)
		delay := time.Duration(rng.Int64N(int64(calib.dur)))
		p := startGP(t, h.opts(), h.selectArgs("--driver", "fuse-overlayfs", "--bench", "quick")...)
		timer := time.NewTimer(delay)
		var daemons []int
		select {
		case <-timer.C:
			// The daemons of this run, seen before the kill (they may be
			// between mounts at that very moment).
			daemons = processesMentioning(t, h.fs.Dir)
			syscall.Kill(-p.pid(), syscall.SIGKILL)
		case <-p.done:
			timer.Stop()
		}
		r := p.wait()
		if r.signal == syscall.SIGKILL {
			kills++
		}
		now := readFile(t, h.config)
		if !bytes.Equal(now, old) && !strings.Contains(string(now), `"storage-driver": "fuse-overlayfs"`) {
			t.Fatalf("run %d: daemon.json is neither old nor new: %q", i, now)
		}
		daemonsSeen += len(daemons)
		for _, pid := range append(daemons, processesMentioning(t, h.fs.Dir)...) {
			took, ok := awaitExit(t, pid, 30*time.Second)
			if !ok {
				daemonsLeft++
				t.Errorf("run %d killed after %v: process %d (%s) still runs 30 s later", i, delay, pid, cmdline(pid))
				syscall.Kill(pid, syscall.SIGKILL)
			}
			longestExit = max(longestExit, took)
		}
		if got := mountsOf(t, h.mountRoots()...); !slices.Equal(got, mountsBefore) {
			t.Fatalf("run %d: mount table changed:\nbefore %q\nafter  %q", i, mountsBefore, got)
		}
	}
	if r := runGP(t, h.opts(), h.selectArgs("--driver", "vfs", "--bench", "off")...); r.code != 0 {
		t.Fatalf("last run: %s", r)
	}
	if left := scratchIn(h.scratchDirs()...); len(left) > 0 {
		t.Errorf("scratch dirs left: %q", left)
	}
	t.Logf("%d runs, %d SIGKILLed; %d fuse-overlayfs daemons were running at a kill, %d outlived it (slowest exit %v)", n, kills, daemonsSeen, daemonsLeft, longestExit.Round(time.Millisecond))
}

// processesMentioning lists the processes whose command line holds s.
func processesMentioning(t *testing.T, s string) []int {
	t.Helper()
	es, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range es {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if c := cmdline(pid); strings.Contains(c, s) && !strings.Contains(c, "graphprobe select") {
			out = append(out, pid)
		}
	}
	return out
}

func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
}

// awaitExit waits for pid to end, through a pidfd (no polling of /proc).
func awaitExit(t *testing.T, pid int, limit time.Duration) (time.Duration, bool) {
	t.Helper()
	start := time.Now()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return 0, true
	}
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(limit.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("poll pidfd: %v", err)
		}
		return time.Since(start), n > 0
	}
}
