package probe

import "path"

// PriorDrivers lists the driver dirs under the live host's data-root that
// hold data, exactly as a full probe reports them (Report.PriorDrivers):
// a rerun that reuses a recorded probe reads this afresh, since dockerd's
// first start fills one of them.
func PriorDrivers(dataRoot string) []string {
	p := &prober{h: LiveHost(), r: &Report{PriorDrivers: []string{}}}
	p.r.DataRoot.Path = path.Clean(dataRoot)
	p.readPriorDrivers()
	return p.r.PriorDrivers
}
