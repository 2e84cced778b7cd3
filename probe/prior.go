package probe

import "path"

// PriorDrivers lists the driver dirs under the live host's data-root that
// hold data, exactly as a full probe reports them (Report.PriorDrivers):
// a rerun that reuses a recorded probe reads this afresh, since dockerd's
// first start fills one of them.
// dirs are the drivers' prior-state dirs, as for Options.PriorDirs.
func PriorDrivers(dataRoot string, dirs []string) []string {
	return readPriorDrivers(LiveHost(), path.Clean(dataRoot), dirs)
}
