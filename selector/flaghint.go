package selector

import "github.com/graphprobe/graphprobe/selector/dockerflags"

// flagConflictHint says how to remove conflicting dockerd flags with the
// step that makes the edit count on the init system that reads them: a
// unit edit needs systemctl daemon-reload, an environment file does not,
// and a host without systemd has no systemctl at all.
func flagConflictHint(fs []dockerflags.Finding) string {
	by := map[string]bool{}
	for _, f := range fs {
		by[f.ReadBy()] = true
	}
	switch {
	case by[dockerflags.ReadFromUnit]:
		return "remove the flags there, then run systemctl daemon-reload so that systemd rereads the unit; or leave daemon.json alone"
	case by[dockerflags.ReadBySystemd]:
		return "remove the flags there (systemd reads that file at every start of docker, so no daemon-reload is needed); or leave daemon.json alone"
	}
	return "remove the flags there (docker's init script reads that file at every start: service docker restart applies it); or leave daemon.json alone"
}
