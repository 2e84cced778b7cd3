package dockerflags

import (
	"path"
	"strings"
)

// Key is the daemon.json key a finding stands for.
type Key string

const (
	StorageDriver Key = "storage-driver"
	StorageOpts   Key = "storage-opts"
	DataRoot      Key = "data-root"
	ConfigFile    Key = "config-file"
	// DriverEnv is the DOCKER_DRIVER environment variable, which dockerd
	// prefers to storage-driver.
	DriverEnv Key = "DOCKER_DRIVER"
)

// Origin is where an argument was written.
type Origin struct {
	File string
	Line int
	// Via says how it reached dockerd when File is not the unit itself,
	// e.g. "$DOCKER_OPTS in ExecStart at /lib/systemd/system/docker.service:11".
	Via string
}

// arg is one argument of dockerd with its origin.
type arg struct {
	text string
	Origin
}

// longFlags are dockerd's long flags graphprobe cares about. "graph" is
// data-root's name before Docker 17.05.
var longFlags = map[string]Key{
	"storage-driver": StorageDriver,
	"storage-opt":    StorageOpts,
	"data-root":      DataRoot,
	"graph":          DataRoot,
	"config-file":    ConfigFile,
}

// shortFlags are the shorthands among them.
var shortFlags = map[byte]Key{
	's': StorageDriver,
	'g': DataRoot,
}

// boolShorthands are dockerd's boolean shorthands (-D debug, -d daemon mode
// of Docker 1.x, -v version, -h help, -i interactive of old docker), which
// may precede another shorthand in one cluster: -Ds overlay.
const boolShorthands = "Ddvhi"

// valueShorthands take a value: -H host, -G group, -l log-level, -p pidfile,
// -b bridge, -e exec-driver (Docker 1.x).
const valueShorthands = "HGlpbe"

// daemonArgs returns the arguments dockerd parses as flags in a command
// line: those after dockerd, after "docker daemon", or after a
// "docker ... -d" command, or in the script of "sh -c", where vars gives
// the unit's variables (nil: none). ok is false when the command starts no
// Docker daemon that can be recognised.
func daemonArgs(args []arg, vars unitVar) (rest []arg, ok bool) {
	for i, a := range args {
		base := path.Base(a.text)
		switch {
		case base == "dockerd" || strings.HasPrefix(base, "dockerd-"):
			return args[i+1:], true
		case base == "docker" || strings.HasPrefix(base, "docker-"):
			for j := i + 1; j < len(args); j++ {
				switch args[j].text {
				case "daemon":
					return args[j+1:], true
				case "-d", "--daemon", "-daemon":
					return args[i+1:], true
				}
			}
		case (base == "sh" || base == "bash" || base == "dash") && i+2 < len(args) && args[i+1].text == "-c":
			// The first command of the script that starts dockerd.
			for _, inner := range scriptCommands(args[i+2], vars) {
				if rest, ok := daemonArgs(inner, vars); ok {
					return rest, true
				}
			}
			return nil, false
		}
	}
	return nil, false
}

// scanFlags finds the flags of interest in dockerd's arguments, as
// dockerd's flag parser (pflag) reads them.
func scanFlags(args []arg) []Finding {
	var out []Finding
	add := func(k Key, flag, value string, o Origin) {
		out = append(out, Finding{Key: k, Flag: flag, Value: value, File: o.File, Line: o.Line, Via: o.Via})
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		t := a.text
		switch {
		case t == "--":
			return out
		case strings.HasPrefix(t, "--"):
			name, val, hasVal := strings.Cut(t[2:], "=")
			k, ok := longFlags[name]
			if !ok {
				continue
			}
			if !hasVal && i+1 < len(args) {
				i++
				val = args[i].text
			}
			add(k, "--"+name, val, a.Origin)
		case strings.HasPrefix(t, "-") && len(t) > 1:
			// Docker 1.x also took long names with one dash.
			if name, val, hasVal := strings.Cut(t[1:], "="); len(name) > 1 {
				if k, ok := longFlags[name]; ok {
					if !hasVal && i+1 < len(args) {
						i++
						val = args[i].text
					}
					add(k, "-"+name, val, a.Origin)
					continue
				}
			}
			for j := 1; j < len(t); j++ {
				c := t[j]
				if k, ok := shortFlags[c]; ok {
					val := strings.TrimPrefix(t[j+1:], "=")
					if j+1 == len(t) && i+1 < len(args) {
						i++
						val = args[i].text
					}
					add(k, "-"+string(c), val, a.Origin)
					break
				}
				if strings.IndexByte(boolShorthands, c) >= 0 {
					continue
				}
				if strings.IndexByte(valueShorthands, c) >= 0 && j+1 == len(t) {
					i++ // the value is the next argument
				}
				break
			}
		}
	}
	return out
}
