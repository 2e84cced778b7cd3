package probe

import (
	"bufio"
	"io"
	"sort"
	"strings"
)

// modprobeDirs are where modprobe reads module options, lowest precedence
// first: a file in /etc overrides one of the same name in /run or /lib.
var modprobeDirs = []string{"/lib/modprobe.d", "/usr/lib/modprobe.d", "/run/modprobe.d", "/etc/modprobe.d"}

// ParseModprobeOptions returns the options modprobe passes to module from
// modprobe.d lines ("options overlay redirect_dir=Y metacopy=on"); a later
// line wins over an earlier one, as the kernel applies them in order.
func ParseModprobeOptions(r io.Reader, module string) map[string]string {
	opts := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "options" || normModule(f[1]) != normModule(module) {
			continue
		}
		for _, kv := range f[2:] {
			if strings.HasPrefix(kv, "#") {
				break
			}
			if k, v, ok := strings.Cut(kv, "="); ok {
				opts[k] = v
			} else {
				opts[kv] = "Y"
			}
		}
	}
	return opts
}

// ParseCmdlineParams returns the module.param=value words of a kernel
// command line for module. modprobe passes them when it loads the module,
// after (and so over) the modprobe.d options.
func ParseCmdlineParams(cmdline, module string) map[string]string {
	opts := map[string]string{}
	for _, w := range strings.Fields(cmdline) {
		k, v, ok := strings.Cut(w, "=")
		mod, param, dotted := strings.Cut(k, ".")
		if !dotted || normModule(mod) != normModule(module) {
			continue
		}
		if !ok {
			v = "Y"
		}
		opts[param] = v
	}
	return opts
}

// overlayLoadParams are the overlay parameters the module will get when it
// loads: modprobe.d options, then the kernel command line. Each value is
// labelled with where it came from.
func (p *prober) overlayLoadParams() map[string]paramSource {
	out := map[string]paramSource{}
	seen := map[string]string{} // file name -> dir: /etc shadows /lib
	for _, dir := range modprobeDirs {
		entries, err := p.h.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".conf") {
				seen[e.Name()] = dir
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names) // modprobe reads the files in name order
	for _, n := range names {
		path := seen[n] + "/" + n
		data, err := p.h.ReadFile(path)
		if err != nil {
			continue
		}
		for k, v := range ParseModprobeOptions(strings.NewReader(string(data)), "overlay") {
			out[k] = paramSource{value: v, source: path}
		}
	}
	if data, err := p.h.ReadFile("/proc/cmdline"); err == nil {
		for k, v := range ParseCmdlineParams(string(data), "overlay") {
			out[k] = paramSource{value: v, source: "the kernel command line"}
		}
	}
	return out
}

type paramSource struct{ value, source string }

// keepOverlayWords keeps the overlay.* words of a kernel command line.
func keepOverlayWords(cmdline string) []byte {
	var keep []string
	for _, w := range strings.Fields(cmdline) {
		if strings.HasPrefix(w, "overlay.") {
			keep = append(keep, w)
		}
	}
	return []byte(strings.Join(keep, " ") + "\n")
}

// keepOverlayOptions keeps the "options overlay" lines of a modprobe.d file.
func keepOverlayOptions(data []byte) []byte {
	var b strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "options" && normModule(f[1]) == "overlay" {
			b.WriteString(line + "\n")
		}
	}
	return []byte(b.String())
}
