// Package dockerflags finds dockerd command-line flags that would clash
// with the storage settings graphprobe writes to daemon.json.
//
// dockerd refuses to start when a setting is given both as a flag and in
// daemon.json ("the following directives are specified both as a flag and
// in the configuration file"), so writing storage-driver while the unit
// passes -s would take Docker down at the next restart. Scan reads how the
// host starts dockerd, the way the init system would, and reports every
// storage flag with the file and line to edit.
//
// On a host with a docker.service unit (systemd), the unit is the first
// docker.service found in /etc/systemd/system, /run/systemd/system,
// /usr/local/lib/systemd/system, /usr/lib/systemd/system and
// /lib/systemd/system (a symlink to /dev/null masks it), followed by the
// docker.service.d/*.conf drop-ins of all those directories in lexical
// order of file name (a drop-in name in an earlier directory hides the same
// name in a later one). An empty ExecStart=, Environment= or
// EnvironmentFile= clears the list before it. The command of ExecStart is
// split as systemd splits it: "$VAR" as a whole word expands to the
// variable's words, "${VAR}" to its value as one word; variables come from
// Environment= and then EnvironmentFile= (which win). So /etc/default/docker
// and the /etc/sysconfig files matter on systemd hosts only when the unit
// names them in EnvironmentFile= and ExecStart uses the variable; storage
// flags in them that dockerd never sees are listed apart, as Ignored.
//
// On a host without a docker.service unit, dockerd is started by a
// sysvinit or upstart script, which sources /etc/default/docker (Debian,
// Ubuntu: DOCKER_OPTS) or /etc/sysconfig/docker (RHEL, CentOS 6: OPTIONS
// and other_args) and /etc/sysconfig/docker-storage
// (DOCKER_STORAGE_OPTIONS): every storage flag in those variables counts.
// Those files are shell, and are read with a shell parser as the script's
// "." would read them, running nothing (a command substitution counts as
// empty, with a warning); the script passes the variable unquoted, so its
// value is split at blanks and its quotes reach dockerd as they are. The
// script of an ExecStart "sh -c" is read the same way, with the unit's
// variables (RHEL 7's docker 1.10 unit passes $DOCKER_STORAGE_OPTIONS so):
// the first command in it that starts dockerd counts.
//
// Flags are recognised as dockerd's flag parser reads them: -s X, -sX, -s=X,
// -Ds X (a shorthand after boolean shorthands), --storage-driver X,
// --storage-driver=X, --storage-opt X and --storage-opt=X, after dockerd,
// "docker daemon" or "docker -d" (the commands of Docker 1.x); parsing stops
// at "--". --data-root (-g, --graph) and --config-file are reported too: they
// are no conflict for graphprobe's keys, but they decide which data-root
// and which daemon.json dockerd uses. DOCKER_DRIVER in the unit's
// environment is reported because it overrides storage-driver silently.
package dockerflags
